package redisstore_test

import (
	"context"
	"log"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/dispatch/redisstore"
	"github.com/genaihook/genaihook/webhook"
)

// Every replica of the receiver runs the same code: one Store on its own
// client, given to the Dispatcher as its store and to the webhook Handler
// as its deduplicator. A Wait on any replica then resolves from a
// delivery to any other. (It needs a Redis, so it is not run here; see
// examples/replicas for a program that is.)
func ExampleNew() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"}) // or redis.NewClusterClient
	defer rdb.Close()
	store, err := redisstore.New(rdb, redisstore.Config{Prefix: "myapp:gemini:"})
	if err != nil {
		log.Fatal(err)
	}
	// A genai client instead of nil confirms each event through the API.
	d, err := dispatch.New(nil, "https://example.com/gemini/webhook", dispatch.WithStore(store))
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	http.Handle("POST /gemini/webhook", d.Handler(webhook.WithDeduplicator(store)))
	go func() { log.Fatal(http.ListenAndServe(":8080", nil)) }()

	ev, err := d.Wait(ctx, "batches/abc123") // job.Name, as Batches.Create returned it
	if err != nil {
		log.Fatal(err)
	}
	log.Println(ev.Type)
}
