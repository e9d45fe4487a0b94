// Twin of bench/skynet.c: the skynet benchmark, a tree of goroutines with 10 children per
// node and 1,000,000 leaves; leaf i sends i up, parents sum and send up. All Ps. Figures:
// wall time in ms, and the peak resident set size (VmHWM) in MB.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

const fanout = 10

func skynet(up chan<- uint64, num, size uint64) {
	if size == 1 {
		up <- num
		return
	}
	rc := make(chan uint64, fanout)
	step := size / fanout
	for i := uint64(0); i < fanout; i++ {
		go skynet(rc, num+i*step, step)
	}
	sum := uint64(0)
	for i := 0; i < fanout; i++ {
		sum += <-rc
	}
	up <- sum
}

// peakRSSBytes returns VmHWM from /proc/self/status in bytes, or -1.
func peakRSSBytes() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 2 && fields[0] == "VmHWM:" {
			if kb, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
				return kb * 1024
			}
		}
	}
	return -1
}

func main() {
	leaves := flag.Uint64("leaves", 1000000, "leaves, a power of 10")
	flag.Parse()
	p := uint64(1)
	for p < *leaves {
		p *= fanout
	}
	if *leaves < 1 || *leaves > 100000000 || p != *leaves {
		flag.Usage()
		os.Exit(2)
	}
	root := make(chan uint64, 1)
	start := time.Now()
	go skynet(root, 0, *leaves)
	sum := <-root
	ns := time.Since(start).Nanoseconds()
	want := *leaves * (*leaves - 1) / 2
	fmt.Printf("# %d Ps, %d leaves, sum %d\n", runtime.GOMAXPROCS(0), *leaves, sum)
	if sum != want {
		fmt.Fprintf(os.Stderr, "skynet: sum %d, want %d\n", sum, want)
		os.Exit(1)
	}
	fmt.Printf("RESULT skynet_ms %.2f ms\n", float64(ns)/1e6)
	fmt.Printf("RESULT skynet_peak_rss %.2f MB\n", float64(peakRSSBytes())/(1024*1024))
}
