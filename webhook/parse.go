package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
)

// ErrMalformedEvent is wrapped by every error Parse returns: the body is not
// a well-formed Gemini event envelope.
var ErrMalformedEvent = errors.New("webhook: malformed event")

// ParseError says which field of an event body is wrong, and why. It wraps
// ErrMalformedEvent. Field is a JSON path ("timestamp", "data.id"), empty
// when the body as a whole is wrong (not JSON, not an object). Reason never
// quotes the body.
type ParseError struct {
	Field  string
	Reason string
}

// Error returns "webhook: malformed event: <field>: <reason>".
func (e *ParseError) Error() string {
	if e.Field == "" {
		return ErrMalformedEvent.Error() + ": " + e.Reason
	}
	return ErrMalformedEvent.Error() + ": " + e.Field + ": " + e.Reason
}

// Unwrap returns ErrMalformedEvent.
func (e *ParseError) Unwrap() error { return ErrMalformedEvent }

// envelope is the wire shape parseSlow decodes with encoding/json and
// validates. Timestamp stays a string so that a bad value is a validation
// error on "timestamp" rather than an opaque decoding error; data stays
// raw so that an unknown type may carry any data at all.
type envelope struct {
	Type         string          `json:"type" validate:"required"`
	Version      string          `json:"version"`
	Timestamp    string          `json:"timestamp" validate:"required,rfc3339"`
	Data         json.RawMessage `json:"data"`
	UserMetadata json.RawMessage `json:"user_metadata"`

	data    Data            // decoded from Data
	dataErr *ParseError     // why Data did not decode, if it did not
	dataRaw json.RawMessage // data.user_metadata, if present
}

// wireData is Data plus the one nested field Parse looks for. It repeats
// Data's fields rather than embedding Data, so that decoding errors name
// "id", not "Data.id".
type wireData struct {
	ID            string          `json:"id"`
	OutputFileURI string          `json:"output_file_uri"`
	FileName      string          `json:"file_name"`
	VideoURI      string          `json:"video_uri"`
	ErrorCode     ErrorCode       `json:"error_code"`
	ErrorMessage  string          `json:"error_message"`
	UserMetadata  json.RawMessage `json:"user_metadata"`
}

// validate is created once: validator.Validate caches struct metadata and is
// safe for concurrent use.
var validate = newValidator()

func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	if err := v.RegisterValidation("rfc3339", func(fl validator.FieldLevel) bool {
		_, err := time.Parse(time.RFC3339Nano, fl.Field().String())
		return err == nil
	}); err != nil {
		panic(err) // a constant tag and function: cannot fail
	}
	v.RegisterStructValidation(validateEnvelope, envelope{})
	return v
}

// validateEnvelope requires, for the types this package knows, a data object
// of the documented shape with an id. Unknown types are held to nothing.
func validateEnvelope(sl validator.StructLevel) {
	e := sl.Current().Interface().(envelope)
	if !EventType(e.Type).Known() {
		return
	}
	switch {
	case e.dataErr != nil:
		sl.ReportError(e.Data, e.dataErr.Field, e.dataErr.Field, "data", e.dataErr.Reason)
	case e.data.ID == "":
		sl.ReportError(e.data.ID, "data.id", "ID", "required", "")
	}
}

// Parse decodes and validates an event body. It never panics, whatever the
// bytes. The result's Raw is a copy of body, and its UserMetadata a
// sub-slice of Raw; WebhookID and Auth are left for the caller (Handler
// sets them from the verified headers).
//
// Parse returns a *ParseError wrapping ErrMalformedEvent if body is not a
// JSON object, if an object at any depth holds a member name twice, or two
// names of one field of the event or of its data that differ only in case
// ("data" and "DATA": encoding/json matches both), if "type" is missing or
// empty, if "timestamp" is missing or not RFC 3339, or if, for a known
// type, "data" is not an object of the documented shape or lacks "id". A
// repeated name is refused because readers disagree on it: Parse would
// take one value, another reader of Raw the other. It accepts, and keeps
// in Raw, unknown types, unknown fields and any "version".
func Parse(body []byte) (*Event, error) {
	return parse(bytes.Clone(body))
}

