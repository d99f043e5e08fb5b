package mailer

import (
	"errors"
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	ok := []struct {
		name, in, email, key, display string
	}{
		{"a bare address is kept", "jane@example.org", "jane@example.org", "jane@example.org", ""},
		{"surrounding space is trimmed", "  jane@example.org\t", "jane@example.org", "jane@example.org", ""},
		{"the domain is lower-cased, the local part keeps its case", "Jane.Doe@Example.ORG", "Jane.Doe@example.org", "jane.doe@example.org", ""},
		{"a display name is taken apart", "Jane Doe <jane@example.org>", "jane@example.org", "jane@example.org", "Jane Doe"},
		{"a quoted display name with a comma", `"Doe, Jane" <jane@example.org>`, "jane@example.org", "jane@example.org", "Doe, Jane"},
		{"an encoded-word display name is decoded", "=?UTF-8?B?7ZmN6ri464+Z?= <hong@example.kr>", "hong@example.kr", "hong@example.kr", "홍길동"},
		{"a comment becomes the name", "jane@example.org (Jane)", "jane@example.org", "jane@example.org", "Jane"},
		{"an IDN domain becomes punycode", "user@bücher.example", "user@xn--bcher-kva.example", "user@xn--bcher-kva.example", ""},
		{"an upper-case IDN domain is mapped first", "user@BÜCHER.example", "user@xn--bcher-kva.example", "user@xn--bcher-kva.example", ""},
		{"a Korean domain becomes punycode", "Kim <kim@한국.kr>", "kim@xn--3e0b707e.kr", "kim@xn--3e0b707e.kr", "Kim"},
		{"plus and other atext survive", "a+b_c-d'e@sub.example.org", "a+b_c-d'e@sub.example.org", "a+b_c-d'e@sub.example.org", ""},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAddress(tt.in)
			if err != nil {
				t.Fatalf("ParseAddress(%q): %v", tt.in, err)
			}
			if a.Email != tt.email || a.Key != tt.key || a.Name != tt.display {
				t.Errorf("ParseAddress(%q) = %+v, want email %q key %q name %q", tt.in, a, tt.email, tt.key, tt.display)
			}
		})
	}

	bad := []struct {
		name, in, reason string
	}{
		{"empty is rejected", "   ", "empty"},
		{"no @ is rejected", "jane.example.org", "@"},
		{"two addresses are rejected", "a@example.org, b@example.org", "single address"},
		{"a dotless domain is rejected", "jane@gmail", "no dot"},
		{"an IP literal is rejected", "jane@[192.0.2.1]", "IP-address"},
		{"a quoted local part is rejected", `"jane doe"@example.org`, "quoting"},
		{"a non-ASCII local part is rejected", "jänë@example.org", "non-ASCII"},
		{"a double dot is rejected", "jane..doe@example.org", ""},
		{"a line break is rejected", "jane@example.org\r\nBcc: x@example.org", "line break"},
		{"an unclosed angle bracket is rejected", "Jane <jane@example.org", ""},
		{"an over-long local part is rejected", strings.Repeat("a", 65) + "@example.org", "local part longer"},
		{"an over-long address is rejected", "a@" + strings.Repeat("abcdefghi.", 26) + "org", ""},
		{"an underscore in the domain is rejected", "a@ex_ample.org", ""},
		{"a hyphen at a label edge is rejected", "a@-example.org", ""},
		{"invalid UTF-8 is rejected", "a@b\xe9cher.org", "UTF-8"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAddress(tt.in)
			if err == nil {
				t.Fatalf("ParseAddress(%q) = %+v, want an error", tt.in, a)
			}
			if !errors.Is(err, ErrInvalidAddress) {
				t.Errorf("error %v does not wrap ErrInvalidAddress", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
		})
	}
}
