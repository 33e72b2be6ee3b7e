package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// treeCPU is the CPU time a process and all its descendants used: the user
// and system time of every live member plus the time of the children each
// has reaped (cutime, cstime). A child that exits and is reaped moves its
// whole time into its parent's reaped time, so the sum stays steady across
// exits, and the difference of two readings is what the tree spent between
// them, the way an MTA with short-lived worker processes (Postfix's smtpd,
// cleanup, qmgr children) must be measured.
func treeCPU(procRoot string, root int) (time.Duration, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return 0, err
	}
	type proc struct {
		ppid int
		cpu  time.Duration
	}
	procs := map[int]proc{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, cpu, err := readStatTimes(procRoot, pid)
		if err != nil {
			continue // exited while we looked
		}
		procs[pid] = proc{ppid, cpu}
	}
	if _, ok := procs[root]; !ok {
		return 0, fmt.Errorf("process %d: not running", root)
	}
	children := map[int][]int{}
	for pid, p := range procs {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	var total time.Duration
	stack := []int{root}
	for len(stack) > 0 {
		pid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		total += procs[pid].cpu
		stack = append(stack, children[pid]...)
	}
	return total, nil
}

// readStatTimes reads the parent PID and utime+stime+cutime+cstime from
// /proc/PID/stat.
func readStatTimes(procRoot string, pid int) (ppid int, cpu time.Duration, err error) {
	b, err := os.ReadFile(procRoot + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name in parentheses may hold spaces; fields follow the
	// last ")". From there, ppid is the 2nd field and utime, stime,
	// cutime, cstime the 12th to 15th.
	rest := string(b)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("process %d: cannot parse %s/%d/stat", pid, procRoot, pid)
	}
	if ppid, err = strconv.Atoi(f[1]); err != nil {
		return 0, 0, fmt.Errorf("process %d: bad ppid in stat: %w", pid, err)
	}
	var ticks uint64
	for _, s := range f[11:15] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("process %d: bad cpu time in stat: %w", pid, err)
		}
		ticks += n
	}
	return ppid, time.Duration(ticks) * clockTick, nil
}

// cpuWatch names process trees whose CPU a run reports ("postfix=1234").
type cpuWatch struct {
	Name string
	PID  int
}

// parseCPUWatch reads one -cpu flag value.
func parseCPUWatch(s string) (cpuWatch, error) {
	name, pidS, ok := strings.Cut(s, "=")
	pid, err := strconv.Atoi(pidS)
	if !ok || name == "" || err != nil || pid <= 0 {
		return cpuWatch{}, fmt.Errorf("-cpu %q: want NAME=PID like postfix=1234", s)
	}
	return cpuWatch{Name: name, PID: pid}, nil
}

// treeReport is one watched tree's CPU over the measured run.
type treeReport struct {
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_s"`
	// PerThousand is CPU seconds per 1000 completed sessions.
	PerThousand float64 `json:"cpu_s_per_1000_sessions"`
}

// sampleTrees reads every watched tree; a tree that cannot be read is an
// error, since its figure would silently be missing.
func sampleTrees(procRoot string, ws []cpuWatch) ([]time.Duration, error) {
	out := make([]time.Duration, len(ws))
	for i, w := range ws {
		d, err := treeCPU(procRoot, w.PID)
		if err != nil {
			return nil, fmt.Errorf("-cpu %s=%d: %w", w.Name, w.PID, err)
		}
		out[i] = d
	}
	return out, nil
}

// treeDeltas turns two samples into the per-tree report; trees given
// twice under one name are added up.
func treeDeltas(ws []cpuWatch, before, after []time.Duration, sessions uint64) map[string]*treeReport {
	out := map[string]*treeReport{}
	for i, w := range ws {
		r := out[w.Name]
		if r == nil {
			r = &treeReport{PID: w.PID}
			out[w.Name] = r
		}
		r.CPUSeconds += (after[i] - before[i]).Seconds()
	}
	for _, r := range out {
		if sessions > 0 {
			r.PerThousand = r.CPUSeconds * 1000 / float64(sessions)
		}
	}
	return out
}
