package redisstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/dispatch/redisstore"
	"github.com/genaihook/genaihook/dispatch/redisstore/internal/redistest"
	"github.com/genaihook/genaihook/dispatch/storetest"
	"github.com/genaihook/genaihook/webhook"
)

// newStore returns a Store on c, logging nowhere unless cfg says, failing
// t on error.
func newStore(t testing.TB, c redis.UniversalClient, cfg redisstore.Config) *redisstore.Store {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet // the tests cut connections on purpose
	}
	s, err := redisstore.New(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// replicas returns n Stores on one new prefix of srv, each with its own
// client, as n replicas open them.
func replicas(srv *redistest.Server) storetest.ReplicaFactory {
	return func(t *testing.T, opts storetest.Options, n int) []dispatch.Store {
		prefix := redistest.Prefix(t)
		out := make([]dispatch.Store, n)
		for i := range out {
			out[i] = newStore(t, srv.Client(t), redisstore.Config{
				Prefix: prefix, Now: opts.Now, Retention: opts.Retention})
		}
		return out
	}
}

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	storetest.RunShared(t, replicas(srv))
}

// TestConformanceCluster runs the suite on a three-node Redis Cluster,
// each replica with its own cluster client: every script must keep to one
// slot, and the channel must reach every node's subscribers.
func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster; skipped under -short")
	}
	addrs := redistest.StartCluster(t, 3)
	storetest.RunShared(t, func(t *testing.T, opts storetest.Options, n int) []dispatch.Store {
		prefix := redistest.Prefix(t)
		out := make([]dispatch.Store, n)
		for i := range out {
			c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
			t.Cleanup(func() { _ = c.Close() })
			out[i] = newStore(t, c, redisstore.Config{Prefix: prefix, Now: opts.Now, Retention: opts.Retention})
		}
		return out
	})
}

// filled returns a value of type typ with every field, element and key
// set to something other than its zero value, down to depth levels.
func filled(typ reflect.Type, seed *int, depth int) reflect.Value {
	*seed++
	v := reflect.New(typ).Elem()
	switch typ.Kind() {
	case reflect.String:
		v.SetString("s" + strings.Repeat("é<", *seed%3+1) + string(rune('a'+*seed%26)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(*seed))
	case reflect.Float64:
		v.SetFloat(float64(*seed) + 0.5)
	case reflect.Slice:
		if typ.Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte(`{"raw": [1, 2] }`))
			break
		}
		v = reflect.MakeSlice(typ, 2, 2)
		for i := range 2 {
			v.Index(i).Set(filled(typ.Elem(), seed, depth-1))
		}
	case reflect.Map:
		v = reflect.MakeMap(typ)
		v.SetMapIndex(filled(typ.Key(), seed, depth-1), filled(typ.Elem(), seed, depth-1))
	case reflect.Pointer:
		v.Set(filled(typ.Elem(), seed, depth-1).Addr())
	case reflect.Interface:
		// JSON's values: what a decoded object holds.
		if depth > 0 {
			v.Set(reflect.ValueOf(map[string]any{"n": float64(*seed), "l": []any{"x", true, nil}}))
		} else {
			v.Set(reflect.ValueOf("leaf"))
		}
	case reflect.Struct:
		if typ == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 30, 12, 0, *seed, *seed*1000+7, time.FixedZone("", 3600))))
			break
		}
		for i := range typ.NumField() {
			if typ.Field(i).IsExported() && typ.Field(i).Name != "Job" {
				v.Field(i).Set(filled(typ.Field(i).Type, seed, depth))
			}
		}
	}
	return v
}

// TestEveryFieldSurvives stores an event with every field set (found by
// reflection, so a field added to webhook.Event later is covered) and
// checks that another replica loads it back equal, but for Job.
func TestEveryFieldSurvives(t *testing.T) {
	srv := redistest.Start(t)
	prefix := redistest.Prefix(t)
	a := newStore(t, srv.Client(t), redisstore.Config{Prefix: prefix})
	b := newStore(t, srv.Client(t), redisstore.Config{Prefix: prefix})
	seed := 0
	ev := filled(reflect.TypeFor[webhook.Event](), &seed, 3).Addr().Interface().(*webhook.Event)
	ev.Type = webhook.BatchSucceeded
	ev.Raw = json.RawMessage(" {\"a\" : \"<&>\"}\n")
	ctx := t.Context()
	if ok, err := a.Save(ctx, "b/1", ev); err != nil || !ok {
		t.Fatalf("Save = %v, %v", ok, err)
	}
	got, err := b.Load(ctx, "b/1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ev, got); diff != "" {
		t.Errorf("Load after Save on another replica: (-want +got)\n%s", diff)
	}
	if string(got.Raw) != string(ev.Raw) {
		t.Errorf("Raw = %q, want the bytes as received %q", got.Raw, ev.Raw)
	}
}

