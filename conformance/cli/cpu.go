package cli

import (
	"syscall"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
)

// cpuUsage is the processor time (user + system) of this process and of its waited-for children
// (Chromium, once the browser has been closed).
func cpuUsage() *report.CPU {
	var self, children syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) != nil || syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children) != nil {
		return nil
	}
	ms := func(r syscall.Rusage) float64 {
		d := time.Duration(syscall.TimevalToNsec(r.Utime) + syscall.TimevalToNsec(r.Stime))
		return float64(d.Microseconds()) / 1000
	}
	return &report.CPU{SuiteMS: ms(self), BrowserMS: ms(children)}
}
