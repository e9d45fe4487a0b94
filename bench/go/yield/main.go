// Twin of bench/yield.c: two goroutines on one P take turns, each calling
// runtime.Gosched n/2 times. Figure: wall time per yield.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

func main() {
	n := flag.Uint64("n", 10000000, "yields in all, split over two goroutines")
	flag.Parse()
	if *n < 2 || *n > 1<<40 {
		flag.Usage()
		os.Exit(2)
	}
	runtime.GOMAXPROCS(1)

	var done sync.WaitGroup
	start := time.Now()
	done.Add(2)
	for g := 0; g < 2; g++ {
		go func() {
			for i := uint64(0); i < *n/2; i++ {
				runtime.Gosched()
			}
			done.Done()
		}()
	}
	done.Wait()
	ns := time.Since(start).Nanoseconds()
	fmt.Printf("RESULT ns_per_yield %.2f ns\n", float64(ns)/float64(*n/2*2))
}