func TestTooLarge(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.Client(t), redisstore.Config{Prefix: redistest.Prefix(t), MaxEventBytes: 1000})
	ev := &webhook.Event{Type: webhook.BatchSucceeded, Timestamp: time.Now(), Raw: make(json.RawMessage, 1000)}
	ok, err := s.Save(t.Context(), "b/1", ev)
	if !errors.Is(err, redisstore.ErrTooLarge) || ok {
		t.Fatalf("Save of an event over MaxEventBytes = %v, %v; want false, ErrTooLarge", ok, err)
	}
	if got, err := s.Load(t.Context(), "b/1"); got != nil || err != nil {
		t.Errorf("Load after a refused Save = %v, %v; want nil, nil", got, err)
	}
	ev.Raw = ev.Raw[:500]
	if ok, err := s.Save(t.Context(), "b/1", ev); !ok || err != nil {
		t.Errorf("Save of an event within MaxEventBytes = %v, %v", ok, err)
	}
}

// TestPrefixes checks that stores under different prefixes share nothing,
// and that every key they write starts with their prefix and carries a
// hash tag, with an expiry.
func TestPrefixes(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	p1, p2 := redistest.Prefix(t), redistest.Prefix(t)
	s1 := newStore(t, c, redisstore.Config{Prefix: p1})
	s2 := newStore(t, c, redisstore.Config{Prefix: p2})
	ctx := t.Context()
	ev := &webhook.Event{Type: webhook.InteractionRequiresAction, WebhookID: "msg_1", Timestamp: time.Now()}
	if ok, _ := s1.Save(ctx, "i/{x}", ev); !ok {
		t.Fatal("Save = false")
	}
	if ok, _ := s1.Consume(ctx, "i/y", ev); !ok {
		t.Fatal("Consume = false")
	}
	if err := s1.Track(ctx, "b/z"); err != nil {
		t.Fatal(err)
	}
	rel, _, err := s1.Begin(ctx, "msg_1")
	if err != nil {
		t.Fatal(err)
	}
	rel(true)
	if got, _ := s2.Load(ctx, "i/{x}"); got != nil {
		t.Error("a store under another prefix loads the event")
	}
	if ok, _ := s2.Tracked(ctx, "b/z"); ok {
		t.Error("a store under another prefix sees the tracked job")
	}
	if ok, _ := s2.Consume(ctx, "i/y", ev); !ok {
		t.Error("a store under another prefix sees the consumed mark")
	}
	if _, dup, _ := s2.Begin(ctx, "msg_1"); dup {
		t.Error("a store under another prefix sees the processed webhook-id")
	}
	keys, err := c.Keys(ctx, p1+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 4 {
		t.Errorf("keys under the prefix = %q, want 4 (event, consumed mark, tracked job, webhook-id)", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, p1+"{") || !strings.Contains(k, "}:") {
			t.Errorf("key %q has no hash tag right after the prefix", k)
		}
		if strings.Contains(k, "{x}") {
			t.Errorf("key %q has the braces of the job key unescaped", k)
		}
		if ttl := c.PTTL(ctx, k).Val(); ttl <= 0 {
			t.Errorf("key %q has no expiry (PTTL %v)", k, ttl)
		}
	}
}

func TestNewErrors(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for _, tt := range []struct {
		name string
		c    redis.UniversalClient
		cfg  redisstore.Config
	}{
		{"nil client", nil, redisstore.Config{}},
		{"typed nil client", (*redis.Client)(nil), redisstore.Config{}},
		{"negative retention", c, redisstore.Config{Retention: -1}},
		{"negative size", c, redisstore.Config{MaxEventBytes: -1}},
		{"lease over window", c, redisstore.Config{DedupLease: time.Hour, DedupWindow: time.Minute}},
	} {
		if _, err := redisstore.New(tt.c, tt.cfg); err == nil || !strings.HasPrefix(err.Error(), "redisstore: ") {
			t.Errorf("%s: New error = %v, want one starting with the package name", tt.name, err)
		}
	}
	if _, err := redisstore.New(c, redisstore.Config{}); err != nil {
		t.Errorf("New with the zero Config: %v", err)
	}
}

// TestUnreachable checks that every method returns an error, rather than
// a guess, when Redis cannot be reached: the webhook Handler then answers
// 503 and Gemini retries.
func TestUnreachable(t *testing.T) {
	srv := redistest.StartLocal(t, false)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	s := newStore(t, c, redisstore.Config{Prefix: redistest.Prefix(t)})
	srv.Stop()
	ctx := t.Context()
	ev := &webhook.Event{Type: webhook.BatchSucceeded, Timestamp: time.Now()}
	if _, err := s.Save(ctx, "b/1", ev); err == nil {
		t.Error("Save with Redis down: no error")
	}
	if _, err := s.Load(ctx, "b/1"); err == nil {
		t.Error("Load with Redis down: no error")
	}
	if _, err := s.Consume(ctx, "b/1", ev); err == nil {
		t.Error("Consume with Redis down: no error")
	}
	if err := s.Track(ctx, "b/1"); err == nil {
		t.Error("Track with Redis down: no error")
	}
	if _, err := s.Tracked(ctx, "b/1"); err == nil {
		t.Error("Tracked with Redis down: no error")
	}
	if rel, _, err := s.Begin(ctx, "msg_1"); err == nil || rel != nil {
		t.Error("Begin with Redis down: no error")
	}
}

// TestSubscribeAcrossRestart checks that a subscription survives a Redis
// restart, tells the Dispatcher to read the store again once it is back
// (wake("", nil)), and wakes for events saved after it; and that events
// saved before the crash are still there, with durable persistence.
func TestSubscribeAcrossRestart(t *testing.T) {
	srv := redistest.StartLocal(t, true)
	prefix := redistest.Prefix(t)
	a := newStore(t, srv.Client(t), redisstore.Config{Prefix: prefix})
	b := newStore(t, srv.Client(t), redisstore.Config{Prefix: prefix})
	type wake struct {
		key string
		ev  *webhook.Event
	}
	wakes := make(chan wake, 100)
	cancel := b.Subscribe(func(key string, ev *webhook.Event) { wakes <- wake{key, ev} })
	defer cancel()
	next := func(what string) wake {
		t.Helper()
		select {
		case w := <-wakes:
			return w
		case <-time.After(20 * time.Second):
			t.Fatalf("no wake within 20s: %s", what)
			return wake{}
		}
	}
	if w := next("subscription start"); w.key != "" || w.ev != nil {
		t.Fatalf("first wake = %q, %v; want the re-read signal", w.key, w.ev)
	}
	ctx := t.Context()
	ev := &webhook.Event{Type: webhook.BatchSucceeded, WebhookID: "msg_1", Timestamp: time.Now().Truncate(time.Second)}
	if ok, err := a.Save(ctx, "b/1", ev); !ok || err != nil {
		t.Fatalf("Save = %v, %v", ok, err)
	}
	if w := next("a save"); w.key != "b/1" || w.ev.WebhookID != "msg_1" {
		t.Fatalf("wake = %q, %v; want b/1", w.key, w.ev)
	}
	srv.Kill()
	srv.Restart(t)
	if w := next("the subscription coming back"); w.key != "" || w.ev != nil {
		t.Fatalf("wake after the restart = %q, %v; want the re-read signal", w.key, w.ev)
	}
	if got, err := b.Load(ctx, "b/1"); err != nil || got == nil {
		t.Fatalf("Load after a crash = %v, %v; want the event saved before it", got, err)
	}
	ev2 := &webhook.Event{Type: webhook.BatchSucceeded, WebhookID: "msg_2", Timestamp: time.Now()}
	if ok, err := a.Save(ctx, "b/2", ev2); !ok || err != nil {
		t.Fatalf("Save after the restart = %v, %v", ok, err)
	}
	if w := next("a save after the restart"); w.key != "b/2" {
		t.Fatalf("wake = %q; want b/2", w.key)
	}
}

// TestSubscribeCancelPromptly checks that cancel returns at once, not
// after the subscription's health interval.
func TestSubscribeCancelPromptly(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.Client(t), redisstore.Config{Prefix: redistest.Prefix(t)})
	started := make(chan struct{}, 1)
	cancel := s.Subscribe(func(string, *webhook.Event) {
		select {
		case started <- struct{}{}:
		default:
		}
	})
	<-started
	done := make(chan struct{})
	go func() { cancel(); cancel(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("cancel did not return within 2s")
	}
}

// TestLoadCorrupt checks that a value written under the prefix by
// something else is reported, not taken for an event.
func TestLoadCorrupt(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	prefix := redistest.Prefix(t)
	s := newStore(t, c, redisstore.Config{Prefix: prefix})
	ctx := context.Background()
	c.HSet(ctx, prefix+"{b/1}:e", "x", "99999999999999", "b", "not json")
	if _, err := s.Load(ctx, "b/1"); !errors.Is(err, redisstore.ErrCorrupt) {
		t.Errorf("Load of a corrupt value: %v, want ErrCorrupt", err)
	}
}

// TestSubscribeAfterClientKill checks that a subscription whose connection
// is cut while Redis stays up (a network blip) comes back on its own and
// tells the Dispatcher to read the store again.
func TestSubscribeAfterClientKill(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	prefix := redistest.Prefix(t)
	s := newStore(t, srv.Client(t), redisstore.Config{Prefix: prefix})
	other := newStore(t, c, redisstore.Config{Prefix: prefix})
	wakes := make(chan string, 100)
	cancel := s.Subscribe(func(key string, _ *webhook.Event) { wakes <- key })
	defer cancel()
	next := func() string {
		t.Helper()
		select {
		case k := <-wakes:
			return k
		case <-time.After(20 * time.Second):
			t.Fatal("no wake within 20s")
			return ""
		}
	}
	if k := next(); k != "" {
		t.Fatalf("first wake %q, want the re-read signal", k)
	}
	if err := c.Do(t.Context(), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	if k := next(); k != "" {
		t.Fatalf("wake after the connection was cut: %q, want the re-read signal", k)
	}
	ev := &webhook.Event{Type: webhook.BatchSucceeded, Timestamp: time.Now()}
	if ok, err := other.Save(t.Context(), "b/after", ev); !ok || err != nil {
		t.Fatalf("Save = %v, %v", ok, err)
	}
	if k := next(); k != "b/after" {
		t.Fatalf("wake %q, want b/after", k)
	}
}

// TestReadSignalWaitsForReads checks that Subscribe asks the Dispatcher to
// read the store again only once reads work: a restarted Redis accepts
// subscriptions while it still loads its data and refuses reads, and a
// read that fails then would leave a wait pending for good. Here an ACL
// refuses the subscriber's reads until the test grants them.
func TestReadSignalWaitsForReads(t *testing.T) {
	srv := redistest.StartLocal(t, false)
	admin := srv.Client(t)
	ctx := t.Context()
	if err := admin.Do(ctx, "ACL", "SETUSER", "sub", "on", ">pw", "~*", "&*", "+@all", "-hmget").Err(); err != nil {
		t.Fatal(err)
	}
	opts := *admin.Options()
	opts.Username, opts.Password = "sub", "pw"
	subClient := redis.NewClient(&opts)
	defer subClient.Close()
	prefix := redistest.Prefix(t)
	sub := newStore(t, subClient, redisstore.Config{Prefix: prefix})
	pub := newStore(t, admin, redisstore.Config{Prefix: prefix})
	wakes := make(chan string, 10)
	cancel := sub.Subscribe(func(key string, _ *webhook.Event) { wakes <- key })
	defer cancel()
	// Once subscribed, an event is published; the subscriber must say
	// nothing, neither the re-read signal nor the event, while reads fail.
	for admin.PubSubNumSub(ctx, prefix+"events").Val()[prefix+"events"] == 0 {
		time.Sleep(time.Millisecond) // polling Redis for the subscription
	}
	ev := &webhook.Event{Type: webhook.BatchSucceeded, Timestamp: time.Now()}
	if ok, err := pub.Save(ctx, "b/1", ev); !ok || err != nil {
		t.Fatalf("Save = %v, %v", ok, err)
	}
	select {
	case k := <-wakes:
		t.Fatalf("wake(%q) while the store refused reads", k)
	case <-time.After(200 * time.Millisecond): // any wake would come within a millisecond
	}
	// A Load fails meanwhile: it too must be answered once reads work.
	if _, err := sub.Load(ctx, "b/1"); err == nil {
		t.Fatal("Load without the right to read: no error")
	}
	if err := admin.Do(ctx, "ACL", "SETUSER", "sub", "+hmget").Err(); err != nil {
		t.Fatal(err)
	}
	// Now: the signal of the subscription's start, the event, and the
	// signal for the failed Load, the last from another goroutine, so in
	// any order.
	var signals, events int
	for signals < 2 || events < 1 {
		select {
		case k := <-wakes:
			switch k {
			case "":
				signals++
			case "b/1":
				events++
			default:
				t.Fatalf("wake(%q), want b/1 or the re-read signal", k)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("within 20s of reads working: %d re-read signals, want 2; %d events, want 1", signals, events)
		}
	}
}
