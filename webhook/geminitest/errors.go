package geminitest

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// family is an API family: the paths whose errors share one shape, the one
// the genai client decodes for them.
type family uint8

const (
	// familyCore is the Gemini Developer API proper (batches, models,
	// operations, files): Google's error shape, decoded into
	// genai.APIError.
	familyCore family = iota
	// familyInteractions is the Interactions API: its own error shape,
	// with a string code, decoded into the interactions client's typed
	// errors.
	familyInteractions
	// familyWebhooks is the webhooks API: Google's shape, which its client
	// hands over undecoded in *apierrors.APIError.Body.
	familyWebhooks
)

// familyOf returns the family of the paths under /v1beta/{first}.
func familyOf(first string) family {
	switch first {
	case "interactions":
		return familyInteractions
	case "webhooks":
		return familyWebhooks
	default:
		return familyCore
	}
}

// The status names the fake answers with, as Google's errors spell them.
const (
	statusInvalidArgument    = "INVALID_ARGUMENT"
	statusFailedPrecondition = "FAILED_PRECONDITION"
	statusNotFound           = "NOT_FOUND"
	statusUnimplemented      = "UNIMPLEMENTED"
	statusInternal           = "INTERNAL"
)

// googleStatus is the canonical status name Google's JSON errors carry for
// an HTTP status.
func googleStatus(code int) string {
	switch code {
	case http.StatusBadRequest:
		return statusInvalidArgument
	case http.StatusNotFound:
		return statusNotFound
	case http.StatusMethodNotAllowed:
		return statusUnimplemented
	case http.StatusInternalServerError:
		return statusInternal
	default:
		return "UNKNOWN"
	}
}

// interactionsCode is the string code of the Interactions API's errors for
// a Google status name. Google documents no list of these codes: the fake
// uses invalid_request, not_found and failed_precondition, and for a wrong
// method method_not_allowed.
func interactionsCode(status string) string {
	switch status {
	case statusInvalidArgument:
		return "invalid_request"
	case statusFailedPrecondition:
		return "failed_precondition"
	case statusNotFound:
		return "not_found"
	case statusUnimplemented:
		return "method_not_allowed"
	default:
		return "internal"
	}
}

// apiError is Google's JSON error body, google.rpc.Status with the HTTP
// code.
type apiError struct {
	Code    int              `json:"code"`
	Message string           `json:"message"`
	Status  string           `json:"status"`
	Details []map[string]any `json:"details,omitempty"`
}

// interactionsError is the Interactions API's error body.
type interactionsError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// respondError answers code with msg in the shape of the family.
func respondError(w http.ResponseWriter, fam family, code int, msg string) {
	respondStatus(w, fam, code, googleStatus(code), msg)
}

// respondStatus answers code with a status name other than the one
// googleStatus gives, e.g. 400 FAILED_PRECONDITION for an operation the
// resource's state does not allow.
func respondStatus(w http.ResponseWriter, fam family, code int, status, msg string) {
	if fam == familyInteractions {
		respondJSON(w, code, map[string]any{"error": interactionsError{Code: interactionsCode(status), Message: msg}})
		return
	}
	respondJSON(w, code, map[string]any{"error": apiError{Code: code, Message: msg, Status: status}})
}

func respondJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"error":{"code":500,"message":"geminitest: encoding response","status":"INTERNAL"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	w.Write(b)
}
