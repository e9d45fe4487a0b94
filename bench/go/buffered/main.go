// Twin of bench/buffered.c: one producer and one consumer stream n items through a
// buffered channel of capacity 128, with 1 P and with every P. Figure: ns per item.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

func items(n, capacity uint64) float64 {
	ch := make(chan uint64, capacity)
	start := time.Now()
	go func() {
		for i := uint64(0); i < n; i++ {
			ch <- i
		}
		close(ch)
	}()
	want := uint64(0)
	for v := range ch {
		if v != want {
			fmt.Fprintf(os.Stderr, "buffered: got %d, want %d\n", v, want)
			os.Exit(1)
		}
		want++
	}
	ns := time.Since(start).Nanoseconds()
	if want != n {
		fmt.Fprintf(os.Stderr, "buffered: %d items arrived, want %d\n", want, n)
		os.Exit(1)
	}
	return float64(ns) / float64(n)
}

func main() {
	n := flag.Uint64("n", 10000000, "items")
	capacity := flag.Uint64("cap", 128, "channel capacity")
	flag.Parse()
	if *n < 1 || *n > 1<<40 || *capacity < 1 || *capacity > 1<<20 {
		flag.Usage()
		os.Exit(2)
	}
	all := runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(1)
	one := items(*n, *capacity)
	runtime.GOMAXPROCS(all)
	many := items(*n, *capacity)
	fmt.Printf("# %d Ps, capacity %d\n", all, *capacity)
	fmt.Printf("RESULT buffered_1p %.2f ns\n", one)
	fmt.Printf("RESULT buffered_allp %.2f ns\n", many)
}
