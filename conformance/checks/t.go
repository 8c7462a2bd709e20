package checks

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/onsi/gomega"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/catalogue"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/evidence"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
)

// Check is one catalogue check and its implementation.
type Check struct {
	catalogue.Entry
	Run func(t *T)
}

// T is what a check runs with: its context, the shared Env, an HTTP client that records every
// exchange as evidence, and the verdict calls. Errorf and Warnf record and continue; Fatalf and
// Skipf stop the check (they must be called from the check's own goroutine).
type T struct {
	ctx   context.Context
	env   *Env
	entry catalogue.Entry
	rec   *evidence.Record

	client *oauthclient.Client

	mu           sync.Mutex
	failures     []string
	warnings     []string
	skip         string
	skipFlag     string
	inconclusive *report.InconclusiveStep
	derived      bool
	links        []report.Link
	attempts     *report.Attempts
	cleanups     []func()
	exclusive    bool
	// detecting is set while this T detects the run's design (its probes stop at the AS's answer).
	detecting bool
}

type stopCheck struct{}

// Context is the check's context (cancelled at the check's deadline).
func (t *T) Context() context.Context { return t.ctx }

// Env is the run's shared environment.
func (t *T) Env() *Env { return t.env }

// ID is the check's catalogue ID.
func (t *T) ID() string { return t.entry.ID }

// Evidence is the check's evidence record.
func (t *T) Evidence() *evidence.Record { return t.rec }

// Client is the suite's OAuth client, recording into this check's evidence.
func (t *T) Client() *oauthclient.Client { return t.client }

// HTTP is the recording HTTP client (no redirects followed).
func (t *T) HTTP() *http.Client { return t.client.HTTP }

// Label returns a context that names the exchanges made with it in the evidence.
func (t *T) Label(format string, args ...any) context.Context {
	return evidence.WithLabel(t.ctx, fmt.Sprintf(format, args...))
}

// Errorf records a failure and lets the check go on (to report every failing variant).
func (t *T) Errorf(format string, args ...any) {
	t.mu.Lock()
	t.failures = append(t.failures, fmt.Sprintf(format, args...))
	t.mu.Unlock()
}

// Fatalf records a failure and stops the check.
func (t *T) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	panic(stopCheck{})
}

// Warnf records a reported deviation: the check passes with a warning unless it also fails.
func (t *T) Warnf(format string, args ...any) {
	t.mu.Lock()
	t.warnings = append(t.warnings, fmt.Sprintf(format, args...))
	t.mu.Unlock()
}

// Skipf stops the check as not applicable or not testable here, with the reason.
func (t *T) Skipf(format string, args ...any) { t.SkipFor("", format, args...) }

// SkipFor stops the check because a need is not met that flag (e.g. "--mock-auth0-admin") meets.
func (t *T) SkipFor(flag, format string, args ...any) {
	t.mu.Lock()
	t.skip = fmt.Sprintf(format, args...)
	t.skipFlag = flag
	t.mu.Unlock()
	panic(stopCheck{})
}

// Inconclusive stops the check: a precondition step was refused or failed, so the check cannot
// reach a verdict. answer is what the server answered; why says why that is no verdict on this
// row (a default is used when empty). owner names the row that grades the refusal when it is
// itself a violation ("" when it is an allowed policy or says nothing): when the check is that
// row, the refusal is its failure instead.
func (t *T) Inconclusive(step, answer, why, owner string) {
	if owner != "" && owner == t.entry.ID {
		if why != "" {
			t.Fatalf("%s: %s (%s)", step, answer, why)
		}
		t.Fatalf("%s: %s", step, answer)
	}
	if why == "" {
		if owner != "" {
			why = fmt.Sprintf("this step is a precondition of %s, not its subject; the refusal is a violation graded by %s", t.entry.ID, owner)
		} else {
			why = fmt.Sprintf("this step is a precondition of %s, not its subject; its failure is no verdict on %s", t.entry.ID, t.entry.ID)
		}
	}
	st := &report.InconclusiveStep{Step: oneLine(step), Answer: oneLine(answer), Why: why, Owner: owner}
	t.rec.Note("inconclusive: " + st.String())
	t.mu.Lock()
	t.inconclusive = st
	t.mu.Unlock()
	panic(stopCheck{})
}

// Attempts records how often a repeated (race) check tried.
func (t *T) setAttempts(a report.Attempts) {
	t.mu.Lock()
	t.attempts = &a
	t.mu.Unlock()
}

// Logf adds a line to the evidence.
func (t *T) Logf(format string, args ...any) { t.rec.Note(fmt.Sprintf(format, args...)) }

// Must stops the check when err is not nil ("what" says what was being done). An error here is
// no answer from the target (a network error) or a failure on the suite's side, never a verdict:
// the check is inconclusive.
func (t *T) Must(err error, what string) {
	if err != nil {
		t.Inconclusive(what, "no answer: "+err.Error(), "", "")
	}
}

