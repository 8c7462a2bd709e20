// Package cli is the mcp-auth-conformance command: flags → a checks.Config, the Ginkgo suite run
// with a progress line per check, the reports written, the summary printed, and an exit status that
// is non-zero when a MUST check failed.
package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/catalogue"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/checks"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/cimdhost"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/login"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/suite"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/upstream"
)

// Exit statuses.
const (
	ExitPass     = 0 // evaluated: no MUST check failed
	ExitMustFail = 1 // a MUST check failed (or, with --strict, a SHOULD check)
	ExitUsage    = 2 // bad flags or configuration (a label filter that selects nothing too); nothing was checked
	// ExitCouldNotEvaluate: the preflight gate failed (the target unreachable, no 401, no
	// metadata, no client registration, no browser authorization or its token refused): the run
	// says which step and why, and grades nothing.
	ExitCouldNotEvaluate = 3
)

// EnvPrefix: every flag can also be set as MCP_AUTH_CONFORMANCE_<FLAG> (dashes → underscores).
const EnvPrefix = "MCP_AUTH_CONFORMANCE_"

type flags struct {
	target, specVersion, labelFilter, reportDir                      string
	username, password, secondUsername, secondPassword               string
	usernameSel, passwordSel, submitSel, approveSel, denySel, upSel  string
	scope                                                            string
	mockAdmin, mockAdminToken, upstreamSubject                       string
	upstreamIssuer, upstreamClientID, upstreamSecret, upstreamAud    string
	sibling, secondInstance                                          string
	cimdBaseURL, cimdListen                                          string
	cimdTLS                                                          bool
	probeTool, probeArgs, probeGranted, probeNeeds, scopeImplies     string
	probeNarrowTool                                                  string
	chromium, browserURL                                             string
	noSandbox                                                        bool
	checkTimeout, httpTimeout, flowTimeout                           time.Duration
	insecure, verbose, strict, ginkgoOutput, list, noColor, noReport bool
	freshContexts, noPrefetch                                        bool
	parallel                                                         int
}

