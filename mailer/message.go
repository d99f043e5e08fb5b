package mailer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"html"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	mail "github.com/wneessen/go-mail"
)

// outgoing is one message to one recipient, before it becomes a go-mail Msg.
type outgoing struct {
	To        string
	Name      string
	Subject   string // already sanitised to one line
	Text      string
	HTML      string
	MessageID string // without angle brackets
	Date      time.Time
	// Digest-only headers; empty for a confirmation.
	UnsubscribeURL    string
	UnsubscribeMailto string
	ListID            string
	// Boundary is the multipart boundary; "" lets go-mail choose one.
	Boundary string
}

// wireMsg is one message as it goes to a transport: the envelope and the
// rendered bytes.
type wireMsg struct {
	from      string   // envelope sender, "<addr>"
	to        []string // envelope recipients, "<addr>"
	messageID string   // "<id>", for file names
	eightBit  bool     // the body is 8bit: the server must take 8BITMIME
	// prefix (the DKIM-Signature field, if any) goes before data.
	prefix []byte
	data   []byte // header and body, CRLF lines
}

// writeTo writes the message's bytes to w.
func (w *wireMsg) writeTo(dst io.Writer) error {
	if len(w.prefix) > 0 {
		if _, err := dst.Write(w.prefix); err != nil {
			return err
		}
	}
	_, err := dst.Write(w.data)
	return err
}

// buildMsg turns o into a multipart/alternative UTF-8 message with the
// plain text first and the HTML second, as RFC 2046 orders them from
// plainest to richest. With eightBit (the server announced 8BITMIME,
// RFC 6152) and bodies that are already lines of at most 998 octets ending
// in CRLF, the bodies go out as they are ("8bit"): quoted-printable
// encoding every message was most of the CPU a digest costs, and makes
// every "=" of the HTML three bytes. Otherwise they are quoted-printable.
func (m *Mailer) buildMsg(o outgoing, eightBit bool) (*mail.Msg, error) {
	enc := mail.EncodingQP
	if eightBit && fits8bit(o.Text) && fits8bit(o.HTML) {
		enc = mail.NoEncoding
	}
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent(), mail.WithCharset(mail.CharsetUTF8), mail.WithEncoding(enc))
	if o.Boundary != "" {
		msg.SetBoundary(o.Boundary)
	}
	if m.from == nil {
		return nil, ErrNoFrom
	}
	msg.FromMailAddress(m.from)
	if m.replyTo != nil {
		msg.ReplyToMailAddress(m.replyTo)
	}
	if err := msg.AddToFormat(flattenText(o.Name), o.To); err != nil {
		return nil, fmt.Errorf("%w: recipient %q: %v", errBadRecipient, o.To, err)
	}
	msg.Subject(SanitizeSubject(o.Subject))
	msg.SetDateWithValue(o.Date)
	msg.SetMessageIDWithValue(o.MessageID)
	msg.SetUserAgent("msitfeed")
	if o.UnsubscribeURL != "" {
		uris := []string{o.UnsubscribeURL}
		if o.UnsubscribeMailto != "" {
			uris = append(uris, o.UnsubscribeMailto)
		}
		msg.SetListUnsubscribe(uris...)
		msg.SetListUnsubscribePost()
	}
	if o.ListID != "" {
		msg.SetGenHeaderPreformatted("List-Id", o.ListID)
		msg.SetBulk()
	}
	// Writers rather than strings: go-mail would copy each string into a
	// buffer first.
	msg.SetBodyWriter(mail.TypeTextPlain, stringWriter(o.Text))
	msg.AddAlternativeWriter(mail.TypeTextHTML, stringWriter(o.HTML))
	return msg, nil
}

