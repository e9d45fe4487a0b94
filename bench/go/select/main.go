// Twin of bench/select.c: four producers each send n/4 items into a channel of their own;
// one consumer receives them all with a select over the four channels, on all Ps. Figure:
// ns per item received.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

const producers = 4

func main() {
	n := flag.Uint64("n", 4000000, "items in all")
	capacity := flag.Uint64("cap", 0, "capacity of each channel (0: unbuffered)")
	flag.Parse()
	if *n < producers || *n > 1<<40 || *capacity > 1<<20 {
		flag.Usage()
		os.Exit(2)
	}
	var chans [producers]chan uint64
	for i := range chans {
		chans[i] = make(chan uint64, *capacity)
	}
	start := time.Now()
	for i := range chans {
		go func(ch chan uint64, index uint64) {
			for j := uint64(0); j < *n/producers; j++ {
				ch <- j*producers + index
			}
			close(ch)
		}(chans[i], uint64(i))
	}
	var next [producers]uint64
	received := uint64(0)
	c0, c1, c2, c3 := chans[0], chans[1], chans[2], chans[3]
	for open := producers; open > 0; {
		var v uint64
		var ok bool
		var k int
		select {
		case v, ok = <-c0:
			k = 0
			if !ok {
				c0 = nil
			}
		case v, ok = <-c1:
			k = 1
			if !ok {
				c1 = nil
			}
		case v, ok = <-c2:
			k = 2
			if !ok {
				c2 = nil
			}
		case v, ok = <-c3:
			k = 3
			if !ok {
				c3 = nil
			}
		}
		if !ok {
			open--
			continue
		}
		if v%producers != uint64(k) || v/producers != next[k] {
			fmt.Fprintf(os.Stderr, "select: case %d got %d out of order\n", k, v)
			os.Exit(1)
		}
		next[k]++
		received++
	}
	ns := time.Since(start).Nanoseconds()
	if received != *n/producers*producers {
		fmt.Fprintf(os.Stderr, "select: received %d items\n", received)
		os.Exit(1)
	}
	fmt.Printf("# %d Ps, %d producers, capacity %d\n", runtime.GOMAXPROCS(0), producers, *capacity)
	fmt.Printf("RESULT select_allp %.2f ns\n", float64(ns)/float64(received))
}
