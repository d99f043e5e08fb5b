package msittest

import (
	"fmt"
	"time"
)

// SampleToday returns the date SamplePosts are dated back from:
// 2024-11-29. The newest sample post of each board is on or before it.
func SampleToday() time.Time { return time.Date(2024, time.November, 29, 0, 0, 0, 0, time.UTC) }

// SamplePostsPerBoard is how many posts SamplePosts gives each board.
const SamplePostsPerBoard = 25

var sampleTopics = []string{
	"AI semiconductors", "6G networks", "quantum technology", "the Nuri space launch vehicle",
	"digital inclusion", "bio-health data", "cybersecurity", "open-source software",
	"carbon-neutral ICT", "R&D innovation", "the metaverse", "data centres",
}

var samplePartners = []string{
	"the United States", "the United Kingdom", "Japan", "Germany", "Singapore", "Canada",
	"the European Union", "Australia", "Viet Nam", "the UAE",
}

var sampleDepartments = []string{
	"International Cooperation Division", "Science & Technology Policy Division", "AI Policy Division",
	"Network Policy Division", "Space Policy Division", "Quantum Technology Division",
	"Information Protection Policy Division", "Digital Inclusion Division", "Spokesperson's Office",
	"Research Policy Bureau",
}

// sampleTitles gives each board's titles: fixed ones at some positions,
// generated ones elsewhere.
var sampleSpecial = map[string]map[int]string{
	"press": {
		0: "MSIT Hosts Korea-Latin America & Caribbean Digital Forum",
		3: "“K-Science” Week 2024 opens with 과학기술 fair",
		7: "Minister meets AI start-ups 😀 at Pangyo",
	},
	"notice": {
		2: "Call for 2025 R&D proposals: <AI Basic Act> public consultation",
		5: "Recruitment of the 2025 Global ICT Fellows (정부초청 장학생)",
	},
	"photo": {
		0: "Photo: Minister visits KSTAR fusion lab 😀",
		4: "Photo: “Digital Bill of Rights” ceremony",
	},
	"trends": {
		1: "Korea’s ICT exports rise for the 12th month in a row",
		6: "Trends: 5G subscribers pass 34 million — 이동통신 statistics",
	},
	"newsletter": {
		0: "MSIT Newsletter Vol. 42 — 과학기술정보통신부",
	},
}

func sampleTitle(board string, i int) string {
	if t, ok := sampleSpecial[board][i]; ok {
		return t
	}
	topic := sampleTopics[(i*7+len(board))%len(sampleTopics)]
	partner := samplePartners[(i*3+len(board))%len(samplePartners)]
	switch board {
	case "press":
		switch i % 4 {
		case 0:
			return fmt.Sprintf("MSIT announces a national strategy for %s", topic)
		case 1:
			return fmt.Sprintf("Korea and %s sign an MOU on %s", partner, topic)
		case 2:
			return fmt.Sprintf("Vice Minister discusses %s with industry leaders", topic)
		default:
			return fmt.Sprintf("2025 budget for %s confirmed at KRW %d.%d trillion", topic, 1+i%5, i%10)
		}
	case "notice":
		switch i % 3 {
		case 0:
			return fmt.Sprintf("Notice of public hearing on %s", topic)
		case 1:
			return fmt.Sprintf("Call for applications: %s fellowship programme %d", topic, 2025)
		default:
			return fmt.Sprintf("Results of the %s R&D project selection", topic)
		}
	case "photo":
		return fmt.Sprintf("Photo: Minister meets the delegation of %s", partner)
	case "trends":
		switch i % 2 {
		case 0:
			return fmt.Sprintf("Trends: %s market outlook, %d", topic, 2024-i/12)
		default:
			return fmt.Sprintf("ICT statistics: %s indicators for Q%d", topic, 1+i%4)
		}
	default:
		return fmt.Sprintf("MSIT Newsletter Vol. %d", 42-i)
	}
}

// sampleIDBase gives each board's ids their own range.
var sampleIDBase = map[string]int64{"notice": 3000, "press": 1284 - SamplePostsPerBoard, "photo": 5480, "trends": 700, "newsletter": 200}

// SamplePosts returns a fixed, realistic set of posts: SamplePostsPerBoard
// for each of the five boards, dated back from SampleToday(), with titles
// holding curly quotes, Korean, an emoji beyond the BMP and ampersands;
// press releases with a PDF and an HWP attachment; photo news with
// thumbnails. Every call returns the same posts.
func SamplePosts() []Post {
	var posts []Post
	for bi, bd := range Boards() {
		for i := range SamplePostsPerBoard {
			id := sampleIDBase[bd.Slug] + int64(SamplePostsPerBoard-i)
			date := SampleToday().AddDate(0, 0, -(i*3 + bi))
			p := Post{
				Board:      bd.Slug,
				ID:         id,
				Title:      sampleTitle(bd.Slug, i),
				Date:       date.Format("2006-01-02"),
				Department: sampleDepartments[(i+bi)%len(sampleDepartments)],
			}
			p.BodyHTML = sampleBody(bd.Slug, p, i)
			switch bd.Slug {
			case "press":
				p.Attachments = []Attachment{
					{Name: fmt.Sprintf("Press release %d.pdf", id), FileNo: 54000 + id, Ord: 1, Ext: "pdf"},
					{Name: fmt.Sprintf("보도자료 %d.hwp", id), FileNo: 54000 + id, Ord: 2, Ext: "hwp"},
				}
			case "notice":
				if i%4 == 0 {
					p.Attachments = []Attachment{
						{Name: "Application form.hwpx", FileNo: 61000 + id, Ord: 1, Ext: "hwpx"},
						{Name: "Guidelines & FAQ.docx", FileNo: 61000 + id, Ord: 2, Ext: "docx"},
					}
				}
			case "photo":
				p.Thumbnail = fmt.Sprintf("/upload/photo/%d/thumb_%d.jpg", date.Year(), id)
			case "trends":
				if i%5 == 0 {
					p.Attachments = []Attachment{{Name: fmt.Sprintf("ICT statistics %d.xlsx", id), FileNo: 70000 + id, Ord: 1, Ext: "xlsx"}}
				}
			case "newsletter":
				p.Attachments = []Attachment{{Name: fmt.Sprintf("MSIT Newsletter Vol. %d.pdf", 42-i), FileNo: 80000 + id, Ord: 1, Ext: "pdf"}}
			}
			posts = append(posts, p)
		}
	}
	return posts
}

func sampleBody(board string, p Post, i int) string {
	topic := sampleTopics[(i*5+len(board))%len(sampleTopics)]
	body := fmt.Sprintf(`<p>The Ministry of Science and ICT (MSIT) announced on %s that it will strengthen its support for %s.</p>
<p>&ldquo;We will work closely with industry and academia,&rdquo; said the %s.</p>`, p.Date, topic, esc(p.Department))
	switch board {
	case "press":
		body += "\n<p>Please refer to the attached PDF for details.</p>"
		if i%6 == 1 {
			body += "\n<script>trackView('" + fmt.Sprint(p.ID) + "');</script>"
		}
	case "photo":
		body += fmt.Sprintf("\n<p><img src=\"/upload/photo/%s/%d.jpg\" alt=\"%s\"></p>", p.Date[:4], p.ID, esc(p.Title))
	case "trends":
		body += fmt.Sprintf("\n<table class=\"tbl\"><tr><th>Indicator</th><th>Value</th></tr><tr><td>%s</td><td>%d.%d%%</td></tr></table>", esc(topic), 3+i%7, i%10)
	}
	return body
}
