// Twin of examples/hello_server.c in Go's net/http, for scripts/bench_http.sh: every
// request is answered `Hello, "<path>"`. -addr (port 0: any free port; the bound address
// is printed as "listening on HOST:PORT"), -procs (GOMAXPROCS; 0: every CPU). The
// timeouts are hello_server's defaults: 5 s to read a request's headers, 60 s idle.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (port 0: any free port)")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0: every CPU)")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Hello, %q", r.URL.Path)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "http:", err)
		os.Exit(1)
	}
	host, _, _ := net.SplitHostPort(*addr)
	fmt.Printf("listening on %s:%d\n", host, ln.Addr().(*net.TCPAddr).Port)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "http:", err)
		os.Exit(1)
	}
}
