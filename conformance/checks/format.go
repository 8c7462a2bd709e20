package checks

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
)

// Refusals of the wrong form. A row whose requirement is that something be refused (a replayed
// code, a wrong verifier, another client's refresh token, a forbidden redirect URI, …) holds when
// the server refused it, whatever the form of the answer: the form — the error code, the status,
// a JSON body, never a 5xx — is the requirement of the row that owns the endpoint's error format.
// So the row warns, naming that owner, and the answer goes into the run's ledger; the owner fails
// once for every such answer the run saw (it runs the rows that produce them when a label filter
// did not select them). A 5xx that refuses a replayed code is TOK-10's failure, not TOK-04's.

// errorEndpoint is an endpoint whose error format one row owns.
type errorEndpoint string

const (
	tokenErrors        errorEndpoint = "token endpoint"
	registrationErrors errorEndpoint = "registration endpoint"
	authorizeErrors    errorEndpoint = "authorization endpoint"
)

// formatOwner is the row that grades the form of an endpoint's error answers.
var formatOwner = map[errorEndpoint]string{
	tokenErrors:        "TOK-10",
	registrationErrors: "DCR-03",
	authorizeErrors:    "AZ-12",
}

// formatSources are the rows that send requests an endpoint must refuse and grade the refusal
// itself, not its form: the owner inspects what they saw.
var formatSources = map[errorEndpoint][]string{
	tokenErrors: {"TOK-04", "TOK-07", "TOK-08", "TOK-09", "TOK-12", "TOK-13", "TOK-14", "TOK-17", "PKCE-03", "PKCE-04", "PKCE-05",
		"PKCE-06", "RES-06", "RES-07", "RT-02", "RT-04", "RT-05", "RT-07", "RT-09", "RS-10", "REV-02", "AZ-09"},
	registrationErrors: {"DCR-04", "DCR-05", "DCR-06", "DCR-09"},
	authorizeErrors:    {"AZ-02", "AZ-03", "AZ-06", "AZ-07", "PKCE-01", "PKCE-02", "RES-03", "RES-04", "RES-08"},
}

// formatIssue is one refusal of the wrong form a row saw.
type formatIssue struct {
	Row     string
	What    string
	Problem string
	// ServerError is set for a 5xx.
	ServerError bool
}

type formatLedger struct {
	mu     sync.Mutex
	issues map[errorEndpoint][]formatIssue
}

func (l *formatLedger) add(ep errorEndpoint, i formatIssue) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.issues == nil {
		l.issues = map[errorEndpoint][]formatIssue{}
	}
	l.issues[ep] = append(l.issues[ep], i)
}

func (l *formatLedger) of(ep errorEndpoint) []formatIssue {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]formatIssue(nil), l.issues[ep]...)
}

// ownsFormat reports whether this check owns ep's error format.
func (t *T) ownsFormat(ep errorEndpoint) bool { return formatOwner[ep] == t.entry.ID }

// wrongForm grades a refusal of the wrong form: the owner of ep's format fails it; any other row
// warns, naming the owner, and records it for the owner.
func (t *T) wrongForm(ep errorEndpoint, serverError bool, what, problem string) {
	if t.ownsFormat(ep) {
		t.Errorf("%s: %s", what, problem)
		return
	}
	owner := formatOwner[ep]
	t.Warnf("%s: refused, but %s; the form of %s errors is %s's requirement (see %s)", what, problem, ep, owner, owner)
	t.env.formats.add(ep, formatIssue{Row: t.entry.ID, What: what, Problem: problem, ServerError: serverError})
}

// ranRows makes sure the rows ran in this run (running those that have not: a row that grades
// what other rows saw needs them) and returns their results.
func (t *T) ranRows(ids ...string) []report.Result {
	var out []report.Result
	for _, id := range ids {
		if id == t.entry.ID {
			continue
		}
		c, ok := ByID(id)
		if !ok || !c.AppliesTo(t.env.cfg.SpecVersion) {
			continue
		}
		if res, ok := t.env.Result(id); ok {
			out = append(out, res)
			continue
		}
		// A dependency runs with its own time limit, not what is left of this check's.
		out = append(out, Run(context.WithoutCancel(t.ctx), t.env, c))
	}
	return out
}

// gradeRecordedForms fails the owner of ep's format for every refusal of the wrong form the run
// saw (only 5xx answers when serverErrorsOnly).
func (t *T) gradeRecordedForms(ep errorEndpoint, serverErrorsOnly bool) {
	t.ranRows(formatSources[ep]...)
	var lines []string
	for _, i := range t.env.formats.of(ep) {
		if serverErrorsOnly && !i.ServerError {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s (%s): %s", i.What, i.Row, i.Problem))
	}
	if len(lines) > 0 {
		t.Errorf("%d %s error answer(s) of the wrong form seen by other rows: %s", len(lines), ep, strings.Join(lines, "; "))
	}
}

// refusedAuthz reports whether an authorization probe ended in a refusal: an error page, an
// error redirect, or a 5xx — the last is a refusal of the wrong form (OAuth 2.1 §4.1.2.1:
// server_error is redirected to the client), graded by AZ-12 (see wrongForm).
func (t *T) refusedAuthz(what string, p *AuthzProbe) bool {
	if p.Kind == ServerError {
		t.wrongForm(authorizeErrors, true, what, fmt.Sprintf("with %s instead of an error page or an error redirect", p.Final.Describe()))
		return true
	}
	return p.refused()
}
