// Package redisstore keeps a Dispatcher's events and a webhook Handler's
// processed ids in Redis, so that several replicas behind a load balancer
// act as one receiver: a Wait on any replica resolves from an event that
// any replica received, even one that arrived before the Wait began or
// before its process restarted, and a delivery retried onto another
// replica does not run the callback twice.
//
// One Store serves both seams, on a go-redis client you already have:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
//	store, err := redisstore.New(rdb, redisstore.Config{Prefix: "myapp:gemini:"})
//	d, err := dispatch.New(client, "https://example.com/gemini/webhook", dispatch.WithStore(store))
//	http.Handle("POST /gemini/webhook", d.Handler(webhook.WithDeduplicator(store)))
//
// # When to use it
//
// The in-memory defaults are right for one process. Use this package as
// soon as the webhook endpoint and the code that waits may run in
// different processes: several replicas, a rolling deploy, or a waiter that
// restarts and waits again. One Store per process serves its Dispatcher
// and its Handler; it may share its client with the rest of the program.
//
// # What it keeps
//
// Under the prefix, per job key K (the Dispatcher's opaque key, in a hash
// tag so that a job's keys share a Cluster slot):
//
//   - prefix{K}:e, a hash: the event K holds, kept for Config.Retention
//     (default 24 hours) after the Save that kept it;
//   - prefix{K}:c, a hash: what ordering needs of the event last consumed
//     under K (timestamp, kind, webhook-id), kept for 72 hours, or the
//     retention if longer, after each Consume;
//   - prefix{K}:t: that a replica awaits K, kept for as long as the
//     consumed mark after each Track;
//   - prefix{W}:w: the state of webhook-id W, held while a replica runs
//     its callback (Config.DedupLease) and processed for
//     Config.DedupWindow (default 25 hours).
//
// Braces and percent signs in K and W are percent-encoded, so that the
// hash tag is always the whole key or id. Every value carries its own
// expiry, set by Redis, so nothing needs sweeping; configure the server
// with maxmemory-policy noeviction (the default), since an eviction
// policy may drop a tracked job or a consumed mark before its time, where
// a full server fails the write: the webhook Handler answers 5xx and
// Gemini retries. An event is at most Config.MaxEventBytes encoded (1 MiB
// by default, several times what the Handler's 64 KiB body cap admits).
//
// Save and Consume are one Lua script each, atomic on the server, so two
// replicas can never both consume one pause nor both replace an event;
// they need only commands of Redis 6 and keys of one slot, and so work on
// a Redis Cluster (through redis.ClusterClient) as on a single server.
// An accepted Save is published on the channel prefix + "events" by the
// same script; Subscribe listens on one connection per Store and, after
// any reconnection (a Redis restart, a network blip), asks the Dispatcher
// to read the store again for every pending wait, so that no event saved
// meanwhile is missed. Every method returns Redis's errors, so a Redis
// that cannot be reached makes Begin or Deliver fail and the Handler
// answer 5xx:
// Gemini retries and nothing acknowledged is lost, provided the server
// persists its data across restarts (appendonly yes with appendfsync
// always, for a crash).
package redisstore
