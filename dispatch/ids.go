package dispatch

import (
	"strings"

	"github.com/genaihook/genaihook/webhook"
)

// idKey returns the key a job id is matched by: its last path segment, so
// that "batches/abc" and "abc", or "models/veo/operations/op1",
// "operations/op1" and "op1", meet. The result shares id's memory.
//
// Why the last segment, whatever the family: every id form the genai SDK
// uses ("batches/{id}", "models/{model}/operations/{op}", a bare
// interaction id) ends in the server-assigned opaque id,
// and the prefix only names the collection; data.id's form on the wire is
// unverified, and an event of a type this package does not know still has to
// meet its Wait. Two jobs collide only if Gemini gave two different jobs the
// same opaque id in different collections (or, for videos, under different
// models), which its ids make negligible; a receiver that cannot accept even
// that can match on the correlation key of the webhook_config builders,
// which is random per job.
func idKey(id string) string {
	id = strings.TrimRight(id, "/")
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return id[i+1:]
	}
	return id
}

// corrPrefix starts every correlation-key key; a job id's last segment
// never starts with a NUL byte, so the two kinds of key cannot meet.
const corrPrefix = "\x00key:"

func corrKey(k string) string { return corrPrefix + k }

// familyOf tells a job's family from the form of the id genai returned:
// "batches/…" is a batch, "…operations/…" a video generation, a bare id an
// interaction. Anything else is FamilyUnknown.
func familyOf(id string) webhook.Family {
	switch {
	case strings.HasPrefix(id, "batches/"):
		return webhook.FamilyBatch
	case strings.HasPrefix(id, "operations/") || strings.Contains(id, "/operations/"):
		return webhook.FamilyVideo
	case id != "" && !strings.Contains(id, "/"):
		return webhook.FamilyInteraction
	}
	return webhook.FamilyUnknown
}

// batchName returns a batch id in the "batches/{id}" form Batches.Get
// requires (it rejects a bare id).
func batchName(id string) string {
	return "batches/" + idKey(id)
}

// KeyOf returns the correlation key that the webhook_config builders put in
// user_metadata (under webhook.MetadataKey), or "" when there is none. Pass
// it to WaitKey, WatchKey or Track.
func KeyOf(userMetadata map[string]any) string {
	k, _ := userMetadata[webhook.MetadataKey].(string)
	return k
}
