package msit

import (
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Unescape decodes text encoded by JavaScript's escape(), as the browser's
// unescape() does: %XX is one Latin-1 character and %uXXXX one UTF-16 code
// unit. Surrogate pairs written as two %u escapes combine into one code
// point; a lone surrogate becomes U+FFFD. A '%' that does not start a
// well-formed escape is kept as it is, as in JavaScript. The result is always
// valid UTF-8: invalid bytes in s become U+FFFD.
//
// HTML entities are left alone; callers decode them where the text is text.
func Unescape(s string) string {
	if !strings.Contains(s, "%") && utf8.ValidString(s) {
		return s
	}
	return fixSurrogates(unescapeWTF8(s))
}

// unescapeWTF8 is Unescape keeping lone surrogates as their three-byte
// (WTF-8) encodings, so that the halves of a pair escaped in two separate
// strings join when the strings are concatenated, as JavaScript's UTF-16
// strings do.
func unescapeWTF8(s string) string {
	u := utf16Builder{keep: true}
	u.b.Grow(len(s))
	for i := 0; i < len(s); {
		if s[i] == '%' {
			if i+6 <= len(s) && s[i+1] == 'u' {
				if v, ok := hexValue(s[i+2 : i+6]); ok {
					u.unit(v)
					i += 6
					continue
				}
			}
			if i+3 <= len(s) {
				if v, ok := hexValue(s[i+1 : i+3]); ok {
					u.unit(v)
					i += 3
					continue
				}
			}
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		u.char(r)
		i += size
	}
	return u.String()
}

// utf16Builder writes a stream of UTF-16 code units and whole characters as
// UTF-8, pairing surrogates and replacing lone ones with U+FFFD.
type utf16Builder struct {
	b    strings.Builder
	hi   rune // the pending high surrogate, meaningful when ok
	ok   bool // a high surrogate waits for its low half
	keep bool // write lone surrogates as WTF-8 rather than U+FFFD
}

func (u *utf16Builder) unit(v rune) {
	switch {
	case utf16.IsSurrogate(v) && v < 0xDC00: // high surrogate
		u.flush()
		u.hi, u.ok = v, true
	case utf16.IsSurrogate(v): // low surrogate
		if u.ok {
			u.b.WriteRune(utf16.DecodeRune(u.hi, v))
			u.ok = false
			return
		}
		u.lone(v)
	default:
		u.flush()
		u.b.WriteRune(v)
	}
}

// char writes a character that did not come from an escape.
func (u *utf16Builder) char(r rune) {
	u.flush()
	u.b.WriteRune(r)
}

func (u *utf16Builder) flush() {
	if u.ok {
		u.lone(u.hi)
		u.ok = false
	}
}

func (u *utf16Builder) lone(r rune) {
	if !u.keep {
		u.b.WriteRune(utf8.RuneError)
		return
	}
	u.b.WriteString(surrogateWTF8(r))
}

// surrogateWTF8 encodes a surrogate code unit as UTF-8 would encode it if it
// were allowed (ED A0..BF xx); utf8.EncodeRune refuses to.
func surrogateWTF8(r rune) string {
	return string([]byte{0xE0 | byte(r>>12), 0x80 | byte(r>>6)&0x3F, 0x80 | byte(r)&0x3F})
}

// surrogateAt returns the surrogate encoded at s[i:i+3], if there is one.
func surrogateAt(s string, i int) (rune, bool) {
	if i < 0 || i+3 > len(s) || s[i] != 0xED || s[i+1] < 0xA0 || s[i+1] > 0xBF || s[i+2]&0xC0 != 0x80 {
		return 0, false
	}
	return rune(s[i]&0x0F)<<12 | rune(s[i+1]&0x3F)<<6 | rune(s[i+2]&0x3F), true
}

// joinWTF8 concatenates two WTF-8 strings, pairing a high surrogate that
// ends a with a low surrogate that starts b.
func joinWTF8(a, b string) string {
	hi, ok1 := surrogateAt(a, len(a)-3)
	lo, ok2 := surrogateAt(b, 0)
	if ok1 && ok2 && hi < 0xDC00 && lo >= 0xDC00 {
		return a[:len(a)-3] + string(utf16.DecodeRune(hi, lo)) + b[3:]
	}
	return a + b
}

// fixSurrogates turns WTF-8 into valid UTF-8: each lone surrogate, and
// each other invalid byte, becomes U+FFFD.
func fixSurrogates(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if _, ok := surrogateAt(s, i); ok {
			b.WriteRune(utf8.RuneError)
			i += 3
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r)
		i += size
	}
	return b.String()
}

func (u *utf16Builder) String() string {
	u.flush()
	return u.b.String()
}

// hexValue parses s as hexadecimal digits only (no sign, no prefix).
func hexValue(s string) (rune, bool) {
	if s == "" {
		return 0, false
	}
	var v rune
	for i := 0; i < len(s); i++ {
		d, ok := hexDigit(s[i])
		if !ok {
			return 0, false
		}
		v = v<<4 | rune(d)
	}
	return v, true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// ErrBadJSString reports a JavaScript string literal that cannot be decoded.
var ErrBadJSString = errors.New("not a JavaScript string literal")

// UnquoteJS decodes a JavaScript string literal, quotes included: 'it\'s'
// or "a\"b". It understands the escapes \' \" \\ \n \r \t \b \f \v \0,
// \xHH, \uHHHH (pairing surrogates), \u{H...} and line continuations; any
// other escaped character stands for itself, as in JavaScript.
func UnquoteJS(lit string) (string, error) {
	if len(lit) < 2 || (lit[0] != '\'' && lit[0] != '"') || lit[len(lit)-1] != lit[0] {
		return "", ErrBadJSString
	}
	s, n := scanJSString(lit)
	if n != len(lit) {
		return "", ErrBadJSString
	}
	return fixSurrogates(s), nil
}

// scanJSString decodes the string literal at the start of src (which begins
// with its quote) and returns its value, in WTF-8 (see unescapeWTF8), and
// the number of bytes it spans. An
// unterminated literal runs to the end of the line or of src, as a browser
// would reject it but a parser of truncated pages should still read it.
func scanJSString(src string) (string, int) {
	quote := src[0]
	u := utf16Builder{keep: true}
	i := 1
	for i < len(src) {
		c := src[i]
		switch {
		case c == quote:
			return u.String(), i + 1
		case c == '\n':
			return u.String(), i
		case c != '\\':
			r, size := utf8.DecodeRuneInString(src[i:])
			u.char(r)
			i += size
			continue
		}
		// A backslash escape.
		if i+1 >= len(src) {
			i++
			break
		}
		e := src[i+1]
		i += 2
		switch e {
		case 'n':
			u.char('\n')
		case 'r':
			u.char('\r')
		case 't':
			u.char('\t')
		case 'b':
			u.char('\b')
		case 'f':
			u.char('\f')
		case 'v':
			u.char('\v')
		case '0':
			u.char(0)
		case '\r':
			if i < len(src) && src[i] == '\n' {
				i++
			}
		case '\n':
			// Line continuation: nothing.
		case 'x':
			if i+2 <= len(src) {
				if v, ok := hexValue(src[i : i+2]); ok {
					u.char(v)
					i += 2
					continue
				}
			}
			u.char('x')
		case 'u':
			if i < len(src) && src[i] == '{' {
				if end := strings.IndexByte(src[i:], '}'); end > 1 && end <= 7 {
					if v, ok := hexValue(src[i+1 : i+end]); ok && v <= utf8.MaxRune {
						u.unit(v)
						i += end + 1
						continue
					}
				}
			}
			if i+4 <= len(src) {
				if v, ok := hexValue(src[i : i+4]); ok {
					u.unit(v)
					i += 4
					continue
				}
			}
			u.char('u')
		default:
			r, size := utf8.DecodeRuneInString(src[i-1:])
			u.char(r)
			i += size - 1
		}
	}
	return u.String(), i
}
