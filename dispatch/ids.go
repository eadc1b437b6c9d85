package dispatch

import (
	"slices"
	"strings"

	"github.com/genaihook/genaihook/webhook"
)

// How a wait and an event meet. A key is the job's family and the last path
// segment of its id: every id form the genai SDK uses ("batches/{id}",
// "models/{model}/operations/{op}", a bare interaction id) ends in the
// server-assigned opaque id, and the prefix only names the collection. The
// form of data.id on the wire is not documented, so an event matches
// whichever of the full or short form it carries; its type names the family,
// so an interaction's event never resolves a batch's wait with the same
// opaque id.
//
// Waits take the id exactly as genai returned it, which names the family:
// "batches/…" is a batch, "models/…/operations/…" (or "operations/…") a
// video generation, a bare id an interaction. Any other form, or one with
// an empty segment, is refused (ErrInvalidID): it could only be matched by
// accident.

// Key prefixes, one per family. A correlation key starts with corrPrefix
// instead, so the kinds cannot meet.
const (
	batchPrefix       = "b/"
	videoPrefix       = "v/"
	interactionPrefix = "i/"
	corrPrefix        = "\x00key:"
)

// idKey returns the key a wait on id is matched by, or "" when id is not of
// a form genai returns.
func idKey(id string) string {
	switch fam, seg := splitID(id); fam {
	case webhook.FamilyBatch:
		return batchPrefix + seg
	case webhook.FamilyVideo:
		return videoPrefix + seg
	case webhook.FamilyInteraction:
		return interactionPrefix + seg
	}
	return ""
}

// splitID returns the family and opaque id of a job id as genai returns it,
// or FamilyUnknown.
func splitID(id string) (webhook.Family, string) {
	if id == "" || strings.ContainsAny(id, "\x00 ") {
		return webhook.FamilyUnknown, ""
	}
	parts := strings.Split(id, "/")
	if slices.Contains(parts, "") {
		return webhook.FamilyUnknown, ""
	}
	switch {
	case len(parts) == 1:
		return webhook.FamilyInteraction, id
	case len(parts) == 2 && parts[0] == "batches":
		return webhook.FamilyBatch, parts[1]
	case len(parts) == 2 && parts[0] == "operations",
		len(parts) == 4 && parts[0] == "models" && parts[2] == "operations":
		return webhook.FamilyVideo, parts[len(parts)-1]
	}
	return webhook.FamilyUnknown, ""
}

// eventKeys appends to keys the keys of the job an event of type t with
// data.id id is about: none when id has no opaque id. A video event also
// meets interaction waits, because Gemini is moving video generation to
// background interactions, whose events may be either type.
func eventKeys(t webhook.EventType, id string, keys []string) []string {
	seg := id[strings.LastIndexByte(id, '/')+1:]
	if seg == "" || strings.IndexByte(seg, 0) >= 0 {
		return keys
	}
	switch t.Family() {
	case webhook.FamilyBatch:
		keys = append(keys, batchPrefix+seg)
	case webhook.FamilyVideo:
		keys = append(keys, videoPrefix+seg, interactionPrefix+seg)
	case webhook.FamilyInteraction:
		keys = append(keys, interactionPrefix+seg)
	}
	return keys
}

func corrKey(k string) string { return corrPrefix + k }

// familyOf tells a job's family from the form of the id genai returned.
func familyOf(id string) webhook.Family {
	fam, _ := splitID(id)
	return fam
}

// batchName returns a batch id in the "batches/{id}" form Batches.Get
// requires (it rejects a bare id).
func batchName(id string) string {
	return "batches/" + id[strings.LastIndexByte(id, '/')+1:]
}

// KeyOf returns the correlation key that the webhook_config builders put in
// user_metadata (under webhook.MetadataKey), or "" when there is none. Pass
// it to WaitKey, WatchKey or Track.
func KeyOf(userMetadata map[string]any) string {
	k, _ := userMetadata[webhook.MetadataKey].(string)
	return k
}
