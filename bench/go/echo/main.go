// Twin of bench/echo_server.c: a TCP echo server, one goroutine per connection, for
// scripts/bench_http.sh. -addr (port 0: any free port; the bound address is printed as
// "listening on HOST:PORT"), -procs (GOMAXPROCS; 0: every CPU). Runs until killed.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
)

func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 16384)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9090", "listen address (port 0: any free port)")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0: every CPU)")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
	host, _, _ := net.SplitHostPort(*addr)
	fmt.Printf("listening on %s:%d\n", host, ln.Addr().(*net.TCPAddr).Port)
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "echo: accept:", err)
			continue
		}
		go echo(c)
	}
}