func (f *flags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.target, "target", "", "the MCP endpoint URL to check, e.g. https://mcp.example.com/mcp (required)")
	fs.StringVar(&f.specVersion, "spec-version", "2026-07-28", "MCP specification version whose rules apply: 2025-06-18, 2025-11-25 or 2026-07-28")
	fs.StringVar(&f.labelFilter, "label-filter", "", "Ginkgo label filter selecting checks, e.g. 'MUST', 'PKCE || DCR', '!Proxy', 'PXY-06'")
	fs.StringVar(&f.reportDir, "report-dir", "conformance-report", "directory for junit.xml, report.json and index.html")
	fs.BoolVar(&f.noReport, "no-report", false, "do not write report files")
	fs.StringVar(&f.username, "username", "dev@example.com", "upstream (e.g. Auth0) test user's login (default: the mock Auth0's user)")
	fs.StringVar(&f.password, "password", "dev-password", "upstream test user's password (prefer "+EnvPrefix+"PASSWORD)")
	fs.StringVar(&f.secondUsername, "second-username", "", "a second upstream user (RS-09)")
	fs.StringVar(&f.secondPassword, "second-password", "", "the second user's password")
	d := login.DefaultSelectors()
	fs.StringVar(&f.usernameSel, "username-selector", d.Username, "CSS selector of the upstream login page's username field")
	fs.StringVar(&f.passwordSel, "password-selector", d.Password, "CSS selector of the password field")
	fs.StringVar(&f.submitSel, "submit-selector", d.Submit, "CSS selector of the login submit button")
	fs.StringVar(&f.upSel, "upstream-consent-selector", d.UpstreamConsent, "CSS selector of the upstream's own consent button, if it shows one")
	fs.StringVar(&f.approveSel, "approve-selector", "", "CSS selector of the MCP server's consent approve button (default: a button labelled approve/allow/authorize/accept/continue)")
	fs.StringVar(&f.denySel, "deny-selector", "", "CSS selector of the consent deny button (default: a button labelled deny/reject/cancel)")
	fs.StringVar(&f.scope, "scope", "", "scope to request (default: the 401 challenge's scope, else the PRM's scopes_supported)")
	fs.StringVar(&f.mockAdmin, "mock-auth0-admin", "", "URL (issuer) of the mock Auth0 the target uses as upstream, started with --admin: enables the checks that need the upstream's view")
	fs.StringVar(&f.mockAdminToken, "mock-auth0-admin-token", "", "the mock's --admin-token, if set")
	fs.StringVar(&f.upstreamSubject, "upstream-subject", "", "the upstream user's sub (needed when the target's access tokens are opaque)")
	fs.StringVar(&f.upstreamIssuer, "upstream-issuer", "", "upstream issuer for obtaining upstream tokens directly (RS-05); default: --mock-auth0-admin")
	fs.StringVar(&f.upstreamClientID, "upstream-client-id", "", "an upstream application whose callbacks accept http://127.0.0.1:<any port>/auth/callback (RS-05)")
	fs.StringVar(&f.upstreamSecret, "upstream-client-secret", "", "its client secret")
	fs.StringVar(&f.upstreamAud, "upstream-audience", "", "an upstream API identifier (audience) for a signed upstream token")
	fs.StringVar(&f.sibling, "sibling-target", "", "MCP URL of a second deployment behind the same upstream application (RS-04)")
	fs.StringVar(&f.secondInstance, "second-instance", "", "MCP URL of another replica of the same deployment (PXY-17)")
	fs.StringVar(&f.cimdBaseURL, "cimd-base-url", "", "https URL at which the target reaches --cimd-listen (CIMD checks)")
	fs.StringVar(&f.cimdListen, "cimd-listen", "127.0.0.1:0", "listen address of the client-metadata document server")
	fs.BoolVar(&f.cimdTLS, "cimd-tls", false, "serve the client-metadata documents over https itself, with a certificate from a generated CA whose file (in --report-dir) it prints for the target to trust; without --cimd-base-url the base URL is https://<--cimd-listen address>")
	fs.StringVar(&f.probeTool, "scope-probe-tool", "", "a tool whose call needs a scope --scope-probe-granted lacks (SC-02/03)")
	fs.StringVar(&f.probeArgs, "scope-probe-args", "{}", "JSON arguments for --scope-probe-tool")
	fs.StringVar(&f.probeGranted, "scope-probe-granted", "", "the narrow scope to request, e.g. mcp:read")
	fs.StringVar(&f.probeNeeds, "scope-probe-needs", "", "space-separated scopes the tool needs beyond the granted one, e.g. mcp:write")
	fs.StringVar(&f.scopeImplies, "scope-implies", "", "a documented scope hierarchy broad=narrow (SC-04)")
	fs.StringVar(&f.probeNarrowTool, "scope-probe-narrow-tool", "", "a tool that needs the narrow scope of --scope-implies")
	fs.StringVar(&f.chromium, "chromium", browser.PreferredExecPath(), "Chromium binary (default: Debian's chromium-headless-shell when installed, else chromium)")
	fs.StringVar(&f.browserURL, "browser-url", "", "DevTools URL of a Chromium running elsewhere (e.g. http://chromium:9222/) instead of starting one (the container image has no browser)")
	fs.BoolVar(&f.noSandbox, "chromium-no-sandbox", false, "start Chromium with --no-sandbox (containers without user namespaces)")
	fs.DurationVar(&f.checkTimeout, "check-timeout", 60*time.Second, "time limit of one check")
	fs.DurationVar(&f.httpTimeout, "http-timeout", 10*time.Second, "time limit of one HTTP request")
	fs.DurationVar(&f.flowTimeout, "flow-timeout", 20*time.Second, "time limit of one browser flow")
	fs.BoolVar(&f.freshContexts, "fresh-contexts", false, "the slow, strict mode: every browser flow in a fresh browser context, no flow replayed over HTTP, one check at a time (by default the user logs in once, flows that are only a precondition are replayed over HTTP with the logged-in browser's cookies, and checks run side by side)")
	fs.IntVar(&f.parallel, "parallel", 4, "how many checks run side by side (checks that move clocks or read the upstream's log always run alone; 1 with --fresh-contexts)")
	fs.BoolVar(&f.noPrefetch, "no-prefetch", false, "do not run plain browser flows ahead of time")
	fs.BoolVar(&f.insecure, "insecure", false, "skip TLS certificate verification (self-signed test deployments only)")
	fs.BoolVar(&f.verbose, "verbose", false, "print every failure, warning and skip reason")
	fs.BoolVar(&f.strict, "strict", false, "exit non-zero when a SHOULD check fails too")
	fs.BoolVar(&f.noColor, "no-color", false, "no ANSI colours")
	fs.BoolVar(&f.ginkgoOutput, "ginkgo-output", false, "also print Ginkgo's own reporter output")
	fs.BoolVar(&f.list, "list", false, "list the checks the label filter selects and exit")
}