// render builds o with go-mail and renders it into buf, signed when
// mail.dkim_* is set. The returned message holds buf's bytes.
func (m *Mailer) render(o outgoing, eightBit bool, buf *bytes.Buffer) (*wireMsg, error) {
	msg, err := m.buildMsg(o, eightBit)
	if err != nil {
		return nil, err
	}
	from, err := msg.GetSender(false)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadRecipient, err)
	}
	rcpts, err := msg.GetRecipients()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadRecipient, err)
	}
	buf.Reset()
	if _, err := msg.WriteTo(buf); err != nil {
		return nil, fmt.Errorf("render message %s: %w", o.MessageID, err)
	}
	w := &wireMsg{from: from, to: rcpts, messageID: "<" + o.MessageID + ">",
		eightBit: msg.Encoding() == mail.NoEncoding.String(), data: buf.Bytes()}
	if m.dkim != nil {
		header, body := splitMessage(w.data)
		if w.prefix, err = m.dkim.signWire(header, body, o.Date); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// maxLine is the longest line SMTP carries, in octets without the CRLF
// (RFC 5321 4.5.3.1.6).
const maxLine = 998

// fits8bit reports whether s can be sent as an 8bit body unchanged: its
// lines end in CRLF (the last may end the body without one, as the MIME
// boundary that follows starts with CRLF), none is longer than maxLine,
// and there is no NUL and no CR or LF on its own (RFC 2045 2.8).
func fits8bit(s string) bool {
	for len(s) > 0 {
		line, rest, found := strings.Cut(s, "\n")
		if found {
			if len(line) == 0 || line[len(line)-1] != '\r' {
				return false
			}
			line = line[:len(line)-1]
		}
		if len(line) > maxLine || strings.IndexByte(line, '\r') >= 0 || strings.IndexByte(line, 0) >= 0 {
			return false
		}
		s = rest
	}
	return true
}

// crlf ends every line of s in CRLF.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// sendMsg sends the message build makes: 8bit if the session's server takes
// it, and once more quoted-printable if the server turns out not to. It
// returns the error of build unchanged (not a *deliveryError), so the caller
// can tell a message that could not be made from one that was not accepted.
func sendMsg(ctx context.Context, sess session, build func(eightBit bool) (*wireMsg, error)) (buildErr, sendErr error) {
	msg, err := build(sess.eightBit())
	if err != nil {
		return err, nil
	}
	err = sess.send(ctx, msg)
	if errors.Is(err, errNo8BitMIME) {
		if msg, err = build(false); err != nil {
			return err, nil
		}
		err = sess.send(ctx, msg)
	}
	return nil, err
}

// errNo8BitMIME is what a session answers an 8bit message when its server
// did not announce 8BITMIME; nothing was sent.
var errNo8BitMIME = errors.New("the SMTP server does not take 8bit messages (no 8BITMIME)")

// stringWriter returns a go-mail body writer for s.
func stringWriter(s string) func(io.Writer) (int64, error) {
	return func(w io.Writer) (int64, error) {
		n, err := io.WriteString(w, s)
		return int64(n), err
	}
}

// errBadRecipient marks an address go-mail will not accept; such a delivery
// fails for good without counting as a bounce.
var errBadRecipient = errors.New("bad recipient address")

// Slots of a msgTemplate: where each recipient's values go.
const (
	wsTo          = iota // the value of To
	wsMessageID          // the value of Message-ID, with angle brackets
	wsDate               // the value of Date
	wsUnsubHeader        // the URL in List-Unsubscribe
	wsTextEmail          // the body slots of the plain text, in personal's order
	wsTextName
	wsTextUnsub
	wsTextPrefs
	wsHTMLEmail // the same, HTML-escaped, in the HTML
	wsHTMLName
	wsHTMLUnsub
	wsHTMLPrefs
	wsCount
)

// maxFoldFree is the longest header line go-mail writes without folding
// it: it breaks a line before a word that would reach column 73.
const maxFoldFree = 72

// maxSlotValue bounds each value put into a template's body, so that no
// line it lands in can pass maxLine.
const maxSlotValue = 256

// msgTemplate is an edition's 8bit message, rendered once by go-mail with
// placeholders where each recipient's values go, and cut at them. Filling
// it gives the bytes go-mail would render for the recipient (but for the
// order of the fields go-mail keeps in a map, which is random anyway),
// as long as the values cannot change how go-mail writes them: fill
// checks that (ASCII values that need no quoting or encoding, header
// lines short enough not to be folded, body lines that stay 8bit) and
// says no otherwise, and the message is built the slow way. Only 8bit
// bodies are templated: quoted-printable wraps lines by their length.
type msgTemplate struct {
	header cutText
	body   cutText
	// The body, cut into runs for its DKIM body hash: runs of lines
	// without a slot are canonicalized once; lines with one are filled
	// and canonicalized per message.
	bodyRuns []bodyRun
	// hashState is the SHA-256 state after the first run, when it has no
	// slot: a message's hash resumes from it.
	hashState []byte
	firstRun  int // the run after hashState
	// maxLineConst is the longest body line holding a slot, without its
	// slots; slotsPerLine the most slots in one such line.
	maxLineConst, slotsPerLine int
	from                       string // envelope sender
	boundary                   string // the multipart boundary of every message
	// signed is the header as DKIM signs it: the fields of h= in its
	// order, canonicalized once where they hold no slot.
	signed []signedField
}

// signedField is a header field as DKIM signs it: canonical bytes, or a
// field with slots, filled and canonicalized per message.
type signedField struct {
	canon string
	name  string
	value cutText
}

// bodyRun is a run of whole body lines: canonical bytes ready to hash, or
// one line with slots.
type bodyRun struct {
	canon []byte
	line  cutText
}

// cutText is a text cut at its slots: parts[i] is followed by the value of
// slots[i].
type cutText struct {
	parts []string
	slots []int
}

// cutSlots cuts s at every marker.
func cutSlots(s string, markers *[wsCount]string) cutText {
	var ct cutText
	for {
		at, slot := -1, -1
		for i, mk := range markers {
			if mk == "" {
				continue
			}
			if j := strings.Index(s, mk); j >= 0 && (at < 0 || j < at) {
				at, slot = j, i
			}
		}
		if at < 0 {
			ct.parts = append(ct.parts, s)
			return ct
		}
		ct.parts = append(ct.parts, s[:at])
		ct.slots = append(ct.slots, slot)
		s = s[at+len(markers[slot]):]
	}
}

// appendTo writes ct filled with values to buf.
func (ct *cutText) appendTo(buf *bytes.Buffer, values *[wsCount]string) {
	for i, p := range ct.parts {
		buf.WriteString(p)
		if i < len(ct.slots) {
			buf.WriteString(values[ct.slots[i]])
		}
	}
}

// templateMarkers returns the placeholders of a template: letters and
// digits after the Mailer's random marker, each ending in "x" so none is
// the start of another.
func (m *Mailer) templateMarkers() [wsCount]string {
	var mk [wsCount]string
	for i := range mk {
		mk[i] = m.marker + "w" + strconv.Itoa(i) + "x"
	}
	return mk
}

// newMsgTemplate renders ed once with placeholders. It returns nil when the
// edition cannot be templated (its subject holds a personal part, its
// bodies are not 8bit, or go-mail wrote a placeholder where it was not
// expected); every message of the edition is then built the slow way.
func (m *Mailer) newMsgTemplate(ed *edition) (*msgTemplate, error) {
	if len(ed.subject.slots) > 0 || m.from == nil {
		return nil, nil
	}
	mk := m.templateMarkers()
	text := ed.text.fill([slotCount]string{mk[wsTextEmail], mk[wsTextName], mk[wsTextUnsub], mk[wsTextPrefs]})
	htmlBody := ed.html.fill([slotCount]string{mk[wsHTMLEmail], mk[wsHTMLName], mk[wsHTMLUnsub], mk[wsHTMLPrefs]})
	if !fits8bit(text) || !fits8bit(htmlBody) {
		return nil, nil
	}
	o := outgoing{
		To:                mk[wsTo] + "@example.invalid",
		Subject:           ed.subject.fill([slotCount]string{}),
		Text:              text,
		HTML:              htmlBody,
		MessageID:         mk[wsMessageID],
		Date:              time.Unix(0, 0).UTC(),
		UnsubscribeURL:    mk[wsUnsubHeader],
		UnsubscribeMailto: m.mailto,
		ListID:            m.listID,
		Boundary:          newBoundary(),
	}
	msg, err := m.buildMsg(o, true)
	if err != nil {
		return nil, err
	}
	if msg.Encoding() != mail.NoEncoding.String() {
		return nil, nil
	}
	from, err := msg.GetSender(false)
	if err != nil {
		return nil, nil
	}
	var buf bytes.Buffer
	if _, err := msg.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("render digest template: %w", err)
	}
	header, body := splitMessage(buf.Bytes())
	if body == nil {
		return nil, nil
	}
	// The three fields whose whole value is personal become slots; each
	// must be one line, so that its value's length cannot move a fold.
	var hb strings.Builder
	found := 0
	for _, f := range headerFields(header) {
		slot := -1
		switch f.name {
		case "To":
			slot = wsTo
		case "Message-ID":
			slot = wsMessageID
		case "Date":
			slot = wsDate
		}
		if slot < 0 {
			hb.WriteString(f.name + ":" + f.value)
			continue
		}
		if strings.Count(f.value, "\n") != 1 {
			return nil, nil
		}
		hb.WriteString(f.name + ": " + mk[slot] + "\r\n")
		found++
	}
	if found != 3 {
		return nil, nil
	}
	hb.WriteString("\r\n")
	t := &msgTemplate{header: cutSlots(hb.String(), &mk), body: cutSlots(string(body), &mk), from: from, boundary: o.Boundary}
	fields := headerFields([]byte(hb.String()))
	var canon bytes.Buffer
	for _, name := range dkimHeaderNames {
		f := takeField(fields, name)
		if f == nil {
			continue
		}
		if value := cutSlots(f.value, &mk); len(value.slots) > 0 {
			t.signed = append(t.signed, signedField{canon: canon.String()}, signedField{name: f.name, value: value})
			canon.Reset()
			continue
		}
		appendRelaxedField(&canon, f.name, f.value)
		canon.WriteString("\r\n")
	}
	t.signed = append(t.signed, signedField{canon: canon.String()})
	if !t.cutRuns(string(body), &mk) {
		return nil, nil
	}
	return t, nil
}

