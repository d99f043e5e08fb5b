package mailer

import (
	"bufio"
	"bytes"
)

// dotWriter writes a message as the body of SMTP's DATA (RFC 5321 4.5.2):
// a line starting with "." gets another ".", every line ends in CRLF (a bare
// LF becomes CRLF), and close ends the body with ".". It does what
// net/textproto's DotWriter does, but a line at a time rather than a byte
// at a time: writing a digest through that one byte by byte was the largest
// single cost of sending one.
type dotWriter struct {
	w         *bufio.Writer
	lineStart bool // the next byte starts a line
	cr        bool // the last byte written was CR
	begun     bool // something was written
}

func newDotWriter(w *bufio.Writer) *dotWriter { return &dotWriter{w: w, lineStart: true} }

var crlfBytes = []byte("\r\n")

// Write dot-stuffs p.
func (d *dotWriter) Write(p []byte) (int, error) {
	n := len(p)
	if n > 0 {
		d.begun = true
	}
	for len(p) > 0 {
		if d.lineStart && p[0] == '.' {
			if err := d.w.WriteByte('.'); err != nil {
				return 0, err
			}
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if _, err := d.w.Write(p); err != nil {
				return 0, err
			}
			d.cr = p[len(p)-1] == '\r'
			d.lineStart = false
			break
		}
		line := p[:i]
		if len(line) > 0 && line[len(line)-1] == '\r' || len(line) == 0 && d.cr {
			line = p[:i+1] // already CRLF
		}
		if _, err := d.w.Write(line); err != nil {
			return 0, err
		}
		if len(line) == i { // a bare LF
			if _, err := d.w.Write(crlfBytes); err != nil {
				return 0, err
			}
		}
		p = p[i+1:]
		d.lineStart, d.cr = true, false
	}
	return n, nil
}

// close ends the body: CRLF if the last line has none (or nothing was
// written, as textproto does), then ".", CRLF.
func (d *dotWriter) close() error {
	if !d.lineStart || !d.begun {
		if d.cr {
			if err := d.w.WriteByte('\n'); err != nil {
				return err
			}
		} else if _, err := d.w.Write(crlfBytes); err != nil {
			return err
		}
	}
	_, err := d.w.WriteString(".\r\n")
	return err
}
