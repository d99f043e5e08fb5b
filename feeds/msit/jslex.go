package msit

import "strings"

// A tokenizer for the small part of JavaScript the site's inline scripts and
// handlers (onclick="fn_detail(1284)") use: string literals, numbers,
// identifiers and punctuation, with comments dropped.

type tokenKind int

const (
	tokEOF tokenKind = iota
	tokString
	tokNumber
	tokIdent
	tokPunct
)

type token struct {
	kind tokenKind
	text string // decoded value for strings, the source text otherwise
	nl   bool   // a line break precedes the token
}

// tokenizeJS splits src into tokens, dropping comments. It never fails: an
// unterminated string or comment ends at the end of the line or of src.
func tokenizeJS(src string) []token {
	var toks []token
	nl := true
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			nl = true
			i++
			continue
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
			continue
		case c == '/' && i+1 < len(src) && src[i+1] == '/',
			strings.HasPrefix(src[i:], "<!--"),
			nl && strings.HasPrefix(src[i:], "-->"):
			end := strings.IndexByte(src[i:], '\n')
			if end < 0 {
				return toks
			}
			i += end
			continue
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return toks
			}
			if strings.Contains(src[i:i+2+end], "\n") {
				nl = true
			}
			i += end + 4
			continue
		case c == '\'' || c == '"' || c == '`':
			s, n := scanJSString(src[i:])
			toks = append(toks, token{kind: tokString, text: s, nl: nl})
			i += n
		case isDigit(c):
			j := i
			for j < len(src) && (isIdentByte(src[j]) || src[j] == '.') {
				j++
			}
			toks = append(toks, token{kind: tokNumber, text: src[i:j], nl: nl})
			i = j
		case isIdentByte(c):
			j := i
			for j < len(src) && isIdentByte(src[j]) {
				j++
			}
			toks = append(toks, token{kind: tokIdent, text: src[i:j], nl: nl})
			i = j
		default:
			n := 1
			for _, op := range []string{"===", "!==", "==", "!=", "+=", "&&", "||", "=>"} {
				if strings.HasPrefix(src[i:], op) {
					n = len(op)
					break
				}
			}
			if c >= 0x80 {
				// Skip a whole non-ASCII character; it is never syntax the
				// interpreter needs.
				n = 1
				for i+n < len(src) && src[i+n]&0xC0 == 0x80 {
					n++
				}
			}
			toks = append(toks, token{kind: tokPunct, text: src[i : i+n], nl: nl})
			i += n
		}
		nl = false
	}
	return toks
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || isDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// callArgs finds the first call of fn in a handler such as an onclick
// attribute or a javascript: URL and returns its literal arguments.
func callArgs(src, fn string) ([]string, bool) {
	toks := tokenizeJS(strings.TrimPrefix(strings.TrimSpace(src), "javascript:"))
	for i := 0; i+1 < len(toks); i++ {
		if toks[i].kind != tokIdent || toks[i].text != fn || toks[i+1].text != "(" {
			continue
		}
		var args []string
		for j := i + 2; j < len(toks); j++ {
			t := toks[j]
			switch {
			case t.kind == tokString || t.kind == tokNumber:
				args = append(args, t.text)
			case t.kind == tokPunct && t.text == ",":
			case t.kind == tokPunct && t.text == "-" && j+1 < len(toks) && toks[j+1].kind == tokNumber:
				args = append(args, "-"+toks[j+1].text)
				j++
			case t.kind == tokPunct && t.text == ")":
				return args, true
			default:
				return args, true
			}
		}
		return args, true
	}
	return nil, false
}
