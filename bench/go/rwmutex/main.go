// Twin of bench/rwmutex.c: 4 goroutines on all Ps share n operations on a counter guarded
// by a sync.RWMutex; every tenth operation of each goroutine is a write, the rest reads.
// Figure: wall time per operation.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

type workerResult struct {
	seen uint64
	_    [56]byte // a cache line each
}

func main() {
	n := flag.Uint64("n", 50000000, "operations in all")
	goroutines := flag.Uint64("goroutines", 4, "goroutines sharing the lock")
	flag.Parse()
	if *n < 1 || *n > 1<<40 || *goroutines < 1 || *goroutines > 100000 || *n < *goroutines {
		flag.Usage()
		os.Exit(2)
	}
	var rw sync.RWMutex
	var counter uint64 // guarded by rw
	var done sync.WaitGroup
	per := *n / *goroutines
	total := per * *goroutines
	writes := (per + 9) / 10 * *goroutines
	results := make([]workerResult, *goroutines)
	done.Add(int(*goroutines))
	start := time.Now()
	for g := uint64(0); g < *goroutines; g++ {
		go func(w *workerResult) {
			seen := uint64(0)
			for i := uint64(0); i < per; i++ {
				if i%10 == 0 {
					rw.Lock()
					counter++
					rw.Unlock()
				} else {
					rw.RLock()
					seen += counter
					rw.RUnlock()
				}
			}
			w.seen = seen
			done.Done()
		}(&results[g])
	}
	done.Wait()
	ns := time.Since(start).Nanoseconds()
	fmt.Printf("# %d Ps, %d goroutines, %d writes\n", runtime.GOMAXPROCS(0), *goroutines, writes)
	if counter != writes {
		fmt.Fprintf(os.Stderr, "rwmutex: counter is %d, want %d\n", counter, writes)
		os.Exit(1)
	}
	fmt.Printf("RESULT rwmutex_allp %.2f ns\n", float64(ns)/float64(total))
}