// fromEnv sets flags not given on the command line from MCP_AUTH_CONFORMANCE_<FLAG>.
func fromEnv(fs *flag.FlagSet, getenv func(string) string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		name := EnvPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", name, e)
			}
		}
	})
	return err
}

// Main runs the command and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("mcp-auth-conformance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f flags
	f.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `mcp-auth-conformance checks an MCP server's authorization against the MCP authorization
check catalogue (one check per catalogue ID), driving the browser steps through headless Chromium.

  mcp-auth-conformance --target https://mcp.example.com/mcp --username USER --password PASS

Exit status: 0 no MUST check failed, 1 a MUST check failed, 2 bad usage (or a --label-filter
that selects no check), 3 could not evaluate (the preflight gate failed: the run names the step).
Every flag can also be set as %s<FLAG> (e.g. %sPASSWORD).

Flags:
`, EnvPrefix, EnvPrefix)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitPass
		}
		return ExitUsage
	}
	if err := fromEnv(fs, getenv); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return ExitUsage
	}
	if f.list {
		return list(stdout, stderr, f.labelFilter)
	}
	if _, err := suite.Count(f.labelFilter); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return ExitUsage
	}
	versionSource := "default"
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "spec-version" {
			versionSource = "--spec-version"
		}
	})
	cfg, cleanup, err := f.config(ctx, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return ExitUsage
	}
	defer cleanup()
	return RunSuite(ctx, cfg, RunOptions{LabelFilter: f.labelFilter, ReportDir: f.reportDir, NoReport: f.noReport,
		Verbose: f.verbose, Color: !f.noColor && IsTerminal(stdout), Strict: f.strict, GinkgoOutput: f.ginkgoOutput,
		SpecVersionSource: versionSource}, stdout, stderr)
}

// RunOptions control how a run is reported.
type RunOptions struct {
	LabelFilter  string
	ReportDir    string
	NoReport     bool
	Verbose      bool
	Color        bool
	Strict       bool
	GinkgoOutput bool
	// SpecVersionSource says where the MCP version came from: "default" or "--spec-version".
	SpecVersionSource string
}

// versionLine says which MCP version the run assumes, and how to change it.
func versionLine(version, source string) string {
	if source == "--spec-version" {
		return "MCP " + version + ", from --spec-version"
	}
	return "MCP " + version + ", assumed by default; for a server implementing another version pass --spec-version 2025-06-18, 2025-11-25 or 2026-07-28"
}

