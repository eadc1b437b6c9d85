// Package dispatch matches Gemini webhook events to the code waiting for
// them: it turns a polling loop into a Wait that resolves the moment Gemini
// pushes the job's event, and that still resolves, through a fallback
// poller, when the event never comes.
//
// Today's genai code polls:
//
//	for job.State != genai.JobStateSucceeded { // ... and FAILED, CANCELLED, EXPIRED
//		time.Sleep(10 * time.Second)
//		job, _ = client.Batches.Get(ctx, job.Name, nil)
//	}
//
// With dispatch, the webhook handler feeds a Dispatcher and the loop becomes
// one call:
//
//	d, err := dispatch.New(dispatch.WithPoller(dispatch.GenAIPoller(client)),
//		dispatch.WithWebhookURL("https://example.com/gemini/webhook"))
//	defer d.Close()
//	http.Handle("POST /gemini/webhook", webhook.NewHandler(v, d.Deliver, d.Binding()))
//	job, err := client.Batches.Create(ctx, model, src, &genai.CreateBatchJobConfig{
//		WebhookConfig: d.BatchWebhookConfig()})
//	err = d.Track(ctx, job.Name, "")
//	ev, err := d.Wait(ctx, job.Name) // or dispatch.WaitBatch for the *genai.BatchJob
//
// Watch is the non-blocking form: a Future with a Done channel and no
// goroutine, so an app can follow thousands of jobs from one select loop.
//
// # Matching
//
// Wait takes the id exactly as genai returned it: BatchJob.Name
// ("batches/abc"), GenerateVideosOperation.Name
// ("models/veo/operations/op1") or an interaction's ID ("v1_abc"). Since the
// form of data.id on the wire is not documented, an event matches when its
// data.id has the same last path segment, whatever comes before: "abc" and
// "batches/abc", or "op1", "operations/op1" and the full name, meet. The
// last segment is the server-assigned opaque id; the prefix only names the
// collection, so two jobs collide only if Gemini gave two jobs the same
// opaque id, which its ids make negligible. For certainty, the
// webhook_config builders (BatchWebhookConfig, VideoWebhookConfig,
// InteractionWebhookConfig) add a random correlation key to user_metadata;
// after Track(ctx, id, KeyOf(cfg.UserMetadata)), an event carrying the key
// resolves Wait(ctx, id) whatever its data.id says, and WaitKey waits on the
// key alone.
//
// # Timing
//
// An event may arrive before Wait is called: it is kept (DefaultRetention,
// 24 h, the span of Gemini's own delivery retries; at most DefaultMaxStored
// events) and resolves a later Wait at once. Every wait pending on a job
// resolves with its event. A terminal event keeps resolving later waits; an
// interaction.requires_action is consumed by the waits it resolves (those
// pending when it arrives, or the first that finds it stored), so that
// waiting again after acting on it resolves with the next event, never the
// stale one, and a redelivery or a poll of the same pause does not count as
// new (see Supersedes). Events of types the webhook package does not know
// resolve nothing. Duplicates are harmless. Deliver does constant work and
// starts no goroutine.
//
// # Fallback polling
//
// With WithPoller, a job still awaited after its quiet period is polled,
// on a schedule per kind of job. Batches and interactions: first poll
// DefaultQuietPeriod (60 s) after the wait began (Gemini pushes within
// seconds, so a job that ends sooner is never polled), then
// DefaultPollInterval (30 s), doubling up to DefaultMaxPollInterval (10
// min): a lost webhook is noticed within 10 minutes of the job's end, and
// an hour of running costs about ten calls where a 10-second loop makes
// 360. Video generations: Gemini sends no event for a failed video, so
// polling is how a failure is noticed; the first poll comes after 20 s,
// the next 18 every 20 s (at least five minutes, about the longest a video
// runs), then the waits double like other jobs'. A video that fails within
// five minutes is noticed within 30 s, for one call per 20 s while it runs:
// 15 for a five-minute video, where a 10-second loop makes 30. Every wait
// is spread by ±20% (WithPollJitter); WithPollSchedule sets one schedule
// for every kind. Poll errors are logged and retried. A 429 or 503 delays
// the next poll to its Retry-After (for batches and videos, whose
// genai.APIError keeps no headers, the RetryInfo delay of the error body),
// at most an hour. A job the API answers 404 or 403 for, three polls in a
// row over at least two minutes, ends its waits with ErrJobNotFound: one
// such answer is not enough, since a new job can be briefly unknown.
// Polling is also how a cancelled batch, for which no event may come, is
// noticed. A single timer drives all polls, at most DefaultPollConcurrency
// at a time; Close stops it, and a poll whose waits all stopped while it
// was queued does not run. The event a poll finds has the shape of a
// delivered one, with Event.Polled set. Without a poller, a wait that has
// heard nothing for its quiet period logs one warning naming the id and the
// likely causes.
//
// # Binding
//
// Dynamic webhooks are signed with Google's global keys: a valid signature
// proves that Google sent a delivery to someone, not to this receiver, and
// any Gemini customer can replay their own deliveries here. Binding is the
// handler option that refuses them: a dynamic delivery is accepted when its
// user_metadata carries a token of the Dispatcher's Binder (the
// webhook_config builders put one there), or when its data.id names a job
// this receiver awaits or Tracked. The second rule is for batches, whose
// user_metadata the API refuses today. A correlation key in user_metadata
// counts only when the delivery is static (signed with this receiver's own
// secret) or carries that token, so a replayed delivery can neither resolve
// a wait through it nor plant store entries under keys of its choosing. An
// event stamped more than five minutes ahead of the clock is ordered by the
// clock instead, so that it cannot hold off the job's later events.
//
// Without WithBinder the Dispatcher mints its tokens with a random secret
// of its own, which binds the jobs this process creates. Replicas behind
// one URL, and jobs that outlive a restart, need one secret shared and kept,
// given as WithBinder(b) with b from webhook.NewBinder(secret), and a Store
// that the replicas share and that outlives a restart.
//
// # Replicas
//
// The Store interface holds the state that must outlive one call: early
// events, consumed requires_action events and tracked jobs. The default
// keeps it in memory. A Store shared by replicas makes a Wait that starts
// on one replica see an event delivered earlier to another; if it also
// implements Broadcaster, waits already pending there resolve at once too.
package dispatch