// cutRuns cuts the body into runs for DKIM and measures its slot lines. It
// reports false if the body does not end in a line without a slot (the
// trailing empty lines relaxed canonicalization drops would then depend
// on the values).
func (t *msgTemplate) cutRuns(body string, mk *[wsCount]string) bool {
	var canon bytes.Buffer
	rb := relaxedBody{h: nil}
	flush := func() {
		if canon.Len() > 0 {
			t.bodyRuns = append(t.bodyRuns, bodyRun{canon: bytes.Clone(canon.Bytes())})
			canon.Reset()
		}
	}
	lastHasSlot := false
	for len(body) > 0 {
		line, rest, found := strings.Cut(body, "\n")
		if found {
			line += "\n"
		}
		body = rest
		ct := cutSlots(line, mk)
		lastHasSlot = len(ct.slots) > 0
		if !lastHasSlot {
			l := []byte(strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"))
			canon.Write(rb.canonLine(l))
			canon.WriteString("\r\n")
			continue
		}
		flush()
		t.bodyRuns = append(t.bodyRuns, bodyRun{line: ct})
		n := 0
		for _, p := range ct.parts {
			n += len(p)
		}
		t.maxLineConst = max(t.maxLineConst, n)
		t.slotsPerLine = max(t.slotsPerLine, len(ct.slots))
	}
	flush()
	if lastHasSlot || len(t.bodyRuns) == 0 {
		return false
	}
	if last := t.bodyRuns[len(t.bodyRuns)-1].canon; string(last) == "\r\n" || bytes.HasSuffix(last, []byte("\r\n\r\n")) {
		return false
	}
	if first := t.bodyRuns[0]; first.canon != nil {
		h := sha256.New()
		h.Write(first.canon)
		state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return false
		}
		t.hashState, t.firstRun = state, 1
	}
	return true
}

