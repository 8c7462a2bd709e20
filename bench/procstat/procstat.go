// Package procstat reads a process tree's CPU time and memory from /proc (Linux): the CPU a server
// spent on a benchmark run is the difference of two Samples, wherever the load generator and the
// rest of the machine spent theirs.
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ClockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every Linux
// architecture Go supports (sysconf(_SC_CLK_TCK) needs cgo; Linux fixes USER_HZ at 100 for the ABI).
const ClockTicks = 100

// Sample is one reading of a process and its descendants.
type Sample struct {
	// CPU is user + system time of the process and every live descendant, plus what its waited-for
	// children used (cutime + cstime).
	CPU time.Duration
	// RSS is the resident set of the process and its live descendants.
	RSS int64
	// Procs is the number of processes read.
	Procs int
}

// Read samples the process tree rooted at pid under root (normally "/proc").
func Read(root string, pid int) (Sample, error) {
	stats, err := readAll(root)
	if err != nil {
		return Sample{}, err
	}
	if _, ok := stats[pid]; !ok {
		return Sample{}, fmt.Errorf("procstat: no process %d", pid)
	}
	children := map[int][]int{}
	for p, st := range stats {
		children[st.ppid] = append(children[st.ppid], p)
	}
	var s Sample
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		st := stats[p]
		s.CPU += ticks(st.utime + st.stime + st.cutime + st.cstime)
		s.RSS += rss(root, p)
		s.Procs++
		queue = append(queue, children[p]...)
	}
	return s, nil
}

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / ClockTicks }

type stat struct {
	ppid                         int
	utime, stime, cutime, cstime int64
}

// readAll reads /proc/*/stat of every process (processes that end meanwhile are skipped).
func readAll(root string) (map[int]stat, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	out := map[int]stat{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		st, err := parseStat(b)
		if err != nil {
			return nil, fmt.Errorf("procstat: %s/%d/stat: %w", root, pid, err)
		}
		out[pid] = st
	}
	return out, nil
}

// parseStat reads the fields of proc(5)'s /proc/<pid>/stat this package needs. The command name
// (field 2) is in parentheses and may hold spaces and parentheses, so fields are counted from the
// last ')'.
func parseStat(b []byte) (stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("no command name in %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 15 {
		return stat{}, fmt.Errorf("%d fields after the command name, want at least 15", len(f))
	}
	var st stat
	var err error
	num := func(field int) int64 {
		v, e := strconv.ParseInt(f[field-3], 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("field %d %q: %w", field, f[field-3], e)
		}
		return v
	}
	st.ppid = int(num(4))
	st.utime, st.stime, st.cutime, st.cstime = num(14), num(15), num(16), num(17)
	return st, err
}

// rss is VmRSS of /proc/<pid>/status in bytes (0 for a process that has gone or has none).
func rss(root string, pid int) int64 {
	b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}
