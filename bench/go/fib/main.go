// Twin of bench/fib.c: fib(27) where every call fib(n) with n >= 2 runs fib(n-1) in a new
// goroutine, computes fib(n-2) itself and waits for the child's result on a channel
// (capacity 1). All Ps. Figure: wall time in ms.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

func fib(k uint64) uint64 {
	if k < 2 {
		return k
	}
	result := make(chan uint64, 1)
	go func() { result <- fib(k - 1) }()
	b := fib(k - 2)
	return <-result + b
}

func main() {
	n := flag.Uint64("n", 27, "compute fib(n)")
	flag.Parse()
	if *n > 40 {
		flag.Usage()
		os.Exit(2)
	}
	start := time.Now()
	got := fib(*n)
	ns := time.Since(start).Nanoseconds()
	a, b := uint64(0), uint64(1)
	for i := uint64(0); i < *n; i++ {
		a, b = b, a+b
	}
	fmt.Printf("# %d Ps, fib(%d) = %d\n", runtime.GOMAXPROCS(0), *n, got)
	if got != a {
		fmt.Fprintf(os.Stderr, "fib: fib(%d) = %d, want %d\n", *n, got, a)
		os.Exit(1)
	}
	fmt.Printf("RESULT fib_ms %.2f ms\n", float64(ns)/1e6)
}