// parse is Parse without the copy: the Event keeps body as its Raw.
func parse(body []byte) (*Event, error) {
	if ev, ok := scanEvent(body); ok {
		return ev, nil
	}
	return parseSlow(body)
}

// parseSlow is Parse's field-by-field path, for the bodies scanEvent
// defers: it decodes with encoding/json, refuses repeated names
// (checkDuplicateNames), and validates the envelope with the
// go-playground validator, so that every error Parse returns comes from
// here. The fast path checks the same rules by hand, because the validator
// costs two boxings of the envelope and a second parse of the timestamp
// on every delivery; keeping it here, where only bodies that are wrong or
// unusual arrive, keeps one source for the errors, and
// FuzzScanMatchesEncodingJSON holds the two paths to the same answers.
func parseSlow(body []byte) (*Event, error) {
	// encoding/json would take the last of a name given twice, where a
	// reader of Raw that takes the first would see another event.
	if err := checkDuplicateNames(body); err != nil {
		return nil, err
	}
	var e envelope
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, decodeError(err, "")
	}
	e.decodeData()
	if err := validate.Struct(e); err != nil {
		return nil, validationError(err)
	}
	ts, err := time.Parse(time.RFC3339Nano, e.Timestamp)
	if err != nil { // unreachable after validation; kept so Parse cannot lie
		return nil, &ParseError{Field: "timestamp", Reason: "must be an RFC 3339 date-time"}
	}
	md := objectIn(body, e.dataRaw)
	if md == nil {
		md = objectIn(body, e.UserMetadata)
	}
	return &Event{
		Type:         EventType(e.Type),
		Version:      e.Version,
		Timestamp:    ts,
		Data:         e.data,
		Raw:          body,
		UserMetadata: md,
	}, nil
}

// objectIn returns raw, a value encoding/json copied out of body, as the
// sub-slice of body that holds the same bytes, or nil when raw is absent
// or not a JSON object: user_metadata is optional and where it sits is
// unverified, so a strange one is ignored rather than rejected. Its
// capacity ends with it, so that an append to it cannot write into body.
func objectIn(body []byte, raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	i := bytes.Index(body, raw)
	if i < 0 { // unreachable: encoding/json copies a RawMessage as written
		return raw
	}
	return json.RawMessage(body[i : i+len(raw) : i+len(raw)])
}

// The fields of the objects whose names encoding/json matches
// case-insensitively: the envelope and its data. scanEvent relies on
// their order.
var (
	envelopeFields = []string{"type", "version", "timestamp", "data", "user_metadata"}
	dataFields     = []string{"id", "output_file_uri", "file_name", "video_uri", "error_code", "error_message", "user_metadata"}
)

