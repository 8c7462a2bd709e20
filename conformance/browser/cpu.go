package browser

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// clockTick is the unit of /proc/<pid>/stat's times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// CPUTime is the processor time (user + system) the browser's processes have used so far: the
// browser process and every process it started, the ended ones included (their time is in their
// parent's "children" fields once reaped). The operating system's accounting of the suite's own
// children misses most of it: Chromium's renderers are started by its zygote, not by the browser
// process the suite waits for. Linux only (/proc); an error elsewhere or for a remote browser.
func (b *Browser) CPUTime() (time.Duration, error) {
	c := chromedp.FromContext(b.browserCtx)
	if c == nil || c.Browser == nil || c.Browser.Process() == nil {
		return 0, errors.New("no local browser process")
	}
	root := c.Browser.Process().Pid
	type proc struct{ ppid, ticks int }
	procs := map[int]proc{}
	dirs, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(dirs) == 0 {
		return 0, errors.New("no /proc")
	}
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		// pid (comm) state ppid … utime(14) stime(15) cutime(16) cstime(17): comm may hold spaces.
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 15 {
			continue
		}
		pid, _ := strconv.Atoi(strings.Fields(s[:i])[0])
		ppid, _ := strconv.Atoi(f[1])
		ticks := 0
		for _, k := range f[11:15] {
			n, _ := strconv.Atoi(k)
			ticks += n
		}
		procs[pid] = proc{ppid, ticks}
	}
	total := 0
	for pid, p := range procs {
		for q := pid; q > 1; q = procs[q].ppid {
			if q == root {
				total += p.ticks
				break
			}
			if _, ok := procs[q]; !ok {
				break
			}
		}
	}
	return time.Duration(total) * clockTick, nil
}