// RunSuite runs the suite against cfg, prints progress and the summary, writes the reports and
// returns the exit status. It can run once per process (a Ginkgo limitation).
func RunSuite(ctx context.Context, cfg checks.Config, o RunOptions, stdout, stderr io.Writer) int {
	env, err := checks.NewEnv(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return ExitUsage
	}
	defer env.Close()
	n, err := suite.Count(o.LabelFilter)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return ExitUsage
	}
	if o.SpecVersionSource == "" {
		o.SpecVersionSource = "default"
	}
	fmt.Fprintf(stdout, "mcp-auth-conformance: %d checks against %s (%s)\n", n, cfg.Target, versionLine(env.Config().SpecVersion, o.SpecVersionSource))
	run, err := suite.Run(ctx, env, suite.Options{LabelFilter: o.LabelFilter, Progress: stdout, Verbose: o.Verbose,
		Color: o.Color, GinkgoOutput: o.GinkgoOutput, SpecVersionSource: o.SpecVersionSource,
		Preflight: func(p *report.Preflight) { writePreflight(stdout, p) }})
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return ExitUsage
	}
	env.Close() // Chromium exits and is waited for: its processor time is counted below
	run.CPU = cpuUsage(env.BrowserCPU())
	report.WriteSummary(stdout, run)
	if !o.NoReport {
		if err := report.WriteDir(o.ReportDir, run); err != nil {
			fmt.Fprintln(stderr, "error:", err)
		} else {
			abs, _ := filepath.Abs(o.ReportDir)
			fmt.Fprintf(stdout, "reports: %s/{%s,%s,%s}\n", abs, report.JUnitFile, report.JSONFile, report.HTMLFile)
		}
	}
	if !run.Evaluated() {
		return ExitCouldNotEvaluate
	}
	if run.Counts().MustFail > 0 {
		return ExitMustFail
	}
	if o.Strict {
		for _, r := range run.Results {
			if r.Status == report.Fail && r.Level == catalogue.LevelShould {
				return ExitMustFail
			}
		}
	}
	return ExitPass
}

// writePreflight prints the gate's outcome: one line when it passed; the failed step otherwise
// (the summary repeats it with the hint).
func writePreflight(w io.Writer, p *report.Preflight) {
	if p.Passed {
		fmt.Fprintf(w, "preflight: passed (%d steps in %s)\n", len(p.Steps), time.Duration(p.DurationMS*float64(time.Millisecond)).Round(time.Millisecond))
		return
	}
	if st := p.Failed(); st != nil {
		fmt.Fprintf(w, "preflight: the step %q failed — no check is run\n", st.Name)
	}
}

func list(stdout, stderr io.Writer, filter string) int {
	n, err := suite.Count(filter)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return ExitUsage
	}
	sel := suite.Selector(filter)
	for _, c := range checks.All() {
		if sel(c.Labels()) {
			fmt.Fprintf(stdout, "%-8s %-6s %-13s %s\n", c.ID, c.Level, c.Area, c.Title())
		}
	}
	fmt.Fprintf(stdout, "%d checks\n", n)
	return ExitPass
}

