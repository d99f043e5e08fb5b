package msit

import (
	"testing"
	"unicode/utf8"
)

func TestUnescape(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain text passes through", "MSIT hosts forum", "MSIT hosts forum"},
		{"percent bytes are Latin-1", "MSIT%20Hosts%20%26%20caf%E9", "MSIT Hosts & café"},
		{"lower-case hex works", "%3c%3E", "<>"},
		{"u escapes are UTF-16 units", "%u201CK-Science%u201D", "“K-Science”"},
		{"Korean", "%uACFC%uD559%uAE30%uC220", "과학기술"},
		{"surrogate pairs combine", "smile %uD83D%uDE00!", "smile 😀!"},
		{"a lone high surrogate is replaced", "a%uD83Db", "a\uFFFDb"},
		{"a high surrogate at the end is replaced", "a%uD83D", "a\uFFFD"},
		{"a lone low surrogate is replaced", "a%uDE00b", "a\uFFFDb"},
		{"two high surrogates: the first is lone", "%uD83D%uD83D%uDE00", "\uFFFD😀"},
		{"a high surrogate then a Latin-1 escape", "%uD83D%41", "\uFFFDA"},
		{"malformed escapes stay as they are", "100% %zz %u12 %uXYZW %", "100% %zz %u12 %uXYZW %"},
		{"a short u escape falls back to two hex digits", "%u00", "%u00"},
		{"%u with two hex digits then text", "%41BC", "ABC"},
		{"upper-case U is not an escape", "%U0041", "%U0041"},
		{"entities are left for the caller", "R%26amp%3BD", "R&amp;D"},
		{"literal non-ASCII passes through", "과학 %u2013 tech", "과학 – tech"},
		{"invalid UTF-8 input becomes U+FFFD", "a\xffb", "a\uFFFDb"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Unescape(tt.in); got != tt.want {
				t.Errorf("Unescape(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestUnquoteJS(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"single quotes", `'abc'`, "abc", false},
		{"double quotes", `"a'b"`, "a'b", false},
		{"escaped quote and backslash", `'it\'s a \\ path'`, `it's a \ path`, false},
		{"control escapes", `'a\nb\tc\rd'`, "a\nb\tc\rd", false},
		{"hex escape", `'\x41\x42'`, "AB", false},
		{"unicode escape", `'\u0041\uAC00'`, "A가", false},
		{"surrogate pair escapes combine", `'\uD83D\uDE00'`, "😀", false},
		{"lone surrogate escape is replaced", `'\uD83D!'`, "\uFFFD!", false},
		{"code point escape", `'\u{1F600}'`, "😀", false},
		{"unknown escape is the character", `'\q\/'`, "q/", false},
		{"malformed hex escape keeps the letter", `'\xZZ'`, "xZZ", false},
		{"line continuation", "'a\\\nb'", "ab", false},
		{"no quotes", `abc`, "", true},
		{"mismatched quotes", `'abc"`, "", true},
		{"quote inside ends early", `'a'b'`, "", true},
		{"too short", `'`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := UnquoteJS(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("UnquoteJS(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("UnquoteJS(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzUnescape(f *testing.F) {
	for _, s := range []string{
		"MSIT%20Hosts%20Korea-Latin%20America%20%26amp%3B%20Caribbean",
		"%u201CK-Science%u201D%20Week", "%uD83D%uDE00", "%uD83D", "%uDE00%", "%u", "%",
		"%E9%u00E9", "a\xffb",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Unescape(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Unescape(%q) = %q: not valid UTF-8", s, got)
		}
		// Text without a percent sign is only cleaned of invalid bytes.
		if utf8.ValidString(s) && !containsByte(s, '%') && got != s {
			t.Fatalf("Unescape(%q) = %q: changed text without escapes", s, got)
		}
		lit, _ := UnquoteJS("'" + s + "'")
		if !utf8.ValidString(lit) {
			t.Fatalf("UnquoteJS of %q gave invalid UTF-8 %q", s, lit)
		}
	})
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}
