package cli

import (
	"syscall"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
)

// cpuUsage is the processor time (user + system) of this process and of the browser: browser is
// what the run read from /proc before closing it; without it, the waited-for children's time
// (which misses most of Chromium's: its renderers are not the suite's children).
func cpuUsage(browser time.Duration) *report.CPU {
	var self, children syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) != nil || syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children) != nil {
		return nil
	}
	ms := func(r syscall.Rusage) float64 {
		d := time.Duration(syscall.TimevalToNsec(r.Utime) + syscall.TimevalToNsec(r.Stime))
		return float64(d.Microseconds()) / 1000
	}
	b := ms(children)
	if browser > 0 {
		b = float64(browser.Microseconds()) / 1000
	}
	return &report.CPU{SuiteMS: ms(self), BrowserMS: b}
}
