package msit

import (
	"html"
	"strings"
)

// The list pages fill their cells from inline scripts. Rather than match the
// scripts with patterns, which would also match the commented-out and dead
// statements the site leaves in them, this file runs, over the tokens of
// jslex.go, the handful of statement forms the site uses: variable
// assignment and concatenation, unescape(), if with literal comparisons, and
// jQuery's $(selector).html(value) / .text(value). Anything else is skipped.

// scriptRun interprets inline scripts of one page in document order, sharing
// variables between them as a browser's global scope would, and records the
// HTML each live statement puts into an element id.
type scriptRun struct {
	vars  map[string]string
	cells map[string]string // element id → HTML set by .html() or .text()
}

func newScriptRun() *scriptRun {
	return &scriptRun{vars: map[string]string{}, cells: map[string]string{}}
}

// run executes one script's source.
func (r *scriptRun) run(src string) {
	p := &scriptParser{run: r, toks: tokenizeJS(src)}
	// Every pass consumes at least one token, so a malformed script cannot
	// loop.
	for !p.eof() {
		start := p.pos
		p.statement(true)
		if p.pos == start {
			p.pos++
		}
	}
}

type scriptParser struct {
	run  *scriptRun
	toks []token
	pos  int
}

func (p *scriptParser) eof() bool { return p.pos >= len(p.toks) }

func (p *scriptParser) peek() token {
	if p.eof() {
		return token{kind: tokEOF}
	}
	return p.toks[p.pos]
}

func (p *scriptParser) peekAt(k int) token {
	if p.pos+k >= len(p.toks) {
		return token{kind: tokEOF}
	}
	return p.toks[p.pos+k]
}

func (p *scriptParser) is(kind tokenKind, text string) bool {
	t := p.peek()
	return t.kind == kind && t.text == text
}

func (p *scriptParser) accept(kind tokenKind, text string) bool {
	if p.is(kind, text) {
		p.pos++
		return true
	}
	return false
}

// statement runs (live) or steps over (dead) one statement.
func (p *scriptParser) statement(live bool) {
	t := p.peek()
	switch {
	case t.kind == tokEOF:
		return
	case t.kind == tokPunct && t.text == ";":
		p.pos++
	case t.kind == tokPunct && t.text == "{":
		p.pos++
		for !p.eof() && !p.is(tokPunct, "}") {
			start := p.pos
			p.statement(live)
			if p.pos == start {
				p.pos++
			}
		}
		p.accept(tokPunct, "}")
	case t.kind == tokIdent && t.text == "if":
		p.pos++
		taken := true
		if p.accept(tokPunct, "(") {
			taken = p.condition()
			p.skipTo(")")
			p.accept(tokPunct, ")")
		}
		p.statement(live && taken)
		if p.accept(tokIdent, "else") {
			p.statement(live && !taken)
		}
	case t.kind == tokIdent && t.text == "function":
		// Declarations are not run: skip the name, parameters and body.
		p.skipTo("{")
		p.skipBalanced()
	case t.kind == tokIdent && (t.text == "var" || t.text == "let" || t.text == "const"):
		p.pos++
		for p.peek().kind == tokIdent {
			name := p.peek().text
			p.pos++
			if p.accept(tokPunct, "=") {
				v, ok := p.expr()
				if live && ok {
					p.run.vars[name] = v
				}
			} else if live {
				p.run.vars[name] = ""
			}
			if !p.accept(tokPunct, ",") {
				break
			}
		}
		p.endStatement()
	case t.kind == tokIdent && (p.peekAt(1).text == "=" || p.peekAt(1).text == "+=") && p.peekAt(1).kind == tokPunct:
		name, op := t.text, p.peekAt(1).text
		p.pos += 2
		v, ok := p.expr()
		if live && ok {
			if op == "+=" {
				// An undefined variable concatenates as "undefined" in
				// JavaScript; the site always declares it first, and an
				// empty start is the useful reading of a truncated script.
				v = joinWTF8(p.run.vars[name], v)
			}
			p.run.vars[name] = v
		}
		p.endStatement()
	case t.kind == tokIdent && (t.text == "$" || t.text == "jQuery") && p.peekAt(1).text == "(":
		p.jquery(live)
	case t.kind == tokIdent && t.text == "document" && p.peekAt(1).text == "." && p.peekAt(2).text == "getElementById":
		p.getElementByID(live)
	default:
		p.pos++
		p.endStatement()
	}
}

// jquery runs $(selector).html(value) and $(selector).text(value).
func (p *scriptParser) jquery(live bool) {
	p.pos += 2 // $ (
	sel, ok := p.expr()
	if !ok || !p.accept(tokPunct, ")") || !p.accept(tokPunct, ".") {
		p.endStatement()
		return
	}
	method := p.peek().text
	p.pos++
	if (method != "html" && method != "text") || !p.accept(tokPunct, "(") {
		p.endStatement()
		return
	}
	v, ok := p.expr()
	if ok && p.is(tokPunct, ")") && live {
		if id, isID := strings.CutPrefix(strings.TrimSpace(sel), "#"); isID && id != "" {
			v = fixSurrogates(v)
			if method == "text" {
				v = html.EscapeString(v)
			}
			p.run.cells[id] = v
		}
	}
	p.endStatement()
}

