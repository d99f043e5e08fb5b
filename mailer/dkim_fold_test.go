package mailer

import (
	"strings"
	"testing"
)

// relaxed is RFC 6376's relaxed canonicalization of a field value: unfold,
// collapse whitespace, trim.
func relaxed(v string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(v, "\r\n", "")), " ")
}

func TestFoldDKIM(t *testing.T) {
	sig := strings.Repeat("QUJD", 86) // 344 characters, as an RSA 2048 signature
	tags := "v=1; c=relaxed/relaxed; d=msitfeed.example; s=mf2026; a=rsa-sha256; t=1767225600; " +
		"h=From:To:Subject:Date:Message-ID:List-Id:List-Unsubscribe:List-Unsubscribe-Post:MIME-Version:Content-Type; " +
		"bh=THf20fFoQFgs57J5841awcvUJzL/A8prd73YB5D1h7U=; b="
	// go-mail 0.8.1 folds by inserting CRLF and a space at column 76, inside tokens too.
	var goMail strings.Builder
	col := len("DKIM-Signature: ")
	for _, c := range tags + sig {
		if col == 76 {
			goMail.WriteString("\r\n ")
			col = 1
		}
		goMail.WriteRune(c)
		col++
	}
	t.Run("folds only between tags, and within b=", func(t *testing.T) {
		got, err := foldDKIM("DKIM-Signature: " + goMail.String() + "\r\n")
		if err != nil {
			t.Fatal(err)
		}
		value, b, _ := strings.Cut(got, "b=")
		if relaxed(value+"b=") != relaxed(tags) {
			t.Errorf("canonicalizes to %q, want what was signed: %q", relaxed(value+"b="), relaxed(tags))
		}
		if strings.Join(strings.Fields(b), "") != sig {
			t.Errorf("b= holds %q, want the signature", b)
		}
		for i, line := range strings.Split("DKIM-Signature: "+got, "\r\n") {
			if len(line) > 78 && !strings.HasPrefix(line, " h=") {
				t.Errorf("line %d is %d characters: %q", i+1, len(line), line)
			}
		}
	})
	t.Run("refuses what it does not know how to fold", func(t *testing.T) {
		for _, field := range []string{"X-Other: v=1; b=abc\r\n", "DKIM-Signature: v=1; bh=x\r\n", "DKIM-Signature: v=1; b=\r\n"} {
			if _, err := foldDKIM(field); err == nil {
				t.Errorf("foldDKIM(%q) succeeded", field)
			}
		}
	})
}
