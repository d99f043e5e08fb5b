package msit

import "testing"

func TestStripSize(t *testing.T) {
	tests := map[string]string{
		"report.pdf (1.2MB)":       "report.pdf",
		"report.hwp [345 KB]":      "report.hwp",
		"data.xlsx (12,345 bytes)": "data.xlsx",
		"Plan (Draft).pdf":         "Plan (Draft).pdf",
		"Notes (2024)":             "Notes (2024)",
		"  spaced.txt  ":           "spaced.txt",
	}
	for in, want := range tests {
		if got := stripSize(in); got != want {
			t.Errorf("stripSize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAttachmentType(t *testing.T) {
	tests := map[string]string{
		"pdf": "application/pdf", "HWP": "application/x-hwp", ".hwpx": "application/hwp+zip",
		"docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
		"png":  "image/png", "txt": "text/plain", "exe": "application/octet-stream", "": "application/octet-stream",
	}
	for ext, want := range tests {
		if got := AttachmentType(ext); got != want {
			t.Errorf("AttachmentType(%q) = %q, want %q", ext, got, want)
		}
	}
}
