package webhook

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// scanEvent is Parse's fast path: one pass over body, building the Event
// without reflection, maps or a decoder. It takes only the bodies it is
// sure of and defers every other one (ok false) to parseSlow, which
// decodes with encoding/json and says what is wrong: scanEvent never
// refuses a body itself, so Parse's verdicts and error messages have one
// source.
//
// It defers when it meets anything encoding/json might read otherwise
// than the plain reading: a string with an escape or invalid UTF-8 where a
// value is taken or a name compared, a non-ASCII name in the envelope or
// its data (strings.EqualFold folds 'ſ' to 's'), a name given twice in any
// object or two case variants of one field, a value of another type than
// the field's, nesting deeper than maxScanDepth or an object with more
// names than its table holds. It also defers a body that fails the
// envelope's rules (type empty, timestamp not RFC 3339, a known type
// without a data object holding an id), for parseSlow to report.
//
// Where it succeeds, parseSlow gives the same Event
// (FuzzScanMatchesEncodingJSON checks this). The strings it returns are
// substrings of one copy of body, or constants for the known types and
// "v1"; UserMetadata is a sub-slice of body.
func scanEvent(body []byte) (*Event, bool) {
	s := scanner{s: string(body)}
	var (
		typ, version, ts string
		data             Data
		hasData          bool
		dataMD, topMD    [2]int // spans of the user_metadata objects, if any
		seen             uint
	)
	s.ws()
	if !s.consume('{') {
		return nil, false
	}
	base := s.nn
	s.ws()
	if s.peek() == '}' {
		s.i++
	} else {
		for {
			name, ok := s.name(base)
			if !ok {
				return nil, false
			}
			field := fieldIndex(name, envelopeFields)
			if field == -2 { // non-ASCII: it might fold onto a field
				return nil, false
			}
			if field >= 0 {
				if seen&(1<<field) != 0 {
					return nil, false
				}
				seen |= 1 << field
			}
			switch field {
			case 0: // type
				typ, ok = s.stringOrNull()
			case 1: // version
				version, ok = s.stringOrNull()
			case 2: // timestamp
				ts, ok = s.stringOrNull()
			case 3: // data
				switch s.peek() {
				case '{':
					hasData = true
					data, dataMD, ok = s.data()
				case 'n':
					ok = s.literal("null")
				default:
					ok = false
				}
			case 4: // user_metadata
				topMD, ok = s.objectSpan()
			default:
				ok = s.value()
			}
			if !ok {
				return nil, false
			}
			more, ok := s.next('}')
			if !ok {
				return nil, false
			}
			if !more {
				break
			}
		}
	}
	s.nn = base
	s.ws()
	if s.i != len(s.s) {
		return nil, false
	}

	if typ == "" {
		return nil, false
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return nil, false
	}
	et := internType(typ)
	if et.Known() && (!hasData || data.ID == "") {
		return nil, false
	}
	if version == "v1" {
		version = "v1" // the constant, not a substring keeping the body's copy
	}
	md := dataMD
	if md[1] == 0 {
		md = topMD
	}
	ev := &Event{Type: et, Version: version, Timestamp: t, Data: data, Raw: body}
	if md[1] != 0 {
		ev.UserMetadata = json.RawMessage(body[md[0]:md[1]:md[1]])
	}
	return ev, true
}

// internType returns the constant for a known type, so that the Event
// shares no memory with the body for it.
func internType(s string) EventType {
	for _, t := range knownTypes {
		if string(t) == s {
			return t
		}
	}
	return EventType(s)
}

var knownTypes = [...]EventType{
	BatchSucceeded, BatchFailed, BatchExpired, BatchCancelled,
	InteractionRequiresAction, InteractionCompleted, InteractionFailed, InteractionCancelled,
	VideoGenerated,
}

// fieldIndex returns the index in fields of the field name matches as
// encoding/json matches names (exactly, else ignoring case), -1 for none,
// and -2 for a name that is not ASCII, which Unicode case folding might
// match onto one.
func fieldIndex(name string, fields []string) int {
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			return -2
		}
	}
	for i, f := range fields {
		if equalFoldASCII(name, f) {
			return i
		}
	}
	return -1
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// maxScanDepth and maxScanNames bound what scanEvent takes on itself; a
// body beyond them goes to parseSlow.
const (
	maxScanDepth = 32
	maxScanNames = 64
)

// scanner reads JSON from s. Its methods report false for anything the
// fast path defers, which includes all invalid JSON.
type scanner struct {
	s     string
	i     int
	depth int
	// names holds the member names of the objects being read, innermost
	// last, so that a name given twice is found without a map.
	names [maxScanNames]string
	nn    int
}