// checkDuplicateNames returns a *ParseError when an object in body, at any
// depth, holds a member name twice (after unescaping), or when the
// envelope or its data holds two names of one field that differ only in
// case: the bodies scanEvent defers as duplicates. It reads body with
// encoding/json, the decoder of the path it guards, so that it sees names
// as that path does; a body encoding/json cannot read passes, for
// json.Unmarshal to report.
func checkDuplicateNames(body []byte) *ParseError {
	type frame struct {
		object   bool
		wantName bool     // the next token is a member name or '}'
		fields   []string // envelopeFields, dataFields, or nil
		field    string   // what an error names: the innermost known object
		name     string   // the last member name read
		names    map[string]struct{}
		matched  uint // bitmask of the fields seen
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var stack []frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // the end, or JSON that json.Unmarshal refuses
		}
		if n := len(stack); n > 0 && stack[n-1].wantName {
			top := &stack[n-1]
			name, ok := tok.(string)
			if !ok { // '}'
				stack = stack[:n-1]
				continue
			}
			if _, dup := top.names[name]; dup {
				return &ParseError{Field: top.field, Reason: "an object holds a member name twice"}
			}
			if top.names == nil {
				top.names = make(map[string]struct{})
			}
			top.names[name] = struct{}{}
			for i, f := range top.fields {
				if strings.EqualFold(name, f) {
					if top.matched&(1<<i) != 0 {
						return &ParseError{Field: top.field, Reason: "two member names of one field differ only in case"}
					}
					top.matched |= 1 << i
				}
			}
			top.name, top.wantName = name, false
			continue
		}
		child := frame{}
		if n := len(stack); n > 0 {
			parent := &stack[n-1]
			parent.wantName = parent.object // tok starts the member's value
			child.field = parent.field
			if parent.object && parent.fields != nil {
				switch {
				case parent.field == "" && strings.EqualFold(parent.name, "data"):
					child.fields, child.field = dataFields, "data"
				case strings.EqualFold(parent.name, "user_metadata"):
					child.field = joinField(parent.field, "user_metadata")
				}
			}
		} else {
			child.fields = envelopeFields
		}
		switch tok {
		case json.Delim('{'):
			child.object, child.wantName = true, true
			stack = append(stack, child)
		case json.Delim('['):
			child.fields = nil
			stack = append(stack, child)
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

func joinField(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}

func (e *envelope) decodeData() {
	raw := bytes.TrimSpace(e.Data)
	if len(raw) == 0 || string(raw) == "null" {
		return // validateEnvelope reports the missing id of a known type
	}
	if raw[0] != '{' {
		e.dataErr = &ParseError{Field: "data", Reason: "must be a JSON object"}
		return
	}
	var d wireData
	if err := json.Unmarshal(raw, &d); err != nil {
		e.dataErr = decodeError(err, "data")
		e.data = Data{} // partially decoded: do not trust it
		return
	}
	e.data = Data{
		ID:            d.ID,
		OutputFileURI: d.OutputFileURI,
		FileName:      d.FileName,
		VideoURI:      d.VideoURI,
		ErrorCode:     d.ErrorCode,
		ErrorMessage:  d.ErrorMessage,
	}
	e.dataRaw = d.UserMetadata
}

// errorCodeError is returned by ErrorCode.UnmarshalJSON, which
// encoding/json passes on without a field path.
type errorCodeError struct{ reason string }

func (e *errorCodeError) Error() string { return "webhook: error_code: " + e.reason }

func decodeError(err error, prefix string) *ParseError {
	join := func(field string) string {
		switch {
		case prefix == "":
			return field
		case field == "":
			return prefix
		}
		return prefix + "." + field
	}
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		ec  *errorCodeError
	)
	switch {
	case errors.As(err, &ec):
		return &ParseError{Field: join("error_code"), Reason: ec.reason}
	case errors.As(err, &typ):
		if typ.Field == "" {
			return &ParseError{Field: prefix, Reason: "must be a JSON object"}
		}
		return &ParseError{Field: join(typ.Field), Reason: "must be a JSON " + jsonKind(typ.Type)}
	case errors.As(err, &syn):
		return &ParseError{Field: prefix, Reason: fmt.Sprintf("invalid JSON at offset %d", syn.Offset)}
	}
	return &ParseError{Field: prefix, Reason: "invalid JSON"}
}

func jsonKind(t reflect.Type) string {
	if t == nil {
		return "value of another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "value" // json.RawMessage
		}
		return "array"
	}
	return "value of another type"
}

func validationError(err error) *ParseError {
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) || len(verrs) == 0 {
		return &ParseError{Reason: "invalid"}
	}
	fe := verrs[0]
	field := fe.Field()
	switch fe.Tag() {
	case "required":
		return &ParseError{Field: field, Reason: "required"}
	case "rfc3339":
		return &ParseError{Field: field, Reason: "must be an RFC 3339 date-time"}
	case "data":
		return &ParseError{Field: field, Reason: fe.Param()}
	}
	return &ParseError{Field: field, Reason: "invalid (" + fe.Tag() + ")"}
}
