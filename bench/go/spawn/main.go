// Twin of bench/spawn.c: n goroutines that only call wg.Done, then a wait for all of
// them; once with one P and once with all Ps, after an unmeasured round of each.
// Figures: wall time per goroutine.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

var n = flag.Uint64("n", 1000000, "goroutines per round")

// roundNs runs one round and returns the wall time per goroutine in ns.
func roundNs() float64 {
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(int(*n))
	for i := uint64(0); i < *n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	return float64(time.Since(start).Nanoseconds()) / float64(*n)
}

func main() {
	flag.Parse()
	if *n < 1 || *n > 1000000000 {
		flag.Usage()
		os.Exit(2)
	}
	all := runtime.GOMAXPROCS(0)
	roundNs()
	runtime.GOMAXPROCS(1)
	roundNs()
	one := roundNs()
	runtime.GOMAXPROCS(all)
	many := roundNs()
	fmt.Printf("# %d Ps\n", all)
	fmt.Printf("RESULT spawn_1p %.2f ns\n", one)
	fmt.Printf("RESULT spawn_allp %.2f ns\n", many)
}
