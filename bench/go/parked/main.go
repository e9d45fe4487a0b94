// Twin of bench/parked.c: n goroutines each park in wg.Wait on one closed gate; main
// measures the resident set size (/proc/self/statm) before the spawns and once every
// goroutine has parked, then opens the gate and waits for them to end. Figure: resident
// bytes per parked goroutine.
package main

import (
	"flag"
	"fmt"
	"goro/bench/internal/procmem"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	n := flag.Uint64("n", 1000000, "goroutines to park")
	flag.Parse()
	if *n < 1 || *n > 100000000 {
		flag.Usage()
		os.Exit(2)
	}

	var gate, exited sync.WaitGroup
	var arrived uint64
	gate.Add(1)
	exited.Add(int(*n))
	before := procmem.RSS("parked")
	start := time.Now()
	for i := uint64(0); i < *n; i++ {
		go func() {
			atomic.AddUint64(&arrived, 1)
			gate.Wait()
			exited.Done()
		}()
	}
	for atomic.LoadUint64(&arrived) < *n {
		time.Sleep(time.Millisecond)
	}
	// The last ones counted themselves but may not have parked yet: give them a moment.
	time.Sleep(20 * time.Millisecond)
	after := procmem.RSS("parked")
	ns := time.Since(start).Nanoseconds()
	gate.Done()
	exited.Wait()
	fmt.Printf("# %d goroutines parked in %.0f ms; rss %.1f MiB -> %.1f MiB\n", *n,
		float64(ns)/1e6, float64(before)/1048576, float64(after)/1048576)
	fmt.Printf("RESULT bytes_per_parked %.2f bytes\n", float64(after-before)/float64(*n))
}
