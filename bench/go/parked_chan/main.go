// Twin of bench/parked_chan.c: n goroutines each park in a receive on one unbuffered
// channel; main measures the resident set size (/proc/self/statm) before the spawns and
// once every goroutine has parked (Go has no stack compaction, so there is nothing more
// to wait for), then sends n values, one per goroutine, and waits for all of them. Each
// marks its own slot once and checks the value it got was sent once. Figures: resident
// and page-table (VmPTE) bytes per parked goroutine, ns per wake.
package main

import (
	"flag"
	"fmt"
	"goro/bench/internal/procmem"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	n := flag.Uint64("n", 1000000, "goroutines to park")
	flag.Uint64("settle_ms", 5000, "longest wait for compaction, ms (goro only)")
	flag.Uint64("compact_ms", 5, "compact stacks parked this long, ms (goro only)")
	flag.Uint64("min_compacted", 0, "percent compacted below which to fail (goro only)")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0: every CPU)")
	flag.Parse()
	if *n < 1 || *n > 100000000 {
		flag.Usage()
		os.Exit(2)
	}
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}

	gate := make(chan uint64)
	woken := make([]uint8, *n)
	got := make([]uint8, *n)
	var exited sync.WaitGroup
	var arrived uint64
	exited.Add(int(*n))
	before, ptBefore := procmem.RSS("parked_chan"), procmem.Status("VmPTE")
	start := time.Now()
	for i := uint64(0); i < *n; i++ {
		go func(i uint64) {
			atomic.AddUint64(&arrived, 1)
			v, ok := <-gate
			if !ok || v >= *n {
				fmt.Fprintf(os.Stderr, "parked_chan: goroutine %d: received %d, %v\n", i, v, ok)
				os.Exit(1)
			}
			woken[i]++
			got[v]++
			exited.Done()
		}(i)
	}
	for atomic.LoadUint64(&arrived) < *n {
		time.Sleep(time.Millisecond)
	}
	parked := time.Since(start)
	// The last ones counted themselves but may not have parked yet: give them a moment.
	time.Sleep(20 * time.Millisecond)
	after, ptAfter := procmem.RSS("parked_chan"), procmem.Status("VmPTE")

	wakeStart := time.Now()
	for v := uint64(0); v < *n; v++ {
		gate <- v
	}
	exited.Wait()
	wake := time.Since(wakeStart)
	for i := uint64(0); i < *n; i++ {
		if woken[i] != 1 || got[i] != 1 {
			fmt.Fprintf(os.Stderr, "parked_chan: goroutine %d ran %d times after its wake; "+
				"value %d received %d times\n", i, woken[i], i, got[i])
			os.Exit(1)
		}
	}
	fmt.Printf("# %d goroutines parked in %.0f ms; rss %.1f MiB -> %.1f MiB\n", *n,
		float64(parked.Nanoseconds())/1e6, float64(before)/1048576, float64(after)/1048576)
	fmt.Printf("# all %d woken and counted once in %.0f ms\n", *n, float64(wake.Nanoseconds())/1e6)
	fmt.Printf("RESULT bytes_per_parked %.2f bytes\n", float64(after-before)/float64(*n))
	fmt.Printf("RESULT pagetable_bytes_per_parked %.2f bytes\n", float64(ptAfter-ptBefore)/float64(*n))
	fmt.Printf("RESULT ns_per_wake %.2f ns\n", float64(wake.Nanoseconds())/float64(*n))
}
