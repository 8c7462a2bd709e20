package checks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/evidence"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
)

// errStepFailed marks a preflight step that failed with a message already recorded.
var errStepFailed = errors.New("preflight step failed")

// Preflight is the gate before any check: the target answers, challenges an unauthenticated
// request with 401, serves protected-resource and authorization-server metadata, registers a
// client, completes a browser authorization whose token works for an MCP initialize. When a step
// fails, the report names that one step with what was seen and a hint, and no check may run:
// every verdict would be about the setup, not the target's conformance. On success the run's
// discovery, shared client, shared grant and design are ready for the checks.
func (e *Env) Preflight(ctx context.Context) *report.Preflight {
	start := time.Now()
	p := &report.Preflight{Passed: true}
	defer func() {
		p.DurationMS = float64(time.Since(start).Microseconds()) / 1000
		e.addTiming("preflight", time.Since(start))
	}()
	var unauth *oauthclient.Response
	steps := []struct {
		name string
		run  func(t *T) (detail, hint string, err error)
	}{
		{"reachability", func(t *T) (string, string, error) {
			resp, err := t.client.CallMCP(t.Label("initialize without a token"), e.cfg.Target, oauthclient.MCPCall{})
			if err != nil {
				return err.Error(), "check --target (scheme, host, port and path of the MCP endpoint) and that the server runs and is reachable from here; for a self-signed test certificate pass --insecure", errStepFailed
			}
			unauth = resp
			return fmt.Sprintf("POST %s answered %s", e.cfg.Target, resp.Describe()), "", nil
		}},
		{"401 challenge", func(t *T) (string, string, error) {
			detail := fmt.Sprintf("initialize without a token got %s", unauth.Describe())
			if wa := unauth.Header.Values("WWW-Authenticate"); len(wa) > 0 {
				detail += "; WWW-Authenticate: " + strings.Join(wa, ", ")
			}
			switch s := unauth.Status; {
			case s == http.StatusUnauthorized:
				return detail, "", nil
			case s >= 200 && s < 300:
				return detail, "the MCP endpoint answers without authorization: there is nothing to check — is authorization enabled, and is --target the protected endpoint?", errStepFailed
			case s == http.StatusNotFound || s == http.StatusMethodNotAllowed:
				return detail, "--target does not look like the MCP endpoint (Streamable HTTP takes POST at the endpoint's path, often /mcp): pass the endpoint's full URL", errStepFailed
			case s >= 300 && s < 400:
				return detail, fmt.Sprintf("the endpoint redirects to %s: pass the URL clients should use as --target", unauth.Location()), errStepFailed
			case s >= 500:
				return detail, "the server failed: look at its logs (is the MCP backend behind the proxy running and routed?)", errStepFailed
			default:
				return detail, "an unauthenticated MCP request must get 401 with a Bearer challenge (MCP authorization); is --target the MCP endpoint?", errStepFailed
			}
		}},
		{"protected-resource metadata", func(t *T) (string, string, error) {
			d := e.Discovery(t.ctx)
			if d.PRM == nil {
				return fmt.Sprint(d.Err), "serve RFC 9728 metadata at the well-known URL for the MCP endpoint (/.well-known/oauth-protected-resource/<path>) or name it in the 401's resource_metadata", errStepFailed
			}
			if len(d.PRM.AuthorizationServers) == 0 {
				return fmt.Sprintf("the PRM at %s lists no authorization_servers", d.PRM.URL), "the PRM must name the authorization server (authorization_servers)", errStepFailed
			}
			return fmt.Sprintf("found through %s at %s; authorization server %s", d.PRMSource, d.PRM.URL, d.PRM.AuthorizationServers[0]), "", nil
		}},
		{"authorization-server metadata", func(t *T) (string, string, error) {
			d := e.Discovery(t.ctx)
			if d.AS == nil {
				return fmt.Sprint(d.Err), fmt.Sprintf("serve RFC 8414 metadata for the issuer %s (/.well-known/oauth-authorization-server, path-inserted for an issuer with a path) or OpenID discovery", d.Issuer), errStepFailed
			}
			if d.AS.AuthorizationEndpoint == "" || d.AS.TokenEndpoint == "" {
				return fmt.Sprintf("the metadata at %s has no authorization_endpoint or token_endpoint", d.AS.URL), "the metadata must name both endpoints (RFC 8414 §2)", errStepFailed
			}
			return fmt.Sprintf("found at %s; scope the suite requests: %q", d.AS.URL, d.DefaultScope), "", nil
		}},
		{"client registration", func(t *T) (string, string, error) {
			c := t.RegisterClient(nil)
			if t.AS().RegistrationEndpoint == "" {
				return "no registration_endpoint; a client ID metadata document is used: " + c.ID, "", nil
			}
			return fmt.Sprintf("registered a public loopback client %s", c.ID), "", nil
		}},
		{"browser authorization", func(t *T) (string, string, error) {
			g := t.SharedGrant()
			detail := fmt.Sprintf("authorized and redeemed a code (scope %q, token type %s)", g.Flow.Params.Get("scope"), g.Tokens.TokenType)
			if g.Tokens.RefreshToken == "" {
				detail += "; no refresh token was issued"
			}
			return detail, "", nil
		}},
		{"authorized initialize", func(t *T) (string, string, error) {
			g := t.SharedGrant()
			resp := t.CallMCP("initialize with the token", oauthclient.Bearer(g.Tokens.AccessToken))
			detail := fmt.Sprintf("initialize with a fresh access token got %s", resp.Describe())
			if resp.Status >= 200 && resp.Status < 300 {
				return detail, "", nil
			}
			hint := "a token straight from the token endpoint must work: "
			switch {
			case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
				hint += "the server refuses the tokens its own authorization server issues (check its audience/issuer configuration and the resource it binds tokens to)"
			case resp.Status == http.StatusNotFound || resp.Status >= 500:
				hint += "the MCP backend behind the authorization layer does not answer (misrouted or down)"
			default:
				hint += "check the server's logs"
			}
			return detail, hint, errStepFailed
		}},
	}
	for _, st := range steps {
		rec := &evidence.Record{}
		t := &T{env: e, rec: rec, client: e.newClient(rec)}
		t.entry.ID = "preflight"
		var cancel context.CancelFunc
		t.ctx, cancel = context.WithTimeout(ctx, e.cfg.CheckTimeout)
		detail, hint, err := runStep(t, st.run)
		cancel()
		ps := report.PreflightStep{Name: st.name, Status: report.Pass, Detail: detail, Hint: hint, Evidence: rec.Snapshot()}
		if err != nil {
			ps.Status = report.Fail
			if ps.Hint == "" {
				ps.Hint = defaultHint(st.name)
			}
			p.Passed = false
		}
		p.Steps = append(p.Steps, ps)
		if !p.Passed {
			return p
		}
	}
	return p
}

