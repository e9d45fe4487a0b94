// Twin of bench/pi.c: samples Monte Carlo samples split over goroutines goroutines, each
// with its own xoshiro256** generator seeded by splitmix64 from seed + its index; once on
// one P and once on all Ps (or -procs). It draws the very same numbers as the C version,
// so the "# hits" lines of both must agree. Figures: wall time of each run, their ratio.
package main

import (
	"flag"
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"sync"
	"time"
)

func splitmix64(state *uint64) uint64 {
	*state += 0x9e3779b97f4a7c15
	z := *state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// task is one goroutine's result, padded to a cache line of its own.
type task struct {
	hits uint64
	_    [56]byte
}

func countHits(samples, goroutines, seed, index uint64) uint64 {
	n := samples / goroutines
	if index < samples%goroutines {
		n++
	}
	seeder := seed + index
	s0, s1, s2, s3 := splitmix64(&seeder), splitmix64(&seeder), splitmix64(&seeder), splitmix64(&seeder)
	hits := uint64(0)
	for i := uint64(0); i < n; i++ {
		// Two steps of xoshiro256**, written out: Go 1.19 does not inline a function this
		// size, and the call would be most of the loop's cost (C inlines its next()).
		r := bits.RotateLeft64(s1*5, 7) * 9
		t := s1 << 17
		s2 ^= s0
		s3 ^= s1
		s1 ^= s2
		s0 ^= s3
		s2 ^= t
		s3 = bits.RotateLeft64(s3, 45)
		x := float64(r>>11) * 0x1p-53

		r = bits.RotateLeft64(s1*5, 7) * 9
		t = s1 << 17
		s2 ^= s0
		s3 ^= s1
		s1 ^= s2
		s0 ^= s3
		s2 ^= t
		s3 = bits.RotateLeft64(s3, 45)
		y := float64(r>>11) * 0x1p-53

		if x*x+y*y < 1.0 {
			hits++
		}
	}
	return hits
}

// run does the whole computation on p Ps; returns the hits and the wall time.
func run(p int, samples, goroutines, seed uint64, tasks []task) (uint64, time.Duration) {
	runtime.GOMAXPROCS(p)
	var done sync.WaitGroup
	start := time.Now()
	done.Add(int(goroutines))
	for i := uint64(0); i < goroutines; i++ {
		go func(i uint64) {
			tasks[i].hits = countHits(samples, goroutines, seed, i)
			done.Done()
		}(i)
	}
	done.Wait()
	hits := uint64(0)
	for i := range tasks {
		hits += tasks[i].hits
	}
	return hits, time.Since(start)
}

func main() {
	samples := flag.Uint64("samples", 200000000, "points to draw")
	goroutines := flag.Uint64("goroutines", 64, "goroutines to split them over")
	procs := flag.Uint64("procs", 0, "Ps for the parallel run, 0: every CPU")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if *samples < 1 || *goroutines < 1 || *goroutines > 1000000 || *procs > 1024 {
		flag.Usage()
		os.Exit(2)
	}

	all := runtime.GOMAXPROCS(0)
	if *procs > 0 {
		all = int(*procs)
	}
	tasks := make([]task, *goroutines)
	hits1, t1 := run(1, *samples, *goroutines, *seed, tasks)
	hitsn, tn := run(all, *samples, *goroutines, *seed, tasks)
	fmt.Printf("# hits %d of %d, pi %.9f, %d Ps\n", hits1, *samples,
		4*float64(hits1)/float64(*samples), all)
	if hits1 != hitsn {
		fmt.Fprintf(os.Stderr, "pi: runs disagree: %d vs %d\n", hits1, hitsn)
		os.Exit(1)
	}
	fmt.Printf("RESULT pi_1p %.2f ms\n", float64(t1.Nanoseconds())/1e6)
	fmt.Printf("RESULT pi_allp %.2f ms\n", float64(tn.Nanoseconds())/1e6)
	fmt.Printf("RESULT speedup %.2f x\n", float64(t1.Nanoseconds())/float64(tn.Nanoseconds()))
}
