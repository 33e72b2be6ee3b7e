package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeStat writes a /proc/PID/stat line with the given parent and
// utime, stime, cutime, cstime in clock ticks.
func writeStat(t *testing.T, root string, pid, ppid int, name string, ticks [4]int) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	line := strconv.Itoa(pid) + " (" + name + ") S " + strconv.Itoa(ppid) + " 1 1 0 -1 4194560 100 0 0 0 " +
		strconv.Itoa(ticks[0]) + " " + strconv.Itoa(ticks[1]) + " " + strconv.Itoa(ticks[2]) + " " + strconv.Itoa(ticks[3]) + " 20 0 1 0 1 1 1\n"
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTreeCPUCountsDescendantsAndReapedChildren(t *testing.T) {
	root := t.TempDir()
	// master (10) with reaped children worth 5+5 ticks; smtpd (11) and
	// its child (12); an unrelated process (20) whose name has spaces and
	// parentheses.
	writeStat(t, root, 10, 1, "master", [4]int{100, 50, 3, 2})
	writeStat(t, root, 11, 10, "smtpd", [4]int{20, 10, 0, 0})
	writeStat(t, root, 12, 11, "a (b) c", [4]int{1, 1, 0, 0})
	writeStat(t, root, 20, 1, "other (x)", [4]int{1000, 0, 0, 0})
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := treeCPU(root, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := 187 * clockTick; got != want {
		t.Errorf("tree of 10: %v, want %v", got, want)
	}
	// smtpd 11 exits and is reaped: its time moves into master's cutime,
	// and the tree's total stays the same.
	if err := os.RemoveAll(filepath.Join(root, "11")); err != nil {
		t.Fatal(err)
	}
	writeStat(t, root, 12, 1, "a (b) c", [4]int{1, 1, 0, 0}) // re-parented to init
	writeStat(t, root, 10, 1, "master", [4]int{100, 50, 33, 2})
	got, err = treeCPU(root, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := 185 * clockTick; got != want {
		t.Errorf("after the reap: %v, want %v (the orphaned grandchild left the tree)", got, want)
	}
	if _, err := treeCPU(root, 99); err == nil || !strings.Contains(err.Error(), "process 99") {
		t.Errorf("missing root: %v", err)
	}
}

func TestTreeDeltasAddUpNamesAndScale(t *testing.T) {
	ws := []cpuWatch{{"postfix", 10}, {"dns", 20}, {"dns", 30}}
	before := []time.Duration{time.Second, 0, time.Second}
	after := []time.Duration{3 * time.Second, time.Second, 2 * time.Second}
	got := treeDeltas(ws, before, after, 500)
	if got["postfix"].CPUSeconds != 2 || got["postfix"].PerThousand != 4 || got["dns"].CPUSeconds != 2 || got["dns"].PerThousand != 4 {
		t.Errorf("deltas %+v %+v", *got["postfix"], *got["dns"])
	}
	if _, err := parseCPUWatch("postfix=0"); err == nil {
		t.Error("postfix=0 accepted")
	}
	if w, err := parseCPUWatch("filter=123"); err != nil || w != (cpuWatch{"filter", 123}) {
		t.Errorf("filter=123: %+v %v", w, err)
	}
}
