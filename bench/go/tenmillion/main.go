// Twin of bench/tenmillion.c: n goroutines, goroutine i parked in a receive on channel
// i % chans (unbuffered); once all have arrived main measures the resident set, closes
// every channel and waits for all to end; each goroutine marks its own slot and main
// checks every slot was marked exactly once. Figures: peak resident set (VmHWM) in MB,
// resident and page-table (VmPTE) bytes per parked goroutine, ns per goroutine to create
// and to wake them. At ~2.7 KB per parked goroutine, ten million need 27 GB, more than
// the project's 24 GiB machine has: scripts/bench.sh runs it under scripts/memcap.sh.
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
	n := flag.Uint64("n", 10000000, "goroutines to park")
	chans := flag.Uint64("chans", 1000, "channels they park on")
	flag.Uint64("settle_ms", 60000, "longest wait for compaction, ms (goro only)")
	flag.Uint64("compact_ms", 5, "compact stacks parked this long, ms (goro only)")
	flag.Parse()
	if *n < 1 || *n > 100000000 || *chans < 1 || *chans > 1000000 {
		flag.Usage()
		os.Exit(2)
	}

	ch := make([]chan struct{}, *chans)
	for c := range ch {
		ch[c] = make(chan struct{})
	}
	woken := make([]uint8, *n)
	var exited sync.WaitGroup
	var arrived uint64
	exited.Add(int(*n))
	before, ptBefore := procmem.RSS("tenmillion"), procmem.Status("VmPTE")
	start := time.Now()
	for i := uint64(0); i < *n; i++ {
		go func(i uint64) {
			atomic.AddUint64(&arrived, 1)
			if _, ok := <-ch[i%*chans]; ok {
				fmt.Fprintf(os.Stderr, "tenmillion: goroutine %d received a value\n", i)
				os.Exit(1)
			}
			woken[i]++
			exited.Done()
		}(i)
		if (i+1)%1000000 == 0 {
			// Progress, for a run that dies of out-of-memory: how far it got.
			fmt.Printf("# spawned %d, rss %.0f MiB\n", i+1, float64(procmem.RSS("tenmillion"))/1048576)
		}
	}
	for atomic.LoadUint64(&arrived) < *n {
		time.Sleep(time.Millisecond)
	}
	create := time.Since(start)
	time.Sleep(20 * time.Millisecond) // the last ones may not have parked yet
	parked, ptParked := procmem.RSS("tenmillion"), procmem.Status("VmPTE")

	wakeStart := time.Now()
	for c := range ch {
		close(ch[c])
	}
	exited.Wait()
	wake := time.Since(wakeStart)
	for i := uint64(0); i < *n; i++ {
		if woken[i] != 1 {
			fmt.Fprintf(os.Stderr, "tenmillion: goroutine %d ran %d times after its wake\n", i, woken[i])
			os.Exit(1)
		}
	}
	peak := procmem.Status("VmHWM")
	fmt.Printf("# %d goroutines on %d channels: created and parked in %.0f ms, all woken and "+
		"counted once in %.0f ms\n", *n, *chans, float64(create.Nanoseconds())/1e6,
		float64(wake.Nanoseconds())/1e6)
	fmt.Printf("# rss %.1f MiB -> %.1f MiB parked; peak %.1f MiB\n", float64(before)/1048576,
		float64(parked)/1048576, float64(peak)/1048576)
	fmt.Printf("RESULT peak_rss %.2f MB\n", float64(peak)/1048576)
	fmt.Printf("RESULT bytes_per_parked %.2f bytes\n", float64(parked-before)/float64(*n))
	fmt.Printf("RESULT pagetable_bytes_per_parked %.2f bytes\n", float64(ptParked-ptBefore)/float64(*n))
	fmt.Printf("RESULT ns_per_create %.2f ns\n", float64(create.Nanoseconds())/float64(*n))
	fmt.Printf("RESULT ns_per_wake %.2f ns\n", float64(wake.Nanoseconds())/float64(*n))
}