// runStep runs a step, turning a stopped check (Inconclusive, Fatalf, Skipf) into its message.
func runStep(t *T, f func(t *T) (string, string, error)) (detail, hint string, err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if _, ok := r.(stopCheck); !ok {
			detail, err = fmt.Sprintf("the suite failed: %v", r), errStepFailed
			return
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		switch {
		case t.inconclusive != nil:
			detail = t.inconclusive.Step + ": " + t.inconclusive.Answer
		case len(t.failures) > 0:
			detail = strings.Join(t.failures, "; ")
		case t.skip != "":
			detail = t.skip
		default:
			detail = "stopped"
		}
		err = errStepFailed
	}()
	return f(t)
}

func defaultHint(step string) string {
	switch step {
	case "client registration":
		return "the suite registers a public loopback client (token_endpoint_auth_method none, redirect URI http://127.0.0.1:<port>/…), as MCP clients do; without dynamic client registration pass --cimd-base-url so it can use a client ID metadata document"
	case "browser authorization":
		return "check --username/--password, the upstream login page's selectors (--username-selector, --password-selector, --submit-selector) and the consent buttons (--approve-selector); the screenshot of where the flow stopped is in the report"
	}
	return ""
}

// DetectDesign runs the design detection once, outside any check (after a passed preflight).
func (e *Env) DetectDesign(ctx context.Context) *report.Design {
	rec := &evidence.Record{}
	t := &T{env: e, rec: rec, client: e.newClient(rec)}
	t.entry.ID = "design detection"
	var cancel context.CancelFunc
	t.ctx, cancel = context.WithTimeout(ctx, e.cfg.CheckTimeout)
	defer cancel()
	_, _, _ = runStep(t, func(t *T) (string, string, error) { t.Design(); return "", "", nil })
	return e.designKnown()
}