// fill writes the message for o into buf, with p's personal parts, and
// reports whether it could: false when a value could make go-mail write the
// message differently (see msgTemplate); buf is then to be ignored.
func (t *msgTemplate) fill(m *Mailer, o outgoing, p personal, buf *bytes.Buffer) (*wireMsg, bool, error) {
	name := flattenText(o.Name)
	if !plainAddress(o.To) || !plainName(name) {
		return nil, false, nil
	}
	var v [wsCount]string
	v[wsTo] = "<" + o.To + ">"
	if name != "" {
		v[wsTo] = `"` + name + `" ` + v[wsTo]
	}
	v[wsMessageID] = "<" + o.MessageID + ">"
	v[wsDate] = o.Date.Format(time.RFC1123Z)
	if len("To: ")+len(v[wsTo]) > maxFoldFree || len("Message-ID: ")+len(v[wsMessageID]) > maxFoldFree ||
		len("Date: ")+len(v[wsDate]) > maxFoldFree || !plainToken(o.MessageID) {
		return nil, false, nil
	}
	v[wsUnsubHeader] = o.UnsubscribeURL
	if u := o.UnsubscribeURL; u == "" || strings.TrimSpace(u) != u || u[0] == '<' || u[len(u)-1] == '>' {
		return nil, false, nil
	}
	v[wsTextEmail], v[wsTextName], v[wsTextUnsub], v[wsTextPrefs] = p.Email, p.Name, p.UnsubscribeURL, p.PreferencesURL
	v[wsHTMLEmail], v[wsHTMLName] = html.EscapeString(p.Email), html.EscapeString(p.Name)
	v[wsHTMLUnsub], v[wsHTMLPrefs] = html.EscapeString(p.UnsubscribeURL), html.EscapeString(p.PreferencesURL)
	longest := 0
	for _, s := range v[wsUnsubHeader:] {
		if len(s) > maxSlotValue || strings.ContainsAny(s, "\r\n\x00") {
			return nil, false, nil
		}
		longest = max(longest, len(s))
	}
	if t.maxLineConst+t.slotsPerLine*longest > maxLine {
		return nil, false, nil
	}
	buf.Reset()
	t.header.appendTo(buf, &v)
	t.body.appendTo(buf, &v)
	w := &wireMsg{from: t.from, to: []string{"<" + o.To + ">"}, messageID: v[wsMessageID], eightBit: true, data: buf.Bytes()}
	if m.dkim != nil {
		sum, err := t.bodyHash(&v)
		if err != nil {
			return nil, false, err
		}
		value, err := t.sign(m.dkim, &v, sum, o.Date)
		if err != nil {
			return nil, false, err
		}
		w.prefix = []byte("DKIM-Signature: " + value + "\r\n")
	}
	return w, true, nil
}

