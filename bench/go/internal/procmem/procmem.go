// Package procmem reads this process's memory figures from /proc, for the memory
// benchmarks' Go twins (the C side is bench/bench.h).
package procmem

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// RSS is the resident set size of this process, from /proc/self/statm. It exits the
// program, naming prog, if the file cannot be read.
func RSS(prog string) int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fmt.Fprintln(os.Stderr, prog+":", err)
		os.Exit(1)
	}
	var size, resident int64
	if _, err := fmt.Sscan(string(data), &size, &resident); err != nil {
		fmt.Fprintln(os.Stderr, prog+": /proc/self/statm:", err)
		os.Exit(1)
	}
	return resident * int64(os.Getpagesize())
}

// Status is a "Name: N kB" field of /proc/self/status in bytes, or -1.
func Status(name string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), name+":") {
			var kb int64
			if _, err := fmt.Sscan(strings.TrimPrefix(sc.Text(), name+":"), &kb); err == nil {
				return kb * 1024
			}
		}
	}
	return -1
}
