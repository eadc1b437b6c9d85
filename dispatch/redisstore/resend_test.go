package redisstore

import (
	"testing"
	"time"

	"github.com/genaihook/genaihook/dispatch/redisstore/internal/redistest"
	"github.com/genaihook/genaihook/webhook"
)

// TestResentScripts checks that a script run twice with the same
// arguments, as go-redis resends a command whose answer was lost, answers
// the second time as it did the first, where a different call (another
// nonce or token) is told apart.
func TestResentScripts(t *testing.T) {
	srv := redistest.Start(t)
	s, err := New(srv.Client(t), Config{Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	ev := &webhook.Event{Type: webhook.InteractionRequiresAction, WebhookID: "msg_1", Timestamp: time.Now()}
	blob, err := encode(ev, s.maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	evKey, cKey, _ := s.keys("i/1")
	now := s.now()
	o := orderOf(ev)
	run := func(what string, nonce string, want int) {
		t.Helper()
		var r int
		var err error
		switch what {
		case "save":
			r, err = saveScript.Run(ctx, s.client, []string{evKey, cKey}, ms(now), ms(now.Add(s.ttl)), pexpire(s.ttl),
				o.sec, o.nsec, o.class, o.webhookID, nonce, blob, s.channel, message("i/1", blob)).Int()
		case "consume":
			r, err = consumeScript.Run(ctx, s.client, []string{cKey, evKey}, ms(now), ms(now.Add(s.markTTL)), pexpire(s.markTTL),
				o.sec, o.nsec, o.class, o.webhookID, nonce).Int()
		case "begin":
			r, err = beginScript.Run(ctx, s.client, []string{s.prefix + "{msg_1}:w"}, nonce, 60000).Int()
		}
		if err != nil || r != want {
			t.Errorf("%s with nonce %s = %d, %v; want %d", what, nonce, r, err, want)
		}
	}
	run("save", "n1", 1)
	run("save", "n1", 1) // resent
	run("save", "n2", 0) // a duplicate from another call
	run("consume", "n3", 1)
	run("consume", "n3", 1) // resent
	run("consume", "n4", 0) // the pause is used up
	run("begin", "h1", 0)
	run("begin", "h1", 0) // resent: still the holder
	run("begin", "h2", 2) // another copy waits
}