// sign returns the DKIM-Signature value of the template filled with v.
func (t *msgTemplate) sign(d *dkimSigner, v *[wsCount]string, bodyHash []byte, at time.Time) (string, error) {
	buf := renderBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer renderBuffers.Put(buf)
	var value bytes.Buffer
	for _, f := range t.signed {
		if f.name == "" {
			buf.WriteString(f.canon)
			continue
		}
		value.Reset()
		f.value.appendTo(&value, v)
		appendRelaxedField(buf, f.name, value.String())
		buf.WriteString("\r\n")
	}
	return d.signCanonical(buf, bodyHash, at)
}

// bodyHash returns the relaxed body hash of the template filled with v,
// resuming from the hash of the first run.
func (t *msgTemplate) bodyHash(v *[wsCount]string) ([]byte, error) {
	h := sha256.New()
	if t.hashState != nil {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(t.hashState); err != nil {
			return nil, fmt.Errorf("dkim: resume the body hash: %w", err)
		}
	}
	rb := relaxedBody{h: h}
	var line bytes.Buffer
	for _, r := range t.bodyRuns[t.firstRun:] {
		if r.canon != nil {
			// A filled line canonicalized to nothing was held back; the
			// run that follows is not the end of the body (cutRuns), so
			// it was not a trailing empty line.
			for ; rb.empties > 0; rb.empties-- {
				h.Write(crlfCRLF)
			}
			h.Write(r.canon)
			continue
		}
		line.Reset()
		r.line.appendTo(&line, v)
		rb.writeLines(line.Bytes())
	}
	return h.Sum(nil), nil
}

// plainAddress reports whether addr is local@domain of characters that
// net/mail writes as they are (dot-atoms of letters, digits and -_+.),
// so that go-mail renders it "<addr>".
func plainAddress(addr string) bool {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || strings.Contains(domain, "@") {
		return false
	}
	return dotAtom(local, "-_+=") && dotAtom(domain, "-")
}

// dotAtom reports whether s is non-empty words of letters, digits and the
// extra characters, joined by single dots.
func dotAtom(s, extra string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

// plainName reports whether a display name is one go-mail writes quoted
// as it is: printable ASCII without quotes or backslashes, single spaces
// (flattenText has made it so), nothing to encode.
func plainName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// plainToken reports whether s is printable ASCII without spaces.
func plainToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	return s != ""
}

// digestMsg builds the message of one job into buf: from its edition's
// template when the session takes 8bit and the recipient's values allow it,
// else with go-mail from the personalised bodies.
func (m *Mailer) digestMsg(j *job, eightBit bool, tpls *templateCache, buf *bytes.Buffer) (*wireMsg, error) {
	p := m.personalFor(j.p.UID, j.p.Email, j.p.Name)
	o := outgoing{
		To:                j.p.Email,
		Name:              j.p.Name,
		MessageID:         j.p.MessageID,
		Date:              m.Now(),
		UnsubscribeURL:    p.UnsubscribeURL,
		UnsubscribeMailto: m.mailto,
		ListID:            m.listID,
	}
	if eightBit {
		t, err := tpls.get(j.ed)
		if err != nil {
			return nil, err
		}
		if t != nil {
			if w, ok, err := t.fill(m, o, p, buf); err != nil || ok {
				return w, err
			}
		}
	}
	o.Subject, o.Text, o.HTML = m.personalise(j.ed, p)
	return m.render(o, eightBit, buf)
}

// templateCache holds the message template of each edition of a run,
// made on first use; nil for an edition that cannot be templated.
type templateCache struct {
	m         *Mailer
	mu        sync.Mutex
	byEdition map[*edition]*msgTemplate
}

// get returns the template of ed, making it on first use.
func (c *templateCache) get(ed *edition) (*msgTemplate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.byEdition[ed]; ok {
		return t, nil
	}
	t, err := c.m.newMsgTemplate(ed)
	if err != nil {
		return nil, err
	}
	c.byEdition[ed] = t
	return t, nil
}
