// Command dbstat checkpoints an msitfeed SQLite database's write-ahead log
// into the main file and prints what bench/run reports about its size:
//
//	dbstat msitfeed.db
//	items 1000 attachments 800 file_bytes 5242880 page_size 4096 pages 1280 free_pages 0
//
// Run it only when no other process has the database open.
package main

import (
	"database/sql"
	"fmt"
	"log"
	"os"

	_ "modernc.org/sqlite"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: dbstat FILE")
	}
	path := os.Args[1]
	if _, err := os.Stat(path); err != nil {
		log.Fatalf("dbstat: %v", err)
	}
	d, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		log.Fatalf("dbstat: open %s: %v", path, err)
	}
	defer d.Close()
	d.SetMaxOpenConns(1)
	var busy, logFrames, checkpointed int
	if err := d.QueryRow(`PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &checkpointed); err != nil {
		log.Fatalf("dbstat: checkpoint %s: %v", path, err)
	}
	if busy != 0 {
		log.Fatalf("dbstat: checkpoint %s: database busy; stop the processes using it first", path)
	}
	count := func(q string) int64 {
		var n int64
		if err := d.QueryRow(q).Scan(&n); err != nil {
			log.Fatalf("dbstat: %s: %v", q, err)
		}
		return n
	}
	items := count(`SELECT count(*) FROM items`)
	atts := count(`SELECT count(*) FROM attachments`)
	pageSize := count(`PRAGMA page_size`)
	pages := count(`PRAGMA page_count`)
	free := count(`PRAGMA freelist_count`)
	fi, err := os.Stat(path)
	if err != nil {
		log.Fatalf("dbstat: %v", err)
	}
	fmt.Printf("items %d attachments %d file_bytes %d page_size %d pages %d free_pages %d\n",
		items, atts, fi.Size(), pageSize, pages, free)
}