// IsTerminal reports whether w is a terminal (for colours).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// config turns flags into a checks.Config (and starts the helpers it needs).
func (f *flags) config(ctx context.Context, stdout io.Writer) (checks.Config, func(), error) {
	var cleanups []func()
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	fail := func(err error) (checks.Config, func(), error) { cleanup(); return checks.Config{}, func() {}, err }
	if f.target == "" {
		return fail(errors.New("--target is required: the URL of the MCP endpoint to check, e.g. https://mcp.example.com/mcp"))
	}
	if err := catalogue.ValidateVersion(f.specVersion); err != nil {
		return fail(err)
	}
	if f.password == "" {
		return fail(errors.New("--password is empty: pass the upstream test user's password (or set " + EnvPrefix + "PASSWORD)"))
	}
	cfg := checks.Config{
		Target: f.target, SpecVersion: f.specVersion, Scope: f.scope,
		Login: login.Options{Credentials: login.Credentials{Username: f.username, Password: f.password},
			Selectors: login.Selectors{Username: f.usernameSel, Password: f.passwordSel, Submit: f.submitSel,
				UpstreamConsent: f.upSel, Approve: f.approveSel, Deny: f.denySel}},
		UpstreamSubject: f.upstreamSubject, Sibling: f.sibling, SecondInstance: f.secondInstance,
		Browser:      browser.Options{ExecPath: f.chromium, RemoteURL: f.browserURL, NoSandbox: f.noSandbox},
		CheckTimeout: f.checkTimeout, HTTPTimeout: f.httpTimeout, FlowTimeout: f.flowTimeout,
		FreshContexts: f.freshContexts, NoPrefetch: f.noPrefetch, Parallel: f.parallel,
	}
	if f.secondUsername != "" {
		cfg.SecondUser = &login.Credentials{Username: f.secondUsername, Password: f.secondPassword}
	}
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}
	if f.insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // opt-in for self-signed test deployments
		cfg.Browser.Flags = map[string]any{"ignore-certificate-errors": true}
	}
	cfg.Transport = tr
	if f.mockAdmin != "" {
		if _, err := url.ParseRequestURI(f.mockAdmin); err != nil {
			return fail(fmt.Errorf("--mock-auth0-admin %q is not a URL: %w", f.mockAdmin, err))
		}
		m := upstream.NewMockAdmin(f.mockAdmin, f.mockAdminToken, &http.Client{Transport: tr, Timeout: f.httpTimeout})
		pctx, cancel := context.WithTimeout(ctx, f.httpTimeout)
		err := m.Ping(pctx)
		cancel()
		if err != nil {
			return fail(fmt.Errorf("--mock-auth0-admin: %w (start the mock with --admin)", err))
		}
		cfg.Upstream = m
	}
	if f.upstreamClientID != "" {
		iss := f.upstreamIssuer
		if iss == "" {
			iss = f.mockAdmin
		}
		if iss == "" {
			return fail(errors.New("--upstream-client-id needs --upstream-issuer (or --mock-auth0-admin)"))
		}
		cfg.UpstreamClient = &checks.UpstreamClient{Issuer: iss, ClientID: f.upstreamClientID, ClientSecret: f.upstreamSecret, Audience: f.upstreamAud}
	}
	if f.cimdBaseURL != "" || f.cimdTLS {
		if f.cimdBaseURL != "" && !strings.HasPrefix(f.cimdBaseURL, "https://") {
			return fail(fmt.Errorf("--cimd-base-url %q must be an https URL (client ID metadata documents are fetched over https)", f.cimdBaseURL))
		}
		opts := cimdhost.Options{Listen: f.cimdListen, BaseURL: f.cimdBaseURL}
		caFile := ""
		if f.cimdTLS {
			hosts, err := cimdHosts(f.cimdListen, f.cimdBaseURL)
			if err != nil {
				return fail(err)
			}
			tlsCfg, caPath, err := cimdhost.GenerateTLS(hosts, f.reportDir)
			if err != nil {
				return fail(fmt.Errorf("--cimd-tls: %w", err))
			}
			opts.TLS, caFile = tlsCfg, caPath
		}
		h, err := cimdhost.Start(opts)
		if err != nil {
			return fail(err)
		}
		if caFile != "" {
			fmt.Fprintf(stdout, "CIMD host: %s serves https with a certificate from a generated CA; make the target trust %s\n", h.BaseURL(), caFile)
		}
		cleanups = append(cleanups, func() { _ = h.Close() })
		cfg.CIMD = h
	}
	if f.probeTool != "" {
		var args map[string]any
		if err := json.Unmarshal([]byte(f.probeArgs), &args); err != nil {
			return fail(fmt.Errorf("--scope-probe-args is not a JSON object: %w", err))
		}
		p := &checks.ScopeProbe{Tool: f.probeTool, Arguments: args, Granted: f.probeGranted, Needs: strings.Fields(f.probeNeeds), NarrowTool: f.probeNarrowTool}
		if f.scopeImplies != "" {
			broad, narrow, ok := strings.Cut(f.scopeImplies, "=")
			if !ok {
				return fail(fmt.Errorf("--scope-implies %q: want broad=narrow", f.scopeImplies))
			}
			p.Implies = [2]string{broad, narrow}
		}
		cfg.ScopeProbe = p
	}
	return cfg, cleanup, nil
}

// cimdHosts are the names the generated CIMD certificate is for: --cimd-base-url's host, else the
// listen address (127.0.0.1 and localhost for a wildcard or loopback listen address).
func cimdHosts(listen, base string) ([]string, error) {
	if base != "" {
		u, err := url.Parse(base)
		if err != nil || u.Hostname() == "" {
			return nil, fmt.Errorf("--cimd-base-url %q has no host", base)
		}
		return []string{u.Hostname()}, nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("--cimd-listen %q: %w", listen, err)
	}
	switch host {
	case "", "0.0.0.0", "::", "127.0.0.1", "localhost":
		return []string{"127.0.0.1", "localhost"}, nil
	}
	return []string{host}, nil
}