// getElementByID runs document.getElementById(id).innerHTML = value and its
// innerText/textContent variants.
func (p *scriptParser) getElementByID(live bool) {
	p.pos += 3
	if !p.accept(tokPunct, "(") {
		p.endStatement()
		return
	}
	id, ok := p.expr()
	if !ok || !p.accept(tokPunct, ")") || !p.accept(tokPunct, ".") {
		p.endStatement()
		return
	}
	prop := p.peek().text
	p.pos++
	if !p.accept(tokPunct, "=") {
		p.endStatement()
		return
	}
	v, ok := p.expr()
	v = fixSurrogates(v)
	if ok && live {
		switch prop {
		case "innerHTML":
			p.run.cells[id] = v
		case "innerText", "textContent":
			p.run.cells[id] = html.EscapeString(v)
		}
	}
	p.endStatement()
}

// condition evaluates the inside of if (...). Comparisons of values the
// interpreter knows decide the branch; anything it cannot evaluate counts as
// true, so that a value the page may show is read rather than lost.
func (p *scriptParser) condition() bool {
	a, ok := p.expr()
	if !ok {
		return true
	}
	t := p.peek()
	if t.kind != tokPunct {
		return a != ""
	}
	switch t.text {
	case "==", "===", "!=", "!==":
		p.pos++
		b, ok := p.expr()
		if !ok {
			return true
		}
		eq := a == b
		if t.text == "!=" || t.text == "!==" {
			return !eq
		}
		return eq
	}
	if t.text == ")" {
		return a != ""
	}
	return true
}

// expr evaluates a concatenation of terms. ok is false when some part is
// beyond the interpreter; the tokens of the expression are consumed anyway
// as far as it understood them.
func (p *scriptParser) expr() (string, bool) {
	v, ok := p.term()
	for p.accept(tokPunct, "+") {
		w, ok2 := p.term()
		v = joinWTF8(v, w)
		ok = ok && ok2
	}
	return v, ok
}

func (p *scriptParser) term() (string, bool) {
	t := p.peek()
	var v string
	ok := true
	switch t.kind {
	case tokString, tokNumber:
		p.pos++
		v = t.text
	case tokIdent:
		p.pos++
		switch {
		case t.text == "true":
			v = "true"
		case t.text == "false", t.text == "null", t.text == "undefined":
			v = ""
		case p.is(tokPunct, "("):
			p.pos++
			arg, argOK := p.expr()
			p.skipTo(")")
			p.accept(tokPunct, ")")
			switch t.text {
			case "unescape":
				v, ok = unescapeWTF8(arg), argOK
			case "String":
				v, ok = arg, argOK
			default:
				ok = false
			}
		default:
			// A variable defined elsewhere on the page (the Korean site's
			// replyHrml, ctgryHtml, newHtml) reads as empty: dropping the
			// statement would leave the previous row's value in place.
			v = p.run.vars[t.text]
		}
	case tokPunct:
		if t.text != "(" {
			return "", false
		}
		p.pos++
		v, ok = p.expr()
		p.skipTo(")")
		p.accept(tokPunct, ")")
	default:
		return "", false
	}
	// Method calls on the value: only trim() is understood.
	for p.is(tokPunct, ".") && p.peekAt(1).kind == tokIdent && p.peekAt(2).text == "(" {
		method := p.peekAt(1).text
		if method == "html" || method == "text" {
			break
		}
		p.pos += 2
		p.skipBalanced()
		if method == "trim" {
			v = strings.TrimSpace(v)
		} else {
			ok = false
		}
	}
	return v, ok
}

// endStatement steps to just after the end of the current statement: a ';'
// at depth 0, or before a line break at depth 0 (automatic semicolon
// insertion), or before a closing brace that belongs to an enclosing block.
func (p *scriptParser) endStatement() {
	depth := 0
	for !p.eof() {
		t := p.peek()
		if t.kind == tokPunct {
			switch t.text {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				if depth == 0 {
					return
				}
				depth--
			case ";":
				if depth == 0 {
					p.pos++
					return
				}
			}
		}
		if depth == 0 && t.nl && p.pos > 0 && !continuesLine(p.toks[p.pos-1]) {
			return
		}
		p.pos++
	}
}

// continuesLine reports whether a statement cannot end after t, so that a
// line break after it does not end the statement.
func continuesLine(t token) bool {
	if t.kind != tokPunct {
		return false
	}
	switch t.text {
	case "+", "=", "+=", "==", "===", "!=", "!==", "&&", "||", ".", ",", "(", "[", "{", "?", ":":
		return true
	}
	return false
}

// skipTo advances to the next token text at depth 0 without consuming it.
func (p *scriptParser) skipTo(text string) {
	depth := 0
	for !p.eof() {
		t := p.peek()
		if t.kind == tokPunct {
			if depth == 0 && t.text == text {
				return
			}
			switch t.text {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				if depth == 0 {
					return
				}
				depth--
			}
		}
		p.pos++
	}
}

// skipBalanced consumes a bracketed group starting at the current token.
func (p *scriptParser) skipBalanced() {
	if t := p.peek(); t.kind != tokPunct || (t.text != "(" && t.text != "{" && t.text != "[") {
		return
	}
	depth := 0
	for !p.eof() {
		t := p.peek()
		p.pos++
		if t.kind != tokPunct {
			continue
		}
		switch t.text {
		case "(", "[", "{":
			depth++
		case ")", "]", "}":
			depth--
			if depth == 0 {
				return
			}
		}
	}
}
