package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// memUsage sums the memory of some processes, in KiB: RSS (VmRSS), PSS and USS
// (private pages: Private_Clean + Private_Dirty) from smaps_rollup.
type memUsage struct{ rss, pss, uss, procs int }

func usage(pids []int) memUsage {
	var u memUsage
	for _, pid := range pids {
		status := readFields(fmt.Sprintf("/proc/%d/status", pid))
		rss, ok := status["VmRSS"]
		if !ok {
			continue // a zombie, or gone
		}
		rollup := readFields(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		u.rss += rss
		u.pss += rollup["Pss"]
		u.uss += rollup["Private_Clean"] + rollup["Private_Dirty"]
		u.procs++
	}
	return u
}

// readFields reads "Name:  123 kB" lines into a map of KiB.
func readFields(path string) map[string]int {
	fields := map[string]int{}
	f, err := os.Open(path)
	if err != nil {
		return fields
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		parts := strings.Fields(rest)
		if len(parts) == 2 && parts[1] == "kB" {
			if v, err := strconv.Atoi(parts[0]); err == nil {
				fields[name] = v
			}
		}
	}
	return fields
}

// processNames is "1×dockerd,1×containerd,20×containerd-shim-runc-v2": the
// processes by executable.
func processNames(pids []int) string {
	count := map[string]int{}
	for _, pid := range pids {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil {
			continue
		}
		count[filepath.Base(exe)]++
	}
	var parts []string
	for name, n := range count {
		parts = append(parts, fmt.Sprintf("%d×%s", n, name))
	}
	sort.Strings(parts)
	return "procs=" + strings.Join(parts, ",")
}
