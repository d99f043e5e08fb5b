// Command gensubs writes a subscriber CSV for `msitfeed subscribers import`
// benchmarks: n rows with realistic addresses and names, a spread of board
// choices, a few keyword filters and a few non-active statuses, the same
// file for the same -n and -seed.
//
//	gensubs -n 1000000 -joined 2026-11-01 >subscribers.csv
//
// Every address is unique (the row number is part of it). With -bad-last
// the last row has an address with no domain, so an all-or-nothing import
// of the file must write nothing.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"strconv"
	"time"
)

var (
	first   = []string{"jisoo", "minjun", "seoyeon", "jiwoo", "hyun", "anna", "david", "maria", "james", "sofia", "liam", "yuna", "taeho", "emma", "noah", "hana", "kevin", "mina", "daniel", "sara"}
	last    = []string{"kim", "lee", "park", "choi", "jung", "kang", "cho", "yoon", "jang", "lim", "smith", "garcia", "muller", "rossi", "tanaka", "nguyen", "brown", "silva", "novak", "han"}
	domains = []string{"gmail.com", "naver.com", "daum.net", "outlook.com", "yahoo.co.kr", "korea.kr", "msit.go.kr", "kaist.ac.kr", "snu.ac.kr", "example.org"}
	// Board choices: most take everything, the rest one or two boards.
	boardSets = []string{"", "", "", "", "press", "press,notice", "notice", "trends", "press,trends,newsletter", "photo"}
	// One row in twenty has a keyword filter.
	matches = []string{"(?i)semiconductor", "(?i)\\bAI\\b", "5G|6G", "(?i)quantum", "(?i)space|satellite"}
)

func main() {
	n := flag.Int("n", 1000000, "rows to write")
	seed := flag.Uint64("seed", 1, "random seed")
	joined := flag.String("joined", time.Now().AddDate(0, -1, 0).Format(time.DateOnly), "created and confirmed date of every row (2006-01-02)")
	badLast := flag.Bool("bad-last", false, "make the last row's address invalid")
	flag.Parse()
	if _, err := time.Parse(time.DateOnly, *joined); err != nil {
		log.Fatalf("gensubs: -joined %q is not a date like 2006-01-02", *joined)
	}
	rng := rand.New(rand.NewPCG(*seed, 0))
	w := bufio.NewWriterSize(os.Stdout, 1<<16)
	w.WriteString("email,name,boards,status,created,confirmed,match\n")
	var line []byte
	for i := range *n {
		f, l := first[rng.IntN(len(first))], last[rng.IntN(len(last))]
		line = line[:0]
		line = append(line, f...)
		line = append(line, '.')
		line = append(line, l...)
		line = strconv.AppendInt(line, int64(i), 10)
		if *badLast && i == *n-1 {
			line = append(line, "@"...)
		} else {
			line = append(line, '@')
			line = append(line, domains[rng.IntN(len(domains))]...)
		}
		line = fmt.Appendf(line, ",%c%s %c%s,", f[0]-'a'+'A', f[1:], l[0]-'a'+'A', l[1:])
		if b := boardSets[rng.IntN(len(boardSets))]; b != "" {
			line = append(line, '"')
			line = append(line, b...)
			line = append(line, '"')
		}
		status, confirmed := "active", *joined
		switch r := rng.IntN(100); {
		case r < 2:
			status, confirmed = "pending", ""
		case r < 3:
			status = "unsubscribed"
		}
		line = fmt.Appendf(line, ",%s,%s,%s,", status, *joined, confirmed)
		if rng.IntN(20) == 0 {
			line = append(line, matches[rng.IntN(len(matches))]...)
		}
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			log.Fatalf("gensubs: %v", err)
		}
	}
	if err := w.Flush(); err != nil {
		log.Fatalf("gensubs: %v", err)
	}
}
