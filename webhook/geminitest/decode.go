package geminitest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// maxRequestBody caps what the fake reads of a request body.
const maxRequestBody = 10 << 20

// shape is what a request object may hold: each member name the API
// defines, with the shape of its value. A nil shape is a free-form value
// (any JSON, not checked). Arrays take the shape of their items.
type shape map[string]shape

// Names of members in request bodies: the core API is read as proto JSON,
// which accepts a field's lowerCamelCase JSON name or its snake_case proto
// name; the Interactions and webhooks APIs take snake_case only.
const (
	protoNames = true
	snakeNames = false
)

// requestError is why a request body is refused, worded as Google's front
// end words it: the message of the 400 answer.
type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }

func invalid(format string, args ...any) error {
	return &requestError{fmt.Sprintf(format, args...)}
}

// errEmptyBody reports a request without a body.
var errEmptyBody = errors.New("empty body")

// decodeRequest reads r's JSON body into v, after checking it against sh:
// a member sh does not define, anything after the JSON value, or a value
// v cannot hold is an error, worded as Google's front end words it
// ("Invalid JSON payload received. Unknown name …"). With protoNames, a
// member may use its snake_case name; it is renamed to the camelCase one
// of sh before v is filled. An empty body leaves v as it is and returns
// errEmptyBody. Numbers are kept exact (json.Number in an any).
func decodeRequest(w http.ResponseWriter, r *http.Request, sh shape, names bool, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		return invalid("Invalid JSON payload received. %v", err)
	}
	return decodeBody(body, sh, names, v)
}

// decodeBody is decodeRequest on a body already read.
func decodeBody(body []byte, sh shape, names bool, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errEmptyBody
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return invalid("Invalid JSON payload received. %s", syntaxMessage(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("Invalid JSON payload received. Unexpected token after the JSON value.")
	}
	if _, ok := tree.(map[string]any); !ok {
		return invalid("Invalid JSON payload received. Expected an object.")
	}
	if err := checkShape(tree, sh, names, ""); err != nil {
		return err
	}
	canon, err := json.Marshal(tree)
	if err != nil {
		return invalid("Invalid JSON payload received. %v", err)
	}
	dec = json.NewDecoder(bytes.NewReader(canon))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return invalid("Invalid value at '%s' (%s), %s", snakePath(te.Field), te.Type, te.Value)
		}
		return invalid("Invalid JSON payload received. %v", err)
	}
	return nil
}

// syntaxMessage says where a body stops being JSON, without echoing it.
func syntaxMessage(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "Unexpected token at offset " + strconv.FormatInt(se.Offset, 10) + "."
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "Unexpected end of input."
	}
	return "Unexpected token."
}

// checkShape reports the first member of v that sh does not define, with
// its path (snake_case, as Google reports it), renaming snake_case members
// to their camelCase names when names is protoNames.
func checkShape(v any, sh shape, names bool, path string) error {
	if sh == nil {
		return nil
	}
	switch v := v.(type) {
	case []any:
		for i, item := range v {
			if err := checkShape(item, sh, names, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	case map[string]any:
		// Sorted, so that the member reported is the same on every run.
		for _, k := range slices.Sorted(maps.Keys(v)) {
			name, sub, ok := lookup(sh, k, names)
			if !ok {
				at := ""
				if path != "" {
					at = " at '" + path + "'"
				}
				return invalid("Invalid JSON payload received. Unknown name %q%s: Cannot find field.", k, at)
			}
			if name != k {
				if _, dup := v[name]; dup {
					return invalid("Invalid JSON payload received. Duplicate field %q at '%s'.", snake(name), path)
				}
				v[name] = v[k]
				delete(v, k)
			}
			sub2 := snake(name)
			if path != "" {
				sub2 = path + "." + sub2
			}
			if err := checkShape(v[name], sub, names, sub2); err != nil {
				return err
			}
		}
	}
	return nil
}

// lookup finds the member k in sh: by its own name, or with protoNames by
// the camelCase name whose snake_case form it is.
func lookup(sh shape, k string, names bool) (string, shape, bool) {
	if sub, ok := sh[k]; ok {
		return k, sub, true
	}
	if names {
		for name, sub := range sh {
			if snake(name) == k {
				return name, sub, true
			}
		}
	}
	return "", nil, false
}

// snake returns the snake_case form of a lowerCamelCase name.
func snake(name string) string {
	var b strings.Builder
	for _, r := range name {
		if unicode.IsUpper(r) {
			b.WriteByte('_')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// snakePath returns a dotted path of camelCase names in snake_case.
func snakePath(path string) string {
	parts := strings.Split(path, ".")
	for i, p := range parts {
		parts[i] = snake(p)
	}
	return strings.Join(parts, ".")
}

// emptyRequest checks that r has no body, or an empty JSON object, as the
// methods that take none (cancel, delete, ping) require; if not, it
// answers 400 in the shape of fam and returns false.
func emptyRequest(w http.ResponseWriter, r *http.Request, fam family) bool {
	var none struct{}
	if err := decodeRequest(w, r, shape{}, snakeNames, &none); err != nil && err != errEmptyBody {
		respondError(w, fam, http.StatusBadRequest, err.Error())
		return false
	}
	return true
}
