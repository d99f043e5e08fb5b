package mailer

import (
	"bufio"
	"bytes"
	"io"
	"net/textproto"
	"strings"
	"testing"
)

// TestDotWriter compares the line-at-a-time writer with net/textproto's
// DotWriter, the reference, on every input below cut at every point.
func TestDotWriter(t *testing.T) {
	inputs := []string{
		"",
		"hello",
		"hello\r\n",
		"hello\n",
		".leading dot\r\nline\r\n..two dots\r\n.\r\n",
		"a\r\n.\r\nb",
		"bare\nlf\n.dot after lf\n",
		"cr\ralone\r\nend\r",
		"\r\n\r\n.\r\n",
		"x\r\n" + strings.Repeat("y", 5000) + "\r\n.z\r\n",
		"ends with cr\r",
		".",
	}
	for _, in := range inputs {
		var want bytes.Buffer
		tw := textproto.NewWriter(bufio.NewWriter(&want))
		dw := tw.DotWriter()
		io.WriteString(dw, in)
		dw.Close()
		tw.W.Flush()
		for cut := 0; cut <= len(in); cut++ {
			var got bytes.Buffer
			bw := bufio.NewWriter(&got)
			d := newDotWriter(bw)
			d.Write([]byte(in[:cut]))
			d.Write([]byte(in[cut:]))
			if err := d.close(); err != nil {
				t.Fatal(err)
			}
			bw.Flush()
			if got.String() != want.String() {
				t.Fatalf("input %q cut at %d:\n got %q\nwant %q", in, cut, got.String(), want.String())
			}
		}
	}
}
