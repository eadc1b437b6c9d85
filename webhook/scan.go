package webhook

import (
	"encoding/binary"
	"encoding/json"
	"strings"
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
// constants for the known types and "v1", and otherwise substrings of one
// string holding just the values taken; UserMetadata is a sub-slice of
// body.
func scanEvent(body []byte) (*Event, bool) {
	s := scanner{s: body}
	var (
		typ, version, ts span
		data             dataSpans
		hasData          bool
		dataMD, topMD    span // the user_metadata objects, if any
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
	if typ.empty() {
		return nil, false
	}
	et, known := internType(typ.in(body))
	if known && (!hasData || data[0].empty()) {
		return nil, false
	}

	// One string holds every value the Event takes from the body (the
	// known types and "v1" are constants), rather than a copy of the
	// whole body or one string per value.
	v1 := string(version.in(body)) == "v1"
	var b strings.Builder
	n := ts.len()
	if !known {
		n += typ.len()
	}
	if !v1 {
		n += version.len()
	}
	for _, sp := range data {
		n += sp.len()
	}
	b.Grow(n)
	take := func(sp span) (start, end int) {
		start = b.Len()
		b.Write(sp.in(body))
		return start, b.Len()
	}
	var tsAt, typAt, verAt [2]int
	var dataAt [len(data)][2]int
	tsAt[0], tsAt[1] = take(ts)
	if !known {
		typAt[0], typAt[1] = take(typ)
	}
	if !v1 {
		verAt[0], verAt[1] = take(version)
	}
	for i, sp := range data {
		dataAt[i][0], dataAt[i][1] = take(sp)
	}
	str := b.String()
	at := func(a [2]int) string { return str[a[0]:a[1]] }

	t, err := time.Parse(time.RFC3339Nano, at(tsAt))
	if err != nil {
		return nil, false
	}
	ev := &Event{Type: et, Version: "v1", Timestamp: t, Raw: body}
	if !known {
		ev.Type = EventType(at(typAt))
	}
	if !v1 {
		ev.Version = at(verAt)
	}
	ev.Data = Data{
		ID:            at(dataAt[0]),
		OutputFileURI: at(dataAt[1]),
		FileName:      at(dataAt[2]),
		VideoURI:      at(dataAt[3]),
		ErrorCode:     ErrorCode(at(dataAt[4])),
		ErrorMessage:  at(dataAt[5]),
	}
	md := dataMD
	if md.empty() {
		md = topMD
	}
	if !md.empty() {
		ev.UserMetadata = json.RawMessage(body[md.start:md.end:md.end])
	}
	return ev, true
}

// span is where a value is in the body: body[start:end].
type span struct{ start, end int }

func (sp span) in(body []byte) []byte { return body[sp.start:sp.end] }
func (sp span) len() int              { return sp.end - sp.start }
func (sp span) empty() bool           { return sp.end == sp.start }

// dataSpans are the string fields of Data taken from the body, in the
// order of dataFields: id, output_file_uri, file_name, video_uri,
// error_code, error_message.
type dataSpans [6]span

// internType returns the constant for a known type, so that the Event
// needs no string of its own for it.
func internType(b []byte) (EventType, bool) {
	for _, t := range knownTypes {
		if string(t) == string(b) {
			return t, true
		}
	}
	return "", false
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
func fieldIndex(name []byte, fields []string) int {
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

func equalFoldASCII(a []byte, b string) bool {
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
	s     []byte
	i     int
	depth int
	// names holds the member names of the objects being read, innermost
	// last, so that a name given twice is found without a map.
	names [maxScanNames]span
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
func (s *scanner) name(base int) ([]byte, bool) {
	name, escaped, ok := s.str()
	if !ok || escaped {
		return nil, false
	}
	for _, n := range s.names[base:s.nn] {
		if string(n.in(s.s)) == string(name.in(s.s)) {
			return nil, false
		}
	}
	if s.nn == len(s.names) {
		return nil, false
	}
	s.names[s.nn] = name
	s.nn++
	s.ws()
	if !s.consume(':') {
		return nil, false
	}
	s.ws()
	return name.in(s.s), true
}

// str reads a string and returns its contents as written, and whether they
// hold an escape. It refuses control characters, invalid escapes and
// invalid UTF-8.
func (s *scanner) str() (v span, escaped, ok bool) {
	if !s.consume('"') {
		return span{}, false, false
	}
	start := s.i
	ascii := true
	for s.i < len(s.s) {
		s.skipPlain()
		if s.i == len(s.s) {
			break
		}
		c := s.s[s.i]
		switch {
		case c == '"':
			v = span{start, s.i}
			s.i++
			if !ascii && !utf8.Valid(v.in(s.s)) {
				return span{}, false, false
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
					return span{}, false, false
				}
				for _, h := range s.s[s.i+1 : s.i+5] {
					if !isHex(h) {
						return span{}, false, false
					}
				}
				s.i += 5
			default:
				return span{}, false, false
			}
		case c < 0x20:
			return span{}, false, false
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			s.i++
		}
	}
	return span{}, false, false
}

// skipPlain passes over the bytes of a string that need no second look:
// eight at a time while none of them is special, then one at a time.
func (s *scanner) skipPlain() {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for s.i+8 <= len(s.s) {
		x := binary.LittleEndian.Uint64(s.s[s.i:])
		quote, backslash := x^(ones*'"'), x^(ones*'\\')
		// A byte's high bit is set in special if it is zero in quote or
		// backslash, below 0x20 in x, or has its high bit set in x.
		special := (quote-ones)&^quote | (backslash-ones)&^backslash | (x-ones*0x20)&^x | x
		if special&highs != 0 {
			break
		}
		s.i += 8
	}
	for s.i < len(s.s) && plain[s.s[s.i]] {
		s.i++
	}
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

// stringOrNull reads a string without escapes, or null as an empty span.
func (s *scanner) stringOrNull() (span, bool) {
	if s.peek() == 'n' {
		return span{}, s.literal("null")
	}
	v, escaped, ok := s.str()
	return v, ok && !escaped
}

func (s *scanner) literal(lit string) bool {
	if len(s.s)-s.i < len(lit) || string(s.s[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// number reads a JSON number and returns where it is.
func (s *scanner) number() (span, bool) {
	start := s.i
	s.consume('-')
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case '1' <= c && c <= '9':
		s.digits()
	default:
		return span{}, false
	}
	if s.consume('.') {
		if !s.digits() {
			return span{}, false
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !s.digits() {
			return span{}, false
		}
	}
	return span{start, s.i}, true
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
func (s *scanner) objectSpan() (span, bool) {
	start := s.i
	isObject := s.peek() == '{'
	if !s.value() {
		return span{}, false
	}
	if !isObject {
		return span{}, true
	}
	return span{start, s.i}, true
}

// data reads the data object.
func (s *scanner) data() (d dataSpans, md span, ok bool) {
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
		case 0, 1, 2, 3, 5: // id, output_file_uri, file_name, video_uri, error_message
			d[field], ok = s.stringOrNull()
		case 4: // error_code: a number kept as written, or a string
			if c := s.peek(); c == '-' || '0' <= c && c <= '9' {
				d[field], ok = s.number()
			} else {
				d[field], ok = s.stringOrNull()
			}
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
