package redisstore_test

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

// discard silences go-redis's own log, which reports every failed dial
// while the tests restart Redis on purpose.
type discard struct{}

func (discard) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(discard{})
	os.Exit(m.Run())
}
