// Command fakesite serves the fake MSIT site of feeds/msit/msittest on
// loopback for bench/run: a generated set of posts with full-length bodies,
// a latency per response, and an admin listener on a second port that adds
// posts and reads or resets the request counters while the site runs.
//
//	fakesite -per-board 200 -latency 50ms -recent 12 -addr-file F
//
// Once both listeners are up it writes "SITE_URL ADMIN_URL" to -addr-file
// (or stdout) and serves until SIGINT or SIGTERM. Admin endpoints:
//
//	POST /add?n=3      publish n new posts, dated today, over the boards in turn
//	GET  /requests     request counts: total robots home list view download image other
//	POST /reset        set the counters to zero
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/msitfeed/msitfeed/feeds/msit/msittest"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address of the site")
	admin := flag.String("admin", "127.0.0.1:0", "address of the admin endpoints")
	perBoard := flag.Int("per-board", 200, "posts per board")
	latency := flag.Duration("latency", 0, "delay before every response")
	pageSize := flag.Int("page-size", 10, "rows per list page")
	recent := flag.Int("recent", 12, "this many of the newest posts (over all boards) are dated within the last 6 days; the rest are 30 days old and older")
	paragraphs := flag.Int("paragraphs", 8, "paragraphs in each post body (three sentences, about 300 bytes)")
	addrFile := flag.String("addr-file", "", "write \"SITE_URL ADMIN_URL\" here once listening (default stdout)")
	flag.Parse()

	gen := &generator{paragraphs: *paragraphs, now: time.Now()}
	posts := gen.initial(*perBoard, *recent)
	site := msittest.NewSite(posts, msittest.WithLatency(*latency), msittest.WithPageSize(*pageSize))

	siteLn, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("fakesite: listen %s: %v", *listen, err)
	}
	adminLn, err := net.Listen("tcp", *admin)
	if err != nil {
		log.Fatalf("fakesite: listen %s: %v", *admin, err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /add", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.FormValue("n"))
		if err != nil || n < 1 {
			http.Error(w, "n must be a positive integer", http.StatusBadRequest)
			return
		}
		for _, p := range gen.fresh(n) {
			site.AddPost(p)
			fmt.Fprintf(w, "%s %d %s\n", p.Board, p.ID, p.Title)
		}
	})
	mux.HandleFunc("GET /requests", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "total %d", site.Requests())
		for _, k := range []msittest.Kind{msittest.KindRobots, msittest.KindHome, msittest.KindList, msittest.KindView,
			msittest.KindDownload, msittest.KindImage, msittest.KindOther} {
			fmt.Fprintf(w, " %s %d", k, site.RequestsOf(k))
		}
		fmt.Fprintln(w)
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, r *http.Request) {
		site.ResetRequests()
		fmt.Fprintln(w, "ok")
	})

	siteSrv := &http.Server{Handler: site, ReadHeaderTimeout: 10 * time.Second}
	adminSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go siteSrv.Serve(siteLn)
	go adminSrv.Serve(adminLn)

	line := fmt.Sprintf("http://%s http://%s\n", siteLn.Addr(), adminLn.Addr())
	if *addrFile == "" {
		fmt.Print(line)
	} else if err := writeFileAtomic(*addrFile, line); err != nil {
		log.Fatalf("fakesite: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	siteSrv.Close()
	adminSrv.Close()
}

// writeFileAtomic writes s to path through a rename, so a reader polling
// for the file never sees half a line.
func writeFileAtomic(path, s string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// generator makes posts in the shape of the site's: every board has its own
// id range; bodies are several paragraphs, like a real press release.
type generator struct {
	paragraphs int
	now        time.Time

	mu     sync.Mutex
	nextID map[string]int64
	added  int
}

var boards = []string{"notice", "press", "photo", "trends", "newsletter"}

var idBase = map[string]int64{"notice": 3000, "press": 1000, "photo": 5000, "trends": 700, "newsletter": 200}

var topics = []string{
	"AI semiconductors", "6G networks", "quantum technology", "the Nuri space launch vehicle",
	"digital inclusion", "bio-health data", "cybersecurity", "open-source software",
	"carbon-neutral ICT", "R&D innovation", "the metaverse", "data centres",
}

var departments = []string{
	"International Cooperation Division", "Science & Technology Policy Division", "AI Policy Division",
	"Network Policy Division", "Space Policy Division", "Quantum Technology Division",
	"Information Protection Policy Division", "Spokesperson's Office",
}

// initial returns perBoard posts per board, oldest first in id order. The
// recent newest posts, taken over the boards in turn, are dated within the
// last six days; the others from 30 days back, older as the id falls.
func (g *generator) initial(perBoard, recent int) []msittest.Post {
	g.nextID = map[string]int64{}
	var posts []msittest.Post
	for bi, b := range boards {
		// Posts newest first: rank r of board b is the (r*5+bi)-th newest overall.
		for r := range perBoard {
			id := idBase[b] + int64(perBoard-r)
			var date time.Time
			if overall := r*len(boards) + bi; overall < recent {
				date = g.now.AddDate(0, 0, -(overall*6)/max(recent, 1))
			} else {
				date = g.now.AddDate(0, 0, -30-r)
			}
			posts = append(posts, g.post(b, id, r, date))
		}
		g.nextID[b] = idBase[b] + int64(perBoard) + 1
	}
	return posts
}

// fresh returns n new posts dated today, over the boards in turn.
func (g *generator) fresh(n int) []msittest.Post {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []msittest.Post
	for range n {
		b := boards[g.added%len(boards)]
		g.added++
		id := g.nextID[b]
		g.nextID[b]++
		out = append(out, g.post(b, id, int(id), time.Now()))
	}
	return out
}

func (g *generator) post(board string, id int64, i int, date time.Time) msittest.Post {
	topic := topics[(i*7+len(board))%len(topics)]
	p := msittest.Post{
		Board:      board,
		ID:         id,
		Title:      fmt.Sprintf("MSIT announces measures on %s (No. %d)", topic, id),
		Date:       date.Format("2006-01-02"),
		Department: departments[(i+len(board))%len(departments)],
	}
	var body strings.Builder
	// Sentences drawn from a vocabulary with a generator seeded by the post,
	// so bodies differ from post to post and compress about as well as real
	// prose (a template repeated word for word would gzip 30:1).
	rng := rand.New(rand.NewPCG(uint64(id), uint64(len(board))))
	for range g.paragraphs {
		body.WriteString("<p>")
		for s := range 3 {
			if s > 0 {
				body.WriteByte(' ')
			}
			body.WriteString(sentence(rng))
		}
		body.WriteString("</p>\n")
	}
	switch board {
	case "press", "newsletter":
		p.Attachments = []msittest.Attachment{
			{Name: fmt.Sprintf("Press release %d.pdf", id), FileNo: 50000 + id, Ord: 1, Ext: "pdf"},
			{Name: fmt.Sprintf("보도자료 %d.hwp", id), FileNo: 50000 + id, Ord: 2, Ext: "hwp"},
		}
	case "photo":
		p.Thumbnail = fmt.Sprintf("/upload/photo/%d/thumb_%d.jpg", date.Year(), id)
		fmt.Fprintf(&body, "<p><img src=\"/upload/photo/%d/%d.jpg\" alt=\"photo %d\"></p>", date.Year(), id, id)
	}
	p.BodyHTML = body.String()
	return p
}

// vocabulary is the words post bodies are made of: a few hundred, so a
// body gzips about 3:1, like real prose.
var vocabulary = strings.Fields(`
ministry science ICT minister vice government policy national strategy research development innovation
industry company companies start-up start-ups university universities institute institutes laboratory
artificial intelligence semiconductor semiconductors chip chips network networks mobile wireless satellite
space launch vehicle orbit quantum computing computer computers communication communications data platform
platforms cloud service services digital inclusion security cybersecurity privacy protection infrastructure
investment budget billion million won trillion fund funding grant grants programme programmes project projects
cooperation partnership agreement memorandum understanding partner partners global international bilateral
forum conference meeting meetings committee council session sessions discussion discussions panel workshop
announced announces plans plan planned support supports supported expand expands expanded strengthen
strengthens strengthened promote promotes promoted launch launched launches develop develops developed build
builds built create creates created improve improves improved foster fosters fostered secure secured
attract attracts attracted deliver delivers delivered reviewed reviews evaluate evaluated assessment
results result outcome outcomes performance progress achievement achievements goal goals target targets
year years month months week quarter half first second third next previous annual regional local central
public private sector sectors market markets export exports growth economy economic social society
citizens people workers researchers scientists engineers students talent talents experts specialists
education training skills jobs employment career careers opportunity opportunities challenge challenges
energy hydrogen battery batteries fusion nuclear climate carbon neutral environment environmental green
health bio biotechnology medical medicine hospital hospitals clinical genome vaccine vaccines drug drugs
standard standards regulation regulations law laws act bill framework guideline guidelines rule rules
open source software hardware device devices robot robots robotics autonomous driving car cars drone drones
metaverse virtual reality content contents media broadcasting telecom operator operators frequency spectrum
fibre optical internet online offline website portal application applications app apps system systems
model models algorithm algorithms safety trust ethics responsible reliable transparent fair inclusive
Korea Korean Seoul Daejeon Pangyo Busan Gwangju Sejong Asia Europe America Japan Germany Canada Singapore
with for from into across through under over about between among during after before within without
the the the the a a a an of of of of to to to and and and and in in in on on by by as at is are was were
will would can could should may must has have had been being which that this these those its their our
new advanced leading key major core strategic future emerging critical essential additional various
several many more most further high higher large larger small smaller fast faster strong stronger
`)

// sentence makes one sentence of a press release from the vocabulary.
func sentence(rng *rand.Rand) string {
	n := 10 + rng.IntN(14)
	words := make([]string, n)
	for i := range words {
		words[i] = vocabulary[rng.IntN(len(vocabulary))]
	}
	words[0] = strings.ToUpper(words[0][:1]) + words[0][1:]
	if rng.IntN(4) == 0 {
		words[n/2] = fmt.Sprintf("%d", 2+rng.IntN(2000))
	}
	return strings.Join(words, " ") + "."
}
