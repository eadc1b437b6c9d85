// Package webhook receives Gemini API webhook deliveries: typed events
// (Parse, Event) and an http.Handler (NewHandler) that answers every
// delivery with the status Gemini's retry logic needs, processes each event
// once, and refuses deliveries meant for someone else.
//
// # Receiving
//
//	v, err := verify.New(verify.Config{Secrets: []string{os.Getenv("GEMINI_WEBHOOK_SECRET")}})
//	...
//	http.Handle("POST /gemini/webhook", webhook.NewHandler(v, func(ctx context.Context, ev *webhook.Event) error {
//		return queue.Put(ctx, ev) // hand off and return
//	}))
//
// For each request the Handler checks the method and the body size,
// authenticates the delivery (a Verifier, normally *verify.Verifier),
// parses it, skips a webhook-id already processed (a Deduplicator), checks
// that a dynamic delivery is bound to this receiver (WithBinding), and
// calls the HandlerFunc. A retry of a delivery already processed is thus
// answered "duplicate" even when the binding would now refuse it (its job
// no longer awaited). It ignores the URL path, so it works on
// http.ServeMux, under http.StripPrefix and in any router that takes an
// http.Handler.
//
// # Status codes
//
// Gemini treats 2xx as delivered and retries anything else for 24 hours,
// and it switches off an endpoint that keeps failing. So the Handler
// answers 4xx only for requests that can never succeed, 5xx when a retry
// may, and 2xx for everything that is genuine and handled, including event
// types this package does not know. Successes are 200 with a short text
// body ("ok" or "duplicate"), which is friendlier to logs than 204. Error
// bodies are generic; the reason goes to the logger (WithLogger), never a
// signature or secret.
//
//	condition                                              status
//	-----------------------------------------------------  ------------------------------
//	method other than POST                                 405, Allow: POST
//	body larger than the cap (WithMaxBodyBytes, 64 KiB)    413
//	body unreadable (client went away mid-body)            400
//	cannot verify now (verify.ErrJWKSUnavailable: the      503, Retry-After: 30,
//	  key endpoint down or slow with nothing cached, or    logged as an error
//	  keys unchecked when the Ed25519 budget ran out)
//	Verify failed after the time budget (ctx deadline)     503
//	signature, timestamp or headers fail verification      401 "invalid signature"
//	body authentic but not a valid event (Parse error)     400 naming the bad field
//	dynamic delivery, no binding check configured          403, logged with the fix
//	dynamic delivery failing the binding (ErrNotBound)     403
//	binding check could not decide (any other error)       503
//	binding check failed after the time budget             503
//	webhook-id already processed                           200 "duplicate", fn not called
//	copy of a webhook-id being processed right now         waits, then as the first ended:
//	                                                       200 "duplicate" if it succeeded,
//	                                                       else runs fn; 503 if out of budget
//	deduplicator failed (its store down)                   503
//	fn returned an error                                   500
//	fn returned an error after the time budget             503
//	fn panicked (recovered, logged with its stack)         500
//	fn returned nil, whatever the type, known or not       200 "ok"
//
// Here fn is the HandlerFunc. Nothing is answered 2xx before fn returned
// nil, and nothing 4xx that a retry could fix. Retry-After: 30 matches the
// least time a *verify.Verifier waits between two fetches of the keys by
// default (verify.Config.JWKSRefetchInterval).
//
// A webhook-id counts as processed only once the HandlerFunc returned nil,
// so a delivery answered 500 or 503 is processed again when Gemini retries.
// Two copies of one webhook-id arriving together run the HandlerFunc once:
// the second waits (within the time budget) for the first, then answers 200
// if it succeeded or runs the HandlerFunc itself if it failed. The default
// MemoryDeduplicator does this within one process; share a Deduplicator to
// get it across replicas. The id is the verified one (verify.Result's
// WebhookID), never the raw webhook-id header: the Handler reads that
// header only to log it, truncated, when it rejects a delivery.
//
// # Slow work
//
// Gemini expects the answer within a few seconds. Each delivery gets a
// time budget (WithTimeout; DefaultTimeout is 3 s), counted from when its
// body has been read, as the deadline of the ctx given to the Verifier (a
// key fetch), the binding check (a store lookup), the Deduplicator (a wait
// for a concurrent copy) and the HandlerFunc, which gets what the others
// left. Whichever of them fails once the deadline has passed is answered
// 503, and Gemini retries. The HandlerFunc runs on the request's goroutine
// like any net/http handler, and must honour ctx. Do not do the work in
// the HandlerFunc: record the event (a buffered channel, a queue, a
// database row, dispatch.Dispatcher.Deliver) and return; process it
// elsewhere. Events are thin anyway: fetch results with the genai client
// from the ids they carry. For a hard limit on the answer even when the
// HandlerFunc ignores ctx, wrap the Handler in http.TimeoutHandler. Give
// the http.Server a ReadHeaderTimeout, ReadTimeout, WriteTimeout (longer
// than the budget) and IdleTimeout, as in the example of NewHandler.
//
// # The replay hole and receiver binding
//
// A static webhook is signed with a secret of your own webhook: a valid
// signature proves the delivery is for you. A dynamic webhook (a
// webhook_config on one job) is signed with Google's global keys: a valid
// signature proves Google sent the delivery to someone, not to you. Any
// Gemini customer can create a job pointing at their own server, receive
// its validly signed deliveries, and replay them to your endpoint within
// the verifier's timestamp tolerance (5 minutes by default): events about
// jobs you never created, as many as they like.
//
// So the Handler accepts a dynamic delivery only when a binding check
// (WithBinding) says it is yours; a Handler without one refuses every
// dynamic delivery with 403 and logs how to fix it, and NewHandler warns
// at start-up when its Verifier accepts dynamic deliveries. Static
// deliveries are never checked: their secret binds them.
//
// A Binder makes the check. Holding a secret only you know, it mints a
// token for the job's user_metadata (Binder.Metadata) when you create the
// job; Gemini echoes user_metadata on every event of that job, and
// Binder.Check accepts only deliveries whose user_metadata holds a token
// minted by you. It needs no per-job storage:
//
//	binder, err := webhook.NewBinder(bindingSecret) // 32 random bytes, the same on every replica
//	v, err := verify.New(verify.Config{JWKSURL: verify.GeminiJWKSURL})
//	http.Handle("POST /gemini/webhook", webhook.NewHandler(v, deliver, webhook.WithBinding(binder.Check)))
//	// when creating a job: &genai.WebhookConfig{Uris: uris, UserMetadata: binder.Metadata("report-7")}
//
// Batches need another check: the live API has refused user_metadata on
// batch jobs, so their events may carry no token. Bind them by "a job this
// receiver created" instead (a BindingCheck that looks the job id up in
// your own records) and combine the two with AnyOf. The Handler that
// package dispatch builds (Dispatcher.Handler) binds both ways, and by
// reading the job through the API.
//
// InsecureSkipBinding turns the check off. It is for tests, and for a
// receiver that treats every event as a hint and re-reads the job with its
// own credentials before acting on it; it must never be used on an endpoint
// that anyone but Google and a trusted test can reach.
package webhook
