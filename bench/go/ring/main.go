// Twin of bench/ring.c: 503 goroutines in a ring of unbuffered channels pass a token n
// hops, with 1 P and with every P. Figure: ns per hop.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

const ring = 503

func hops(n uint64) float64 {
	var links [ring]chan uint64
	for i := range links {
		links[i] = make(chan uint64)
	}
	finished := make(chan uint64, 1)
	var alive sync.WaitGroup
	alive.Add(ring)
	for i := 0; i < ring; i++ {
		go func(i uint64) {
			in, out := links[i], links[(i+1)%ring]
			for token := range in {
				if token == 0 {
					finished <- i
					continue
				}
				out <- token - 1
			}
			alive.Done()
		}(uint64(i))
	}
	start := time.Now()
	links[0] <- n
	last := <-finished
	ns := time.Since(start).Nanoseconds()
	if last != n%ring {
		fmt.Fprintf(os.Stderr, "ring: goroutine %d got the last hop, want %d\n", last, n%ring)
		os.Exit(1)
	}
	for i := range links {
		close(links[i])
	}
	alive.Wait()
	return float64(ns) / float64(n)
}

func main() {
	n := flag.Uint64("n", 5000000, "hops per run")
	flag.Parse()
	if *n < 1 || *n > 1<<40 {
		flag.Usage()
		os.Exit(2)
	}
	all := runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(1)
	one := hops(*n)
	runtime.GOMAXPROCS(all)
	many := hops(*n)
	fmt.Printf("# %d Ps, %d goroutines, %d hops\n", all, ring, *n)
	fmt.Printf("RESULT ring_1p %.2f ns\n", one)
	fmt.Printf("RESULT ring_allp %.2f ns\n", many)
}
