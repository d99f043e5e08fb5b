// Command freeport prints N loopback TCP ports that were free a moment ago,
// one per line, for bench/run to give to servers that need a fixed address
// (nginx, msitfeed serve, smtp-sink).
package main

import (
	"fmt"
	"log"
	"net"
	"os"
	"strconv"
)

func main() {
	n := 1
	if len(os.Args) > 1 {
		var err error
		if n, err = strconv.Atoi(os.Args[1]); err != nil || n < 1 {
			log.Fatal("usage: freeport [N]")
		}
	}
	// Hold every listener until all are chosen, so the N ports differ.
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatalf("freeport: %v", err)
		}
		lns = append(lns, ln)
	}
	for _, ln := range lns {
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
	}
}
