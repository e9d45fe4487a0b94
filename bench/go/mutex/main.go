// Twin of bench/mutex.c: g goroutines on all Ps each lock, increment a shared counter and
// unlock, n/g times. Figure: wall time per lock+unlock pair. Exits 1 if the counter is
// wrong.
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
	n := flag.Uint64("n", 1000000, "lock+unlock pairs in all")
	goroutines := flag.Uint64("goroutines", 4, "goroutines sharing the mutex")
	flag.Parse()
	if *n < 1 || *n > 1<<40 || *goroutines < 1 || *goroutines > 100000 || *n < *goroutines {
		flag.Usage()
		os.Exit(2)
	}

	var mu sync.Mutex
	var counter uint64 // guarded by mu
	var done sync.WaitGroup
	per := *n / *goroutines
	total := per * *goroutines
	start := time.Now()
	done.Add(int(*goroutines))
	for g := uint64(0); g < *goroutines; g++ {
		go func() {
			for i := uint64(0); i < per; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
			done.Done()
		}()
	}
	done.Wait()
	ns := time.Since(start).Nanoseconds()
	fmt.Printf("# %d Ps, %d goroutines\n", runtime.GOMAXPROCS(0), *goroutines)
	if counter != total {
		fmt.Fprintf(os.Stderr, "mutex: counter is %d, want %d\n", counter, total)
		os.Exit(1)
	}
	fmt.Printf("RESULT ns_per_lock %.2f ns\n", float64(ns)/float64(total))
}