// Failed reports whether a failure has been recorded so far.
func (t *T) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.failures) > 0
}

// Cleanup registers a function to run after the check (last registered, first run).
func (t *T) Cleanup(f func()) {
	t.mu.Lock()
	t.cleanups = append(t.cleanups, f)
	t.mu.Unlock()
}

// Expect is a Gomega assertion whose failure stops the check.
func (t *T) Expect(actual any, extra ...any) gomega.Assertion {
	g := gomega.NewGomega(func(message string, _ ...int) { t.Fatalf("%s", message) })
	return g.Expect(actual, extra...)
}

// Run runs one check against env, once per run: a check that already ran (or is running, e.g.
// as another row's dependency) is not run again, its result is returned. It never panics.
func Run(ctx context.Context, env *Env, c Check) report.Result {
	env.mu.Lock()
	if r, ok := env.results[c.ID]; ok {
		env.mu.Unlock()
		return r
	}
	if done, ok := env.running[c.ID]; ok {
		env.mu.Unlock()
		select {
		case <-done:
			if r, ok := env.Result(c.ID); ok {
				return r
			}
			return Run(ctx, env, c) // it stopped to run alone: run it here (or stop too)
		case <-ctx.Done():
			return report.Result{ID: c.ID, Title: c.Title(), Section: c.Section, Area: c.Area, Level: c.Level, LevelText: c.LevelText,
				Requirement: c.Requirement, Status: report.Inconclusive, Inconclusive: &report.InconclusiveStep{Step: "wait for " + c.ID,
					Answer: "it was still running when this run ended", Why: "a row graded by another cannot be graded before it"}}
		}
	}
	done := make(chan struct{})
	env.running[c.ID] = done
	env.mu.Unlock()
	defer close(done)
	res, alone := runCheck(ctx, env, c)
	if alone {
		env.mu.Lock()
		delete(env.running, c.ID)
		env.mu.Unlock()
		panic(needsAlone{}) // to the scheduler, through any check that ran this one as a dependency
	}
	return res
}

// runCheck runs one check and stores its result; alone reports a check that stopped because it
// must run alone while checks run side by side (no result is stored).
func runCheck(ctx context.Context, env *Env, c Check) (res report.Result, alone bool) {
	start := time.Now()
	res = report.Result{ID: c.ID, Title: c.Title(), Section: c.Section, Area: c.Area, Level: c.Level,
		LevelText: c.LevelText, Requirement: c.Requirement, Started: start}
	rec := &evidence.Record{}
	t := &T{env: env, entry: c.Entry, rec: rec}
	var cancel context.CancelFunc
	t.ctx, cancel = context.WithTimeout(ctx, env.cfg.CheckTimeout)
	defer cancel()
	t.client = env.newClient(rec)

	if !c.AppliesTo(env.cfg.SpecVersion) {
		t.skip = fmt.Sprintf("not part of MCP %s (applies to %s)", env.cfg.SpecVersion, c.Versions)
	} else {
		func() {
			defer func() {
				if r := recover(); r != nil {
					if _, ok := r.(needsAlone); ok {
						alone = true
						return
					}
					if _, ok := r.(stopCheck); !ok {
						t.rec.Note(fmt.Sprintf("panic: %v\n%s", r, debug.Stack()))
						t.mu.Lock()
						t.inconclusive = &report.InconclusiveStep{Step: "run the check", Answer: fmt.Sprintf("the suite panicked: %v", r),
							Why: "an error inside the suite is no verdict on the target (please report it; the stack is in the evidence)"}
						t.mu.Unlock()
					}
				}
			}()
			c.Run(t)
		}()
	}
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		func() {
			defer func() { _ = recover() }()
			t.cleanups[i]()
		}()
	}
	if alone {
		return report.Result{}, true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx.Err() != nil && ctx.Err() == nil && len(t.failures) == 0 && t.skip == "" && t.inconclusive == nil {
		t.inconclusive = &report.InconclusiveStep{Step: "finish the check", Answer: fmt.Sprintf("no verdict within --check-timeout %s", env.cfg.CheckTimeout),
			Why: "a check that runs out of time has not seen the behaviour it checks (a slow or hanging target, or a loaded machine): raise --check-timeout"}
	}
	res.Failures, res.Warnings = t.failures, t.warnings
	res.Derived, res.Links, res.Attempts = t.derived, t.links, t.attempts
	switch {
	case len(t.failures) > 0:
		res.Status = report.Fail
	case t.inconclusive != nil:
		res.Status, res.Inconclusive = report.Inconclusive, t.inconclusive
	case t.skip != "":
		res.Status, res.SkipReason, res.SkipFlag = report.Skip, t.skip, t.skipFlag
	case len(t.warnings) > 0:
		res.Status = report.Warn
	default:
		res.Status = report.Pass
	}
	res.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	res.Evidence = rec.Snapshot()
	env.storeResult(res)
	return res, false
}

// oneLine flattens a message for progress lines.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
