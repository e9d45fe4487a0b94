// Twin of bench/pingpong.c: two goroutines pass a token back and forth over two
// unbuffered channels, with 1 P and with every P. Figure: ns per round trip.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

func roundTrips(n uint64) float64 {
	ping := make(chan uint64)
	pong := make(chan uint64)
	done := make(chan struct{})
	go func() {
		for v := range ping {
			pong <- v
		}
		close(done)
	}()
	start := time.Now()
	for i := uint64(0); i < n; i++ {
		ping <- i
		if back := <-pong; back != i {
			fmt.Fprintf(os.Stderr, "pingpong: got %d back for %d\n", back, i)
			os.Exit(1)
		}
	}
	ns := time.Since(start).Nanoseconds()
	close(ping)
	<-done
	return float64(ns) / float64(n)
}

func main() {
	n := flag.Uint64("n", 1000000, "round trips")
	flag.Parse()
	if *n < 1 || *n > 1<<40 {
		flag.Usage()
		os.Exit(2)
	}
	all := runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(1)
	one := roundTrips(*n)
	runtime.GOMAXPROCS(all)
	many := roundTrips(*n)
	fmt.Printf("# %d Ps\n", all)
	fmt.Printf("RESULT pingpong_1p %.2f ns\n", one)
	fmt.Printf("RESULT pingpong_allp %.2f ns\n", many)
}
