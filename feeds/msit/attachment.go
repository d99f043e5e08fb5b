package msit

import (
	"net/url"
	"path"
	"strings"

	"github.com/msitfeed/msitfeed/feeds"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// attachments reads the download links under n.
func attachments(base *url.URL, n *html.Node) []feeds.Attachment {
	var out []feeds.Attachment
	index := map[string]int{}
	walk(n, func(a *html.Node) bool {
		if !isElem(a, atom.A) {
			return true
		}
		fileNo, ord, ext, ok := downloadArgs(a)
		if !ok {
			return false
		}
		att := feeds.Attachment{
			Name: stripSize(nodeText(a)),
			URL:  DownloadURL(base, fileNo, ord),
		}
		if att.Name == "" {
			att.Name = strings.TrimSpace(attr(a, "title"))
		}
		if e := fileExt(att.Name); e != "" {
			ext = e
		}
		att.Type = AttachmentType(ext)
		if i, dup := index[att.URL]; dup {
			// A second link to the same file (a "Download" button next to
			// the name): keep the name that looks like a file name.
			if fileExt(out[i].Name) == "" && fileExt(att.Name) != "" {
				out[i] = att
			}
			return false
		}
		index[att.URL] = len(out)
		out = append(out, att)
		return false
	})
	return out
}

// downloadArgs reads fn_download('54751', '3', 'pdf') from a link's onclick
// or href, or atchFileNo and fileOrd from a direct fileDown.do href.
func downloadArgs(a *html.Node) (fileNo, ord, ext string, ok bool) {
	for _, key := range []string{"onclick", "href"} {
		v := attr(a, key)
		if !strings.Contains(v, "fn_download") && !strings.Contains(v, "fn_egov_downFile") {
			continue
		}
		for _, fn := range []string{"fn_download", "fn_egov_downFile"} {
			if args, found := callArgs(v, fn); found && len(args) >= 2 {
				fileNo, ord = strings.TrimSpace(args[0]), strings.TrimSpace(args[1])
				if len(args) >= 3 {
					ext = strings.TrimSpace(args[2])
				}
				if fileNo != "" && ord != "" {
					return fileNo, ord, ext, true
				}
			}
		}
	}
	href := attr(a, "href")
	if !strings.Contains(href, "fileDown.do") {
		return "", "", "", false
	}
	u, err := url.Parse(strings.TrimSpace(href))
	if err != nil {
		return "", "", "", false
	}
	q := u.Query()
	fileNo, ord = queryValue(q, "atchFileNo"), queryValue(q, "fileOrd")
	if fileNo == "" || ord == "" {
		return "", "", "", false
	}
	return fileNo, ord, "", true
}

// stripSize removes a trailing size such as "(1.2MB)" or "[345 KB]".
func stripSize(name string) string {
	name = strings.TrimSpace(name)
	for _, pair := range []string{"()", "[]"} {
		if !strings.HasSuffix(name, pair[1:]) {
			continue
		}
		i := strings.LastIndexByte(name, pair[0])
		if i < 0 {
			continue
		}
		if isSize(name[i+1 : len(name)-1]) {
			return strings.TrimSpace(name[:i])
		}
	}
	return name
}

func isSize(s string) bool {
	s = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
	i := 0
	for i < len(s) && (isDigit(s[i]) || s[i] == '.' || s[i] == ',') {
		i++
	}
	if i == 0 || !isDigit(s[0]) {
		return false
	}
	switch s[i:] {
	case "b", "byte", "bytes", "k", "kb", "kib", "m", "mb", "mib", "g", "gb", "gib":
		return true
	}
	return false
}

// fileExt returns the lower-case extension of a file name without its dot.
func fileExt(name string) string {
	e := path.Ext(strings.TrimSpace(name))
	if len(e) < 2 || len(e) > 6 || strings.ContainsAny(e, " /\\") {
		return ""
	}
	return strings.ToLower(e[1:])
}

var attachmentTypes = map[string]string{
	"pdf":  "application/pdf",
	"hwp":  "application/x-hwp",
	"hwpx": "application/hwp+zip",
	"doc":  "application/msword",
	"docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	"xls":  "application/vnd.ms-excel",
	"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"ppt":  "application/vnd.ms-powerpoint",
	"pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	"zip":  "application/zip",
	"jpg":  "image/jpeg",
	"jpeg": "image/jpeg",
	"png":  "image/png",
	"gif":  "image/gif",
	"txt":  "text/plain",
	"csv":  "text/csv",
	"mp4":  "video/mp4",
}

// AttachmentType returns the MIME type for a file extension (with or
// without its dot, any case), application/octet-stream when unknown.
func AttachmentType(ext string) string {
	if t, ok := attachmentTypes[strings.ToLower(strings.TrimPrefix(strings.TrimSpace(ext), "."))]; ok {
		return t
	}
	return "application/octet-stream"
}
