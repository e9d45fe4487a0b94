// Twin of bench/sleepers.c: 100,000 goroutines each sleep a random 0-10 ms (the same
// splitmix64 draws as the C version), then call Done; main waits for them all. All Ps.
// Figures: total wall time in ms and the worst lateness in us.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

func splitmix64(state *uint64) uint64 {
	*state += 0x9e3779b97f4a7c15
	z := *state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func main() {
	n := flag.Uint64("n", 100000, "goroutines")
	maxUs := flag.Uint64("max-us", 10000, "longest sleep in microseconds")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if *n < 1 || *n > 10000000 || *maxUs > 10000000 {
		flag.Usage()
		os.Exit(2)
	}
	var done sync.WaitGroup
	var worstLate int64 // ns
	state := *seed
	done.Add(int(*n))
	start := time.Now()
	for i := uint64(0); i < *n; i++ {
		want := time.Duration(splitmix64(&state)%(*maxUs+1)) * time.Microsecond
		go func() {
			t0 := time.Now()
			time.Sleep(want)
			late := int64(time.Since(t0) - want)
			for {
				seen := atomic.LoadInt64(&worstLate)
				if late <= seen || atomic.CompareAndSwapInt64(&worstLate, seen, late) {
					break
				}
			}
			done.Done()
		}()
	}
	spawned := time.Since(start).Nanoseconds()
	done.Wait()
	ns := time.Since(start).Nanoseconds()
	fmt.Printf("# %d Ps, %d sleepers of 0-%d us, spawned in %.1f ms\n", runtime.GOMAXPROCS(0),
		*n, *maxUs, float64(spawned)/1e6)
	fmt.Printf("RESULT sleepers_ms %.2f ms\n", float64(ns)/1e6)
	fmt.Printf("RESULT sleepers_worst_late %.2f us\n", float64(atomic.LoadInt64(&worstLate))/1e3)
}
