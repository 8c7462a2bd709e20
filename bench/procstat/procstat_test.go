package procstat

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func writeProc(t *testing.T, root string, pid, ppid int, utime, stime, cutime, cstime int64, rssKB int) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The command name holds a space and a parenthesis, as real ones can.
	stat := strconv.Itoa(pid) + " (node (x) y) S " + strconv.Itoa(ppid) + " 1 1 0 -1 4194304 100 0 0 0 " +
		strconv.FormatInt(utime, 10) + " " + strconv.FormatInt(stime, 10) + " " + strconv.FormatInt(cutime, 10) + " " +
		strconv.FormatInt(cstime, 10) + " 20 0 1 0 100 1000 200\n"
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	status := "Name:\tnode\nVmRSS:\t  " + strconv.Itoa(rssKB) + " kB\n"
	if err := os.WriteFile(filepath.Join(dir, "status"), []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A tree's CPU and memory are the root's plus every descendant's, and nothing of other processes.
func TestReadTree(t *testing.T) {
	root := t.TempDir()
	writeProc(t, root, 10, 1, 100, 50, 7, 3, 1000)  // the server: 1.5 s + 0.1 s of waited-for children
	writeProc(t, root, 11, 10, 20, 10, 0, 0, 500)   // its child
	writeProc(t, root, 12, 11, 5, 5, 0, 0, 100)     // a grandchild
	writeProc(t, root, 20, 1, 999, 999, 0, 0, 9000) // someone else
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Read(root, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := (100 + 50 + 7 + 3 + 20 + 10 + 5 + 5) * time.Second / ClockTicks; s.CPU != want {
		t.Errorf("CPU %s, want %s", s.CPU, want)
	}
	if want := int64(1000+500+100) << 10; s.RSS != want {
		t.Errorf("RSS %d, want %d", s.RSS, want)
	}
	if s.Procs != 3 {
		t.Errorf("%d processes, want 3", s.Procs)
	}
	if _, err := Read(root, 99); err == nil {
		t.Error("a missing process gave no error")
	}
}

func TestParseStatRefusesGarbage(t *testing.T) {
	for _, b := range []string{"", "1 (x) S 1 2", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a b c d 20 0 1 0"} {
		if _, err := parseStat([]byte(b)); err == nil {
			t.Errorf("parseStat(%q) gave no error", b)
		}
	}
}

// The real /proc: this process's CPU time grows while it works.
func TestReadSelf(t *testing.T) {
	before, err := Read("/proc", os.Getpid())
	if err != nil {
		t.Skip("no /proc here:", err)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	n := 0
	for time.Now().Before(deadline) {
		n++
	}
	after, err := Read("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.CPU <= before.CPU || after.RSS == 0 {
		t.Errorf("CPU %s → %s, RSS %d (busy loop of %d)", before.CPU, after.CPU, after.RSS, n)
	}
}