func (s *scanner) ws() {
	for s.i < len(s.s) {
		switch s.s[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.s) {
		return s.s[s.i]
	}
	return 0
}

func (s *scanner) consume(c byte) bool {
	if s.peek() != c {
		return false
	}
	s.i++
	return true
}

// next reads the ',' between two members or elements, or the closing
// delimiter, and reports whether another one follows.
func (s *scanner) next(closing byte) (more, ok bool) {
	s.ws()
	switch s.peek() {
	case ',':
		s.i++
		s.ws()
		return true, true
	case closing:
		s.i++
		return false, true
	}
	return false, false
}

// name reads a member name and its ':', and records it among the names of
// the object whose first name is at names[base]. It refuses a name with an
// escape (its unescaped form would have to be compared) and a name the
// object already holds.
func (s *scanner) name(base int) (string, bool) {
	name, escaped, ok := s.str()
	if !ok || escaped {
		return "", false
	}
	for _, n := range s.names[base:s.nn] {
		if n == name {
			return "", false
		}
	}
	if s.nn == len(s.names) {
		return "", false
	}
	s.names[s.nn] = name
	s.nn++
	s.ws()
	if !s.consume(':') {
		return "", false
	}
	s.ws()
	return name, true
}

// str reads a string and returns its contents as written, and whether they
// hold an escape. It refuses control characters, invalid escapes and
// invalid UTF-8.
func (s *scanner) str() (v string, escaped, ok bool) {
	if !s.consume('"') {
		return "", false, false
	}
	start := s.i
	ascii := true
	for s.i < len(s.s) {
		for s.i < len(s.s) && plain[s.s[s.i]] {
			s.i++
		}
		if s.i == len(s.s) {
			break
		}
		c := s.s[s.i]
		switch {
		case c == '"':
			v = s.s[start:s.i]
			s.i++
			if !ascii && !utf8.ValidString(v) {
				return "", false, false
			}
			return v, escaped, true
		case c == '\\':
			escaped = true
			s.i++
			switch s.peek() {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if s.i+5 > len(s.s) {
					return "", false, false
				}
				for _, h := range []byte(s.s[s.i+1 : s.i+5]) {
					if !isHex(h) {
						return "", false, false
					}
				}
				s.i += 5
			default:
				return "", false, false
			}
		case c < 0x20:
			return "", false, false
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			s.i++
		}
	}
	return "", false, false
}

// plain marks the bytes str passes over without a second look: all but
// the quote, the backslash, control characters and non-ASCII bytes.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// stringOrNull reads a string without escapes, or null as "".
func (s *scanner) stringOrNull() (string, bool) {
	if s.peek() == 'n' {
		return "", s.literal("null")
	}
	v, escaped, ok := s.str()
	return v, ok && !escaped
}

func (s *scanner) literal(lit string) bool {
	if len(s.s)-s.i < len(lit) || s.s[s.i:s.i+len(lit)] != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// number reads a JSON number and returns it as written.
func (s *scanner) number() (string, bool) {
	start := s.i
	s.consume('-')
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case '1' <= c && c <= '9':
		s.digits()
	default:
		return "", false
	}
	if s.consume('.') {
		if !s.digits() {
			return "", false
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !s.digits() {
			return "", false
		}
	}
	return s.s[start:s.i], true
}

// digits reads one or more digits.
func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.s) && '0' <= s.s[s.i] && s.s[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// value reads any JSON value.
func (s *scanner) value() bool {
	switch c := s.peek(); {
	case c == '{':
		return s.object()
	case c == '[':
		return s.array()
	case c == '"':
		_, _, ok := s.str()
		return ok
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	default:
		_, ok := s.number()
		return ok
	}
}

func (s *scanner) object() bool {
	if s.depth++; s.depth > maxScanDepth {
		return false
	}
	s.i++ // '{'
	base := s.nn
	s.ws()
	if s.consume('}') {
		s.depth--
		return true
	}
	for {
		if _, ok := s.name(base); !ok {
			return false
		}
		if !s.value() {
			return false
		}
		more, ok := s.next('}')
		if !ok {
			return false
		}
		if !more {
			break
		}
	}
	s.nn = base
	s.depth--
	return true
}

func (s *scanner) array() bool {
	if s.depth++; s.depth > maxScanDepth {
		return false
	}
	s.i++ // '['
	s.ws()
	if s.consume(']') {
		s.depth--
		return true
	}
	for {
		if !s.value() {
			return false
		}
		more, ok := s.next(']')
		if !ok {
			return false
		}
		if !more {
			break
		}
	}
	s.depth--
	return true
}

// objectSpan reads a user_metadata value and returns where it is in s if
// it is an object, or a zero span for any other value, which Parse
// ignores.
func (s *scanner) objectSpan() ([2]int, bool) {
	start := s.i
	isObject := s.peek() == '{'
	if !s.value() {
		return [2]int{}, false
	}
	if !isObject {
		return [2]int{}, true
	}
	return [2]int{start, s.i}, true
}

// data reads the data object.
func (s *scanner) data() (d Data, md [2]int, ok bool) {
	s.depth++
	s.i++ // '{'
	base := s.nn
	var seen uint
	s.ws()
	if s.consume('}') {
		s.depth--
		return d, md, true
	}
	for {
		name, ok := s.name(base)
		if !ok {
			return d, md, false
		}
		field := fieldIndex(name, dataFields)
		if field == -2 {
			return d, md, false
		}
		if field >= 0 {
			if seen&(1<<field) != 0 {
				return d, md, false
			}
			seen |= 1 << field
		}
		switch field {
		case 0:
			d.ID, ok = s.stringOrNull()
		case 1:
			d.OutputFileURI, ok = s.stringOrNull()
		case 2:
			d.FileName, ok = s.stringOrNull()
		case 3:
			d.VideoURI, ok = s.stringOrNull()
		case 4:
			var code string
			if c := s.peek(); c == '-' || '0' <= c && c <= '9' {
				code, ok = s.number()
			} else {
				code, ok = s.stringOrNull()
			}
			d.ErrorCode = ErrorCode(code)
		case 5:
			d.ErrorMessage, ok = s.stringOrNull()
		case 6:
			md, ok = s.objectSpan()
		default:
			ok = s.value()
		}
		if !ok {
			return d, md, false
		}
		more, ok := s.next('}')
		if !ok {
			return d, md, false
		}
		if !more {
			break
		}
	}
	s.nn = base
	s.depth--
	return d, md, true
}
