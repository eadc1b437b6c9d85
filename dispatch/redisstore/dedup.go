package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// A webhook-id's key holds a holder's token ("h" and 32 hex digits) while
// a replica runs its callback, for the lease, then processedMark for the
// window once the callback succeeded.
const processedMark = "1"

// beginScript: KEYS the id's key; ARGV token, lease (ms). It returns 0
// when the caller now holds the id (or held it already: go-redis resends
// a command whose answer was lost), 1 when the id was processed, 2 when
// another caller holds it.
var beginScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then return 0 end
if not v then
	redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
	return 0
end
if v == '` + processedMark + `' then return 1 end
return 2
`)

// releaseScript: KEYS the id's key; ARGV token, processed ("1" or "0"),
// window (ms). A processed id is marked whoever holds it now (a holder
// whose lease ran out may finish after another took over: the id is
// processed all the same); a failed one is let go only by its holder.
var releaseScript = redis.NewScript(`
if ARGV[2] == '1' then
	redis.call('SET', KEYS[1], '` + processedMark + `', 'PX', ARGV[3])
	return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`)

// Polling for a holder of a webhook-id to finish: a concurrent copy of a
// delivery is rare (a retry that arrives while the first attempt runs), so
// its wait polls rather than holding a subscription.
const (
	minDedupPoll = time.Millisecond
	maxDedupPoll = 50 * time.Millisecond
	// A release that fails is retried this far apart.
	minReleaseRetry, maxReleaseRetry = 10 * time.Millisecond, 500 * time.Millisecond
)

// Begin implements webhook.Deduplicator across every replica sharing the
// Redis and the prefix. The first caller for an id holds it for
// Config.DedupLease; its release(true) marks it processed for
// Config.DedupWindow, and release(false) lets it go. A Begin for an id
// that another caller holds checks again every 1 to 50 ms until the holder
// releases it (dup if it succeeded, the id is taken over if it failed) or
// its lease runs out (a replica that died mid-callback), or ctx ends: then
// it returns ctx.Err() (the Handler answers 503). It returns Redis's
// errors, wrapped (the Handler answers 500); either way Gemini retries.
//
// release never fails the delivery. While Redis cannot be reached it
// retries, for up to the lease; one that still fails is logged, and the
// id is then free again once the lease runs out, so that a later copy of
// the delivery runs the callback again.
func (s *Store) Begin(ctx context.Context, id string) (release func(processed bool), dup bool, err error) {
	key := s.prefix + "{" + tag(id) + "}:w"
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	token := "h" + hex.EncodeToString(b[:])
	wait := minDedupPoll
	for {
		r, err := beginScript.Run(ctx, s.client, []string{key}, token, pexpire(s.lease)).Int()
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, ctx.Err()
			}
			return nil, false, fmt.Errorf("redisstore: dedup %q: %w", id, err)
		}
		switch r {
		case 0:
			return s.releaser(key, token), false, nil
		case 1:
			return nil, true, nil
		}
		if !sleep(ctx, wait) {
			return nil, false, ctx.Err()
		}
		wait = min(2*wait, maxDedupPoll)
	}
}

// releaser returns the release of the id whose key is key, held with
// token. It retries while Redis cannot be reached, for up to the lease:
// past it another replica may take the id over anyway.
func (s *Store) releaser(key, token string) func(bool) {
	return func(processed bool) {
		ctx, cancel := context.WithTimeout(context.Background(), s.lease)
		defer cancel()
		p := "0"
		if processed {
			p = "1"
		}
		wait := minReleaseRetry
		for {
			err := releaseScript.Run(ctx, s.client, []string{key}, token, p, pexpire(s.window)).Err()
			if err == nil {
				return
			}
			if !sleep(ctx, wait) {
				s.log.Warn("redisstore: could not release a webhook-id; it is free again once its lease ends",
					slog.Bool("processed", processed), slog.Duration("lease", s.lease), slog.Any("error", err))
				return
			}
			wait = min(2*wait, maxReleaseRetry)
		}
	}
}
