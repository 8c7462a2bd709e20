package login_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/internal/testenv"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/login"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/redirect"
)

var shared testenv.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	shared.Close()
	os.Exit(code)
}

// site is a tiny authorization server + identity provider: /authorize → consent page → login page
// (Auth0's selectors) → the client's redirect URI with a code.
func site(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/consent?"+r.URL.RawQuery, http.StatusFound)
	})
	mux.HandleFunc("GET /consent", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		fmt.Fprintf(w, `<!doctype html><html><body><h1>Allow %s?</h1>
<form method="post" action="/consent"><input type="hidden" name="redirect_uri" value="%s">
<input type="hidden" name="state" value="%s">
<button type="submit" name="action" value="deny">Deny</button>
<button type="submit" name="action" value="approve">Approve</button></form></body></html>`,
			html.EscapeString(q.Get("client_id")), html.EscapeString(q.Get("redirect_uri")), html.EscapeString(q.Get("state")))
	})
	mux.HandleFunc("POST /consent", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.PostForm.Get("action") != "approve" {
			http.Redirect(w, r, r.PostForm.Get("redirect_uri")+"?error=access_denied&state="+url.QueryEscape(r.PostForm.Get("state")), http.StatusFound)
			return
		}
		http.Redirect(w, r, "/u/login?"+url.Values{"redirect_uri": {r.PostForm.Get("redirect_uri")}, "state": {r.PostForm.Get("state")}}.Encode(), http.StatusFound)
	})
	mux.HandleFunc("GET /u/login", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		fmt.Fprintf(w, `<!doctype html><html><body><form method="post" action="/u/login">
<input type="hidden" name="redirect_uri" value="%s"><input type="hidden" name="state" value="%s">
<input id="username" name="username"><input id="password" name="password" type="password">
<button type="submit" name="action" value="default">Continue</button></form></body></html>`,
			html.EscapeString(q.Get("redirect_uri")), html.EscapeString(q.Get("state")))
	})
	mux.HandleFunc("POST /u/login", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.PostForm.Get("username") != "dev@example.com" || r.PostForm.Get("password") != "dev-password" {
			http.Redirect(w, r, "/u/login?"+url.Values{"redirect_uri": {r.PostForm.Get("redirect_uri")}, "state": {r.PostForm.Get("state")}}.Encode(), http.StatusFound)
			return
		}
		http.Redirect(w, r, r.PostForm.Get("redirect_uri")+"?code=c0de&state="+url.QueryEscape(r.PostForm.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("GET /broken", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "authorization session mismatch", http.StatusForbidden)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestDriverFlows(t *testing.T) {
	b := shared.Get(t)
	srv := site(t)
	ln, err := redirect.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })

	cases := []struct {
		name      string
		password  string
		plan      func(ep *redirect.Endpoint) login.Plan
		start     string
		wantStop  string
		wantParam string // expected query parameter at the redirect URI
		wantErr   string
	}{
		{name: "approve and log in", password: "dev-password", wantStop: "done", wantParam: "code",
			plan: func(ep *redirect.Endpoint) login.Plan { return login.Plan{Consent: login.Approve, Done: ep.Received} }},
		{name: "deny", password: "dev-password", wantStop: "done", wantParam: "error",
			plan: func(ep *redirect.Endpoint) login.Plan { return login.Plan{Consent: login.Deny, Done: ep.Received} }},
		{name: "stop at consent", password: "dev-password", wantStop: "consent",
			plan: func(ep *redirect.Endpoint) login.Plan { return login.Plan{Consent: login.StopAtConsent} }},
		{name: "stop at login", password: "dev-password", wantStop: "login",
			plan: func(ep *redirect.Endpoint) login.Plan { return login.Plan{StopAtLogin: true} }},
		{name: "wrong password", password: "nope", wantErr: "login page came back",
			plan: func(ep *redirect.Endpoint) login.Plan { return login.Plan{Done: ep.Received} }},
		{name: "error page", password: "dev-password", start: "/broken", wantErr: "HTTP 403",
			plan: func(ep *redirect.Endpoint) login.Plan { return login.Plan{Done: ep.Received} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ep := ln.NewEndpoint()
			s, err := b.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := srv.URL + "/authorize?" + url.Values{"client_id": {"c1"}, "redirect_uri": {ep.URI()}, "state": {"s<1>"}}.Encode()
			if tc.start != "" {
				start = srv.URL + tc.start
			}
			t0 := time.Now()
			if err := s.StartNavigation(ctx, start); err != nil {
				t.Fatal(err)
			}
			d := login.New(login.Options{Credentials: login.Credentials{Username: "dev@example.com", Password: tc.password},
				IdleTimeout: 2 * time.Second})
			out, err := d.Run(ctx, s, tc.plan(ep))
			t.Logf("flow took %s, steps %+v", time.Since(t0), out.Steps)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to mention %q", err, tc.wantErr)
				}
				if fe, ok := login.AsFlowError(err); !ok || len(fe.Screenshot) == 0 {
					t.Fatalf("want a FlowError with a screenshot, got %T", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.Stopped != tc.wantStop {
				t.Fatalf("stopped = %q, want %q", out.Stopped, tc.wantStop)
			}
			if tc.wantParam != "" {
				r, err := ep.Wait(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !r.Has(tc.wantParam) || r.State() != "s<1>" {
					t.Fatalf("redirect got %v, want %s and the state echoed", r.Query, tc.wantParam)
				}
			}
			if len(s.Navigations()) == 0 {
				t.Fatal("no navigations recorded")
			}
		})
	}
}
