package dispatch

import (
	"slices"
	"strings"

	"github.com/genaihook/genaihook/webhook"
)

// How a wait and an event meet. Every id form the genai SDK uses
// ("batches/{id}", "models/{model}/operations/{op}", a bare interaction id)
// ends in the server-assigned opaque id; the prefix only names the
// collection. A key is that opaque id qualified by its family: "batches/"
// + id for a batch, "operations/" + op for a video generation, the bare id
// for an interaction. Interaction ids hold no slash, so the three kinds
// cannot meet, and each key is a suffix of the full id form, so matching
// an id in that form allocates nothing.
//
// The form of data.id on the wire is not documented, so an event matches
// whichever of the full or short form it carries; its type names the
// family, so an interaction's event never resolves a batch's wait with the
// same opaque id.
//
// Waits take the id exactly as genai returned it, which names the family:
// "batches/…" is a batch, "models/…/operations/…" (or "operations/…") a
// video generation, a bare id an interaction. Any other form, or one with
// an empty or dot segment, is refused (ErrInvalidID): it could only be
// matched by accident, or read another resource.

const (
	batchCollection     = "batches/"
	operationCollection = "operations/"
)

// idKey returns the key a wait on id is matched by, or "" when id is not of
// a form genai returns.
func idKey(id string) string {
	fam, seg := splitID(id)
	return familyKey(fam, id, seg)
}

// familyKey returns the key of the job of family fam whose id is id and
// opaque id seg: a suffix of id when id has the full form, or else built.
func familyKey(fam webhook.Family, id, seg string) string {
	var prefix string
	switch fam {
	case webhook.FamilyBatch:
		prefix = batchCollection
	case webhook.FamilyVideo:
		prefix = operationCollection
	case webhook.FamilyInteraction:
		return seg
	default:
		return ""
	}
	if n := len(prefix) + len(seg); len(id) >= n && strings.HasSuffix(id, seg) && id[len(id)-n:len(id)-len(seg)] == prefix {
		return id[len(id)-n:]
	}
	return prefix + seg
}

// splitID returns the family and opaque id of a job id as genai returns it,
// or FamilyUnknown.
func splitID(id string) (webhook.Family, string) {
	if id == "" || strings.ContainsAny(id, "\x00 ") {
		return webhook.FamilyUnknown, ""
	}
	parts := strings.Split(id, "/")
	if slices.ContainsFunc(parts, func(p string) bool { return p == "" || p == "." || p == ".." }) {
		return webhook.FamilyUnknown, "" // a dot segment would name another resource in the read's path
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
	if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "\x00 ") {
		return keys
	}
	switch fam := t.Family(); fam {
	case webhook.FamilyBatch, webhook.FamilyInteraction:
		keys = append(keys, familyKey(fam, id, seg))
	case webhook.FamilyVideo:
		keys = append(keys, familyKey(fam, id, seg), seg)
	}
	return keys
}

// familyOf tells a job's family from the form of the id genai returned.
func familyOf(id string) webhook.Family {
	fam, _ := splitID(id)
	return fam
}

// batchName returns a batch id in the "batches/{id}" form Batches.Get
// requires (it rejects a bare id).
func batchName(id string) string {
	return batchCollection + id[strings.LastIndexByte(id, '/')+1:]
}

// truncateID bounds an id from a delivery before it goes into an error or
// a log line.
func truncateID(id string) string {
	const n = 128
	if len(id) > n {
		return id[:n] + "…"
	}
	return id
}
