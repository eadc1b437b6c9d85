// Package dispatch turns a polling loop over a Gemini job into one call that
// returns when the job ends: Gemini pushes the job's event to your webhook
// handler, the job is read back through the genai client to confirm it, and
// the wait resolves. A wait whose event never comes still resolves, from the
// same reads made on a backoff schedule.
//
// Today's genai code polls:
//
//	for !terminal(job.State) {
//		time.Sleep(10 * time.Second)
//		job, _ = client.Batches.Get(ctx, job.Name, nil)
//	}
//
// With dispatch:
//
//	d, err := dispatch.New(client, "https://example.com/gemini/webhook")
//	defer d.Close()
//	http.Handle("POST /gemini/webhook", d.Handler())
//	job, err := client.Batches.Create(ctx, model, src, &genai.CreateBatchJobConfig{WebhookConfig: d.WebhookConfig()})
//	ev, err := d.Wait(ctx, job.Name) // err is a *JobError unless the job succeeded
//	job = ev.Job.(*genai.BatchJob)   // the job as the API reports it (err == nil, or a *JobError)
//
// The same holds for Models.GenerateVideos (WebhookConfig, op.Name,
// *genai.GenerateVideosOperation) and background Interactions.Create
// (InteractionWebhookConfig, the interaction's ID, *interactions.Interaction).
// Watch is Wait for a select: a Future with a Done channel and no goroutine,
// so one loop can follow thousands of jobs.
//
// # Outcomes
//
// Wait returns the job's event, and an error for every outcome but success:
// a *JobError (errors.Is ErrJobFailed, ErrJobExpired or ErrJobCancelled,
// with Gemini's error_code and error_message) for a failed, expired or
// cancelled job, a video operation done with every video filtered by safety
// checks or with neither a response nor an error, and an interaction that
// ended incomplete or over its budget; ErrJobNotFound for a job the API
// keeps saying does not exist; ErrInvalidID for an id of no form genai
// returns; ErrClosed; ctx's error. An interaction.requires_action is not an
// error: it goes to exactly one wait (two would answer one function call
// twice), and waiting again after acting on it returns the next event, never
// the same pause.
//
// # Events are hints, the API is the truth
//
// With a genai client, an event only says when to look: the wait resolves
// from the job as Batches.Get, Operations.GetVideosOperation or
// Interactions.Get reports it, and Event.Job holds that job. The read is
// made at once when the event arrives (one read per job in flight, however
// many events come meanwhile, and at most four reads in flight in all); if
// it still shows the job running, once more 2 s later, since the API's
// reads may lag its events. A completion thus costs one GET (two when the
// event comes before anyone awaits the job, since the Handler then reads
// the job to bind the delivery); a stale or replayed event costs at most
// two and resolves nothing. Without a
// client (New(nil, …)) events resolve waits as they arrive, and nothing but
// their signature and binding vouches for them.
//
// # When no event comes
//
// With a client, a wait that hears nothing reads its job on a schedule per
// kind of job. Batches are reconciled through the listing: while batch
// waits are pending, one sweep every 4 minutes lists the project's batches
// (Batches.List, 100 a page, following nextPageToken until every pending
// batch has been seen, at most 20 pages) and resolves every wait whose
// batch it shows ended, so that a lost batch event is noticed within 5
// minutes of the batch's end for about 15 sweeps an hour, each one List
// call per hundred batches listed, however many batches are pending. A
// batch the listing keeps showing running is still read on its own about
// once an hour, in case the listing lags; a List refused for good (400,
// 401, 403, 404) ends the sweeps, and batches are then read on the
// interactions' schedule below. A batch the sweeps do not see (the listing's order
// and page size are not documented, so the pages may end before it) is
// read on its own: 8 minutes after its wait began or after the last sweep
// that saw it, then at 8 and 10 minutes; one a complete listing omits is
// read at once, so that a job that does not exist is still found out.
// Interactions: first after 60 s, then after 30 s, doubling up to 10
// minutes: a lost event is noticed within 10 minutes of the job's end, and
// an hour of running costs about ten reads where a 10-second loop makes
// 360. Videos: Gemini sends no event for a failed video, so the reads are
// how a failure is noticed: first after 30 s, then 14 more every 30 s (at
// least six minutes, the longest Google says Veo takes), then doubling like
// the others: a video that fails within six minutes is noticed within 36
// s, for 6 reads over three minutes where a 10-second loop makes 18.
// Background video interactions (Omni models, result in output_video)
// follow the interaction schedule; dynamic webhooks have been reported not
// to fire for them, so these reads are their safety net. Every wait is
// spread by ±20%; WithPollSchedule sets one schedule for every kind (the
// sweeps go on). A read that fails is logged and retried; a 429 or 503
// delays the next read (or sweep) to its Retry-After (for batches and
// videos, whose genai.APIError keeps no headers, the RetryInfo delay of the
// error body), at most an hour; a failed sweep is retried at the next, and
// meanwhile batches are read on their own. A job the API answers 404 or
// 403 for, three reads in a row over at least two minutes, ends its waits
// with ErrJobNotFound: one such answer is not enough, since a new job can
// be briefly unknown. One timer drives all reads and sweeps; Close stops
// it. Without a client, a wait that has heard nothing for 60 s logs one
// warning naming the id and the likely causes.
//
// For 1,000 jobs of each kind (simulated against the fake Gemini, every
// event confirmed by one read), these schedules make 148 times fewer API
// calls than a 10-second loop for batches of 1 to 60 minutes, 24 times
// fewer for interactions of that length, 2.8 times fewer for videos.
//
// # Matching
//
// Wait takes the id exactly as genai returned it: BatchJob.Name
// ("batches/abc"), GenerateVideosOperation.Name
// ("models/veo/operations/op1") or an interaction's ID. Since the form of
// data.id on the wire is not documented, an event matches when its data.id
// has the same last path segment (the server-assigned id) within the family
// its type names: "abc" and "batches/abc" meet, an interaction's event never
// resolves a batch's wait. A video event also meets the waits on an
// interaction of that id, since Gemini is moving video generation to
// interactions.
//
// # Binding
//
// Dynamic webhooks are signed with Google's global keys: a valid signature
// proves that Google sent a delivery to some Gemini customer, not to you,
// and any customer can replay their own deliveries to your URL. The Handler
// therefore accepts a dynamic delivery only when it is bound to this
// receiver: by a token of the Dispatcher's Binder in its user_metadata
// (InteractionWebhookConfig puts one there), by naming a job a wait awaits,
// or, with a client, by naming a job the API reads as this project's (see
// Handler). Batches carry no user_metadata, which the live API refuses on
// them. An event stamped more than five minutes ahead of the clock is
// ordered by the clock instead, so that it cannot hold off the job's later
// events.
//
// # Timing and storage
//
// An event that the Handler accepted before anyone waits is kept (24 hours,
// the span of Gemini's own retries, at most 10,000 events) and serves a
// later Wait. (Without a client the Handler can bind a batch's event only
// to a wait in progress, so start the wait before the job can end.)
// Duplicates are harmless; events of types the webhook package does not know
// resolve nothing. Deliver does constant work and starts no goroutine.
//
// # Replicas
//
// A Store holds what must outlive one call: early events, the pauses
// already returned, the jobs awaited. The default keeps it in memory. A
// Store shared by the replicas of a receiver (WithStore) makes a Wait on one
// replica see an event delivered to another, and WithBinder gives them one
// binding secret.
package dispatch
