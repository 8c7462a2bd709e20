package defects

import (
	"bytes"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Defect is one way to be wrong, and what it must do to the verdicts.
type Defect struct {
	Name string
	// Checks are the catalogue IDs that must fail against this defect (or warn, for rows the
	// catalogue grades as warnings).
	Checks []string
	// Inconclusive are rows whose precondition this defect refuses: they must end inconclusive,
	// never failed (a setup step refused is no verdict on them).
	Inconclusive []string
	// Pass are rows the defect is not about that must still pass (or warn): a wrong cause must
	// not fail them (the issue-10 regressions).
	Pass []string
	// NotFail are rows that must pass, warn or be skipped as not applicable (design detection).
	NotFail []string
	// Messages are substrings a row's message must contain ("!" first: must not contain).
	Messages map[string][]string
	// Repeat runs the checks this many times, each in a fresh run (probabilistic defects).
	Repeat int
	// Target wraps the MCP server; Upstream wraps the mock Auth0 (either may be nil).
	Target   Wrap
	Upstream Wrap
	// CIMD rewrites the client metadata documents the target fetches (nil: none).
	CIMD func(s *State, path string, body []byte) []byte
	// SpecVersion, when set, is the MCP version the checks run at (default: the suite's).
	SpecVersion string
	// Scope, when set, is the run's --scope.
	Scope string
	// Why is the issue-10 bullet a defect reproduces (documentation; the self-test prints it).
	Why string
}

// All is the defect table.
func All() []Defect {
	all := []Defect{
		// ---- C.1 PRM
		{Name: "PRM not served and no resource_metadata", Checks: []string{"PRM-01", "PRM-04"}, Target: chain(
			onPath(pPRM, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }),
			handle(func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
				rec := capture(next, r)
				rec.Header().Del("WWW-Authenticate")
				rec.send(w, nil)
			}))},
		{Name: "PRM served as text/html", Checks: []string{"PRM-01"}, Target: editHeaders(pPRM, "", func(r *http.Request, h http.Header) {
			h.Set("Content-Type", "text/html")
		})},
		{Name: "PRM without authorization_servers", Checks: []string{"PRM-02"}, Target: editJSON(pPRM, func(m map[string]any) { delete(m, "authorization_servers") })},
		{Name: "PRM authorization server over plain http", Checks: []string{"PRM-02"}, Target: editJSON(pPRM, func(m map[string]any) {
			m["authorization_servers"] = []string{"http://as.conformance-defect.example/"}
		})},
		{Name: "PRM names another resource", Checks: []string{"PRM-03", "CLI-16"}, Target: editJSON(pPRM, func(m map[string]any) {
			m["resource"] = "https://other.conformance-defect.example/mcp"
		})},
		{Name: "resource_metadata does not resolve", Checks: []string{"PRM-04"}, Target: onPath(pMCP, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			rec := capture(next, r)
			if v := rec.Header().Get("WWW-Authenticate"); v != "" {
				rec.Header().Set("WWW-Authenticate", regexp.MustCompile(`resource_metadata="[^"]*"`).ReplaceAllString(v, `resource_metadata="/no-such-prm"`))
			}
			rec.send(w, nil)
		})},
		{Name: "PRM without scopes_supported and resource_name", Checks: []string{"PRM-05"}, Target: editJSON(pPRM, func(m map[string]any) {
			delete(m, "scopes_supported")
			delete(m, "resource_name")
		})},
		{Name: "PRM allows query tokens", Checks: []string{"PRM-06"}, Target: editJSON(pPRM, func(m map[string]any) {
			m["bearer_methods_supported"] = []string{"header", "query"}
		})},
		{Name: "PRM advertises offline_access", Checks: []string{"PRM-07"}, Target: editJSON(pPRM, func(m map[string]any) {
			ss, _ := m["scopes_supported"].([]any)
			m["scopes_supported"] = append(ss, "offline_access")
		})},
		{Name: "no CORS on metadata", Checks: []string{"PRM-08", "ASM-13", "CLI-17"}, Target: handle(func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			rec := capture(next, r)
			if strings.HasPrefix(r.URL.Path, "/.well-known/") {
				rec.Header().Del("Access-Control-Allow-Origin")
			}
			rec.send(w, nil)
		})},
		{Name: "AS metadata names another issuer", Checks: []string{"PRM-09", "ASM-02", "CLI-03"}, Target: editJSON(pMetadata, func(m map[string]any) {
			m["issuer"] = "https://issuer.conformance-defect.example"
		})},
		{Name: "catch-all page for unknown well-known URLs", Checks: []string{"PRM-10", "CLI-01"}, Target: handle(func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/.well-known/oauth-protected-resource") && r.URL.Path != s.Paths.PRM {
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write([]byte("<html><body>app</body></html>"))
				return
			}
			next.ServeHTTP(w, r)
		})},

		// ---- C.2 resource server
		{Name: "401 without a challenge", Checks: []string{"RS-01", "CLI-16"}, Target: onPath(pMCP, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			rec := capture(next, r)
			rec.Header().Del("WWW-Authenticate")
			rec.send(w, nil)
		})},
		{Name: "error attribute without credentials", Checks: []string{"RS-02"}, Target: onPath(pMCP, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			rec := capture(next, r)
			if v := rec.Header().Get("WWW-Authenticate"); v != "" && !strings.Contains(v, "error=") {
				rec.Header().Set("WWW-Authenticate", v+`, error="invalid_token"`)
			}
			rec.send(w, nil)
		})},
		{Name: "any bearer token is accepted", Checks: []string{"RS-03"}, Target: substituteToken(func(s *State, r *http.Request, tok string) bool {
			return tok != "" && !s.issuedBy(tok)
		})},
		{Name: "the refresh token works as an access token", Checks: []string{"RS-03"}, Target: substituteToken(func(s *State, r *http.Request, tok string) bool {
			return tok != "" && len(strings.Split(tok, ".")) != 3
		})},
		{Name: "upstream tokens accepted (passthrough)", Checks: []string{"RS-05"}, Target: substituteToken(func(s *State, r *http.Request, tok string) bool {
			return tok != "" && !s.issuedBy(tok)
		})},
		{Name: "query-string tokens accepted", Checks: []string{"RS-06", "BCP-18"}, Target: onPath(pMCP, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			if t := r.URL.Query().Get("access_token"); t != "" {
				r.Header.Set("Authorization", "Bearer "+t)
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "Bearer scheme matched case-sensitively", Checks: []string{"RS-07"}, Target: onPath(pMCP, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			if a := r.Header.Get("Authorization"); a != "" && !strings.HasPrefix(a, "Bearer ") {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "refresh keeps working after the upstream revoked the grant", Checks: []string{"RS-10", "RT-09"}, Target: tokenSucceeds(func(s *State, f url.Values) bool {
			return f.Get("grant_type") == "refresh_token"
		})},
		{Name: "a fresh token is refused on first use", Checks: []string{"RS-11"}, Target: onPath(pMCP, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			tok := bearerToken(r)
			s.mu.Lock()
			first := tok != "" && !s.firstUse[tok]
			s.firstUse[tok] = true
			s.mu.Unlock()
			if first {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "malformed Authorization header crashes", Checks: []string{"RS-12"}, Target: onPath(pMCP, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			if a := r.Header.Get("Authorization"); a == "Bearer" || strings.Count(a, " ") > 1 {
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "Origin not validated", Checks: []string{"RS-13"}, Target: onPath(pMCP, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			r.Header.Del("Origin")
			next.ServeHTTP(w, r)
		})},
		// Sessions exist only before MCP 2026-07-28: these defects run the check at 2025-11-25.
		{Name: "the session authenticates as its creator", Checks: []string{"RS-08", "RS-09"}, SpecVersion: "2025-11-25", Target: onPath(pMCP, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			creator := s.sessions[r.Header.Get("Mcp-Session-Id")]
			s.mu.Unlock()
			if creator != "" {
				r.Header.Set("Authorization", "Bearer "+creator)
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "sequential session IDs", Checks: []string{"SEC-05"}, SpecVersion: "2025-11-25", Target: onPath(pMCP, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			rec := capture(next, r)
			if rec.Header().Get("Mcp-Session-Id") != "" {
				s.mu.Lock()
				s.sessionSeq++
				rec.Header().Set("Mcp-Session-Id", fmt.Sprintf("mcp-session-%010d", s.sessionSeq))
				s.mu.Unlock()
			}
			rec.send(w, nil)
		})},

		// ---- C.3 scopes
		{Name: "no scope in the 401 challenge", Checks: []string{"SC-01"}, Target: onPath(pMCP, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			rec := capture(next, r)
			if v := rec.Header().Get("WWW-Authenticate"); v != "" {
				rec.Header().Set("WWW-Authenticate", regexp.MustCompile(`,?\s*scope="[^"]*"`).ReplaceAllString(v, ""))
			}
			rec.send(w, nil)
		})},
		{Name: "insufficient scope reported as a JSON-RPC error", Checks: []string{"SC-02"}, Target: onPath(pMCP, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			rec := capture(next, r)
			if rec.Code == http.StatusForbidden {
				writeJSON(w, http.StatusOK, map[string]any{"jsonrpc": "2.0", "id": 1, "error": map[string]any{"code": -32001, "message": "insufficient scope"}})
				return
			}
			rec.send(w, nil)
		})},
		{Name: "step-up challenge lists no scope", Checks: []string{"SC-03"}, Target: onPath(pMCP, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			rec := capture(next, r)
			if rec.Code == http.StatusForbidden {
				v := rec.Header().Get("WWW-Authenticate")
				rec.Header().Set("WWW-Authenticate", regexp.MustCompile(`scope="[^"]*"`).ReplaceAllString(v, `scope="mcp:unrelated"`))
			}
			rec.send(w, nil)
		})},
		{Name: "scope repeated in the challenge", Checks: []string{"SC-05"}, Target: onPath(pMCP, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			rec := capture(next, r)
			if v := rec.Header().Get("WWW-Authenticate"); v != "" {
				rec.Header().Set("WWW-Authenticate", v+`, scope="a", scope="b"`)
			}
			rec.send(w, nil)
		})},
		{Name: "down-scoped tokens refused", Checks: []string{"SC-06"}, Target: onPath(pMCP, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			c := claimsOf(bearerToken(r))
			if sc, _ := c["scope"].(string); sc != "" && len(strings.Fields(sc)) < 2 {
				w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
				w.WriteHeader(http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "no re-authorization with more scope", Checks: []string{"SC-07"}, Target: onPath(pAuthorize, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			s.mu.Lock()
			prev, seen := s.seenClients[q.Get("client_id")]
			if !seen {
				s.seenClients[q.Get("client_id")] = q.Get("scope")
			}
			s.mu.Unlock()
			if seen && len(strings.Fields(q.Get("scope"))) > len(strings.Fields(prev)) {
				http.Error(w, "client already authorized", http.StatusBadRequest)
				return
			}
			next.ServeHTTP(w, r)
		})},

		// ---- C.4 AS metadata
		{Name: "AS metadata served as text/plain", Checks: []string{"ASM-01", "BCP-24"}, Target: editHeaders(pMetadata, "", func(r *http.Request, h http.Header) {
			h.Set("Content-Type", "text/plain")
		})},
		{Name: "metadata for another issuer at a path-inserted URL", Checks: []string{"ASM-03"}, Target: handle(func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, s.Paths.Metadata+"/") {
				writeJSON(w, http.StatusOK, map[string]any{"issuer": "https://issuer.conformance-defect.example/x"})
				return
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "AS metadata without response_types_supported", Checks: []string{"ASM-04"}, Target: editJSON(pMetadata, func(m map[string]any) { delete(m, "response_types_supported") })},
		{Name: "AS metadata without code_challenge_methods_supported", Checks: []string{"ASM-05", "CLI-04", "BCP-11"}, Target: editJSON(pMetadata, func(m map[string]any) {
			delete(m, "code_challenge_methods_supported")
		})},
		{Name: "AS metadata advertises implicit", Checks: []string{"ASM-06"}, Target: editJSON(pMetadata, func(m map[string]any) {
			gs, _ := m["grant_types_supported"].([]any)
			m["grant_types_supported"] = append(gs, "implicit")
		})},
		{Name: "token auth methods untruthful", Checks: []string{"ASM-07"}, Target: editJSON(pMetadata, func(m map[string]any) {
			m["token_endpoint_auth_methods_supported"] = []string{"client_secret_basic"}
		})},
		{Name: "registration advertised but broken", Checks: []string{"ASM-08"}, Target: onPath(pRegister, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			oauthError(w, http.StatusBadRequest, "invalid_client_metadata")
		})},
		{Name: "iss advertised but not sent", Checks: []string{"ASM-09", "AZ-14", "CLI-13", "BCP-23"}, Target: chain(
			editLocation(pAuthorize, "", func(r *http.Request, u *url.URL, q url.Values) { q.Del("iss") }),
			editLocation(pConsent, "", func(r *http.Request, u *url.URL, q url.Values) { q.Del("iss") }),
			editLocation(pCallback, "", func(r *http.Request, u *url.URL, q url.Values) { q.Del("iss") }))},
		{Name: "advertised endpoint over plain http on another host", Checks: []string{"ASM-10", "SEC-01"}, Target: editJSON(pMetadata, func(m map[string]any) {
			m["token_endpoint"] = "http://token.conformance-defect.example/token"
		})},
		{Name: "revocation auth methods exclude public clients", Checks: []string{"ASM-10"}, Target: editJSON(pMetadata, func(m map[string]any) {
			m["revocation_endpoint_auth_methods_supported"] = []string{"client_secret_post"}
		})},
		{Name: "AS metadata without scopes_supported", Checks: []string{"ASM-11"}, Target: editJSON(pMetadata, func(m map[string]any) { delete(m, "scopes_supported") })},
		{Name: "OpenID configuration that is not an OIDC document", Checks: []string{"ASM-12"}, Target: handle(func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/.well-known/openid-configuration" {
				r2 := r.Clone(r.Context())
				r2.URL.Path = s.Paths.Metadata
				rec := capture(next, r2)
				m := rec.jsonBody()
				delete(m, "jwks_uri")
				writeJSON(w, http.StatusOK, m)
				return
			}
			next.ServeHTTP(w, r)
		})},

		// ---- C.5 DCR
		{Name: "registration answers 200 without JSON content type", Checks: []string{"DCR-01"}, Target: onPath(pRegister, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			rec := capture(next, r)
			rec.Code = http.StatusOK
			rec.Header().Set("Content-Type", "text/plain")
			rec.send(w, nil)
		})},
		{Name: "registration response omits the auth method", Checks: []string{"DCR-02"}, Target: onPath(pRegister, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			rec := capture(next, r)
			m := rec.jsonBody()
			if m == nil {
				rec.send(w, nil)
				return
			}
			delete(m, "token_endpoint_auth_method")
			rec.send(w, mustJSON(m))
		})},
		{Name: "registration errors are not JSON", Checks: []string{"DCR-03"}, Target: onPath(pRegister, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			rec := capture(next, r)
			if rec.Code >= 400 {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			rec.send(w, nil)
		})},
		{Name: "http non-loopback redirect URIs registered", Checks: []string{"DCR-04", "BCP-05"}, Target: fakeRegistration(func(m map[string]any) bool {
			return redirectURIsContain(m, func(u string) bool {
				return strings.HasPrefix(u, "http://") && !strings.Contains(u, "127.0.0.1") && !strings.Contains(u, "localhost")
			})
		}, nil)},
		{Name: "dangerous schemes registered", Checks: []string{"DCR-05"}, Target: fakeRegistration(func(m map[string]any) bool {
			return redirectURIsContain(m, func(u string) bool { return strings.HasPrefix(u, "javascript:") })
		}, nil)},
		{Name: "redirect URIs with fragments registered", Checks: []string{"DCR-06"}, Target: fakeRegistration(func(m map[string]any) bool {
			return redirectURIsContain(m, func(u string) bool { return strings.Contains(u, "#") })
		}, nil)},
		{Name: "non-reverse-domain private-use schemes registered", Checks: []string{"DCR-07"}, Target: fakeRegistration(func(m map[string]any) bool {
			return redirectURIsContain(m, func(u string) bool { return strings.HasPrefix(u, "myapp:") })
		}, nil)},
		{Name: "unknown metadata fields refused", Checks: []string{"DCR-08"}, Target: onPath(pRegister, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			if m := readJSON(r); m != nil {
				if _, ok := m["x_conformance_unknown"]; ok {
					oauthError(w, http.StatusBadRequest, "invalid_client_metadata")
					return
				}
			}
			next.ServeHTTP(w, r)
		})},
		// The MUST binds clients: the server side is graded as a warning (issue 10: DCR-09 = warn).
		{Name: "application_type web accepts loopback", Pass: []string{"DCR-09", "CLI-12"}, Messages: map[string][]string{"DCR-09": {"application_type web"}, "CLI-12": {"see DCR-09"}}, Target: fakeRegistration(func(m map[string]any) bool {
			return m["application_type"] == "web" && redirectURIsContain(m, func(u string) bool { return strings.HasPrefix(u, "http://127.0.0.1") })
		}, nil)},
		// RFC 6749 §5.2 allows 400 when the client sent no Authorization header: a warning, not a
		// failure (issue 10: grading corrections).
		{Name: "unknown client at /token gets 400 (no Authorization header)", Pass: []string{"DCR-10", "TOK-11", "CLI-06"},
			Messages: map[string][]string{"TOK-11": {"400"}, "CLI-06": {"see TOK-11", "!Invalid"}}, Target: onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
				rec := capture(next, r)
				if rec.Code == http.StatusUnauthorized && r.Header.Get("Authorization") == "" {
					oauthError(w, http.StatusBadRequest, "invalid_client")
					return
				}
				rec.send(w, nil)
			})},
		{Name: "unknown registration scope refused", Checks: []string{"DCR-11"}, Target: onPath(pRegister, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			if m := readJSON(r); m != nil && m["scope"] == "claudeai" {
				oauthError(w, http.StatusBadRequest, "invalid_client_metadata")
				return
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "client_credentials registered for a public client", Checks: []string{"DCR-12"}, Target: fakeRegistration(func(m map[string]any) bool {
			gs, _ := m["grant_types"].([]any)
			return len(gs) == 1 && gs[0] == "client_credentials"
		}, nil)},

		// ---- C.6 client ID metadata documents
		{Name: "CIMD not advertised", Checks: []string{"CIMD-01"}, Target: editJSON(pMetadata, func(m map[string]any) {
			delete(m, "client_id_metadata_document_supported")
		})},
		{Name: "any client ID URL accepted", Checks: []string{"CIMD-02", "CIMD-03", "CIMD-04", "CIMD-05", "CIMD-07", "CIMD-10"},
			Target: acceptAuthorize(func(q url.Values, raw string) bool { return strings.HasPrefix(q.Get("client_id"), "http") })},
		{Name: "client ID URLs followed through redirects", Checks: []string{"CIMD-06"},
			Target: acceptAuthorize(func(q url.Values, raw string) bool { return strings.Contains(q.Get("client_id"), "/clients/redirect-") })},
		{Name: "failed metadata documents cached", Checks: []string{"CIMD-06"}, Target: cachedCIMDFailures()},
		{Name: "metadata documents cached despite max-age=0", Checks: []string{"CIMD-08"}, Target: editBody(pConsent, http.MethodGet, func(b []byte) []byte {
			return bytes.ReplaceAll(b, []byte("Conformance Name Bravo"), []byte("Conformance Name Alpha"))
		})},
		{Name: "consent hides the redirect host", Checks: []string{"CIMD-09", "BCP-31"}, Target: editBody(pConsent, http.MethodGet, func(b []byte) []byte {
			return bytes.ReplaceAll(b, []byte("127.0.0.1"), []byte("a local application"))
		})},

		// ---- C.7 authorization endpoint
		// AZ-01 owns the plain flow; the rows that only need a grant are inconclusive (a setup step
		// refused is no verdict on them; the preflight stops a real run here).
		{Name: "GET on the authorization endpoint refused", Checks: []string{"AZ-01"}, Inconclusive: []string{"AZ-15", "RES-01", "TOK-02", "TOK-03"}, Target: onPath(pAuthorize, http.MethodGet, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			http.Error(w, "use POST", http.StatusMethodNotAllowed)
		})},
		{Name: "unknown client redirected to its redirect_uri", Checks: []string{"AZ-02", "BCP-06", "CLI-06"}, Target: onPath(pAuthorize, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			rec := capture(next, r)
			if ru := r.URL.Query().Get("redirect_uri"); rec.Code >= 400 && ru != "" {
				http.Redirect(w, r, ru+"?error=invalid_client", http.StatusFound)
				return
			}
			rec.send(w, nil)
		})},
		{Name: "redirect URIs matched loosely", Checks: []string{"AZ-03", "PXY-09", "BCP-03", "CLI-08"}, Target: acceptAuthorize(func(q url.Values, raw string) bool { return q.Get("redirect_uri") != "" })},
		{Name: "no redirect_uri accepted with two registered", Checks: []string{"AZ-04"}, Target: acceptAuthorize(func(q url.Values, raw string) bool { return !q.Has("redirect_uri") })},
		{Name: "state not echoed", Checks: []string{"AZ-05"}, Target: chain(
			editLocation(pAuthorize, "", func(r *http.Request, u *url.URL, q url.Values) { q.Del("state") }),
			editLocation(pCallback, "", func(r *http.Request, u *url.URL, q url.Values) {
				if q.Has("state") {
					q.Set("state", q.Get("state")+"x")
				} else {
					q.Set("state", "")
				}
			}))},
		{Name: "implicit grant accepted", Checks: []string{"AZ-06", "BCP-01"}, Target: acceptAuthorize(func(q url.Values, raw string) bool { return q.Get("response_type") != "code" })},
		{Name: "repeated parameters accepted", Checks: []string{"AZ-07", "BCP-26"}, Target: acceptAuthorize(func(q url.Values, raw string) bool {
			for _, vs := range q {
				if len(vs) > 1 {
					return true
				}
			}
			return false
		})},
		{Name: "CORS on the authorization endpoint", Checks: []string{"AZ-08", "SEC-03", "BCP-21"}, Target: editHeaders(pAuthorize, "", func(r *http.Request, h http.Header) {
			h.Set("Access-Control-Allow-Origin", "*")
		})},
		{Name: "codes never expire", Checks: []string{"AZ-09", "TOK-09", "BCP-08"}, Target: tokenSucceeds(func(s *State, f url.Values) bool { return f.Get("grant_type") == "authorization_code" })},
		{Name: "errors redirected to untrusted redirect URIs", Checks: []string{"AZ-10", "BCP-07"}, Target: onPath(pAuthorize, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			if strings.HasPrefix(q.Get("redirect_uri"), "https://") && q.Get("scope") == "conformance-bogus-scope" {
				http.Redirect(w, r, q.Get("redirect_uri")+"?error=invalid_scope&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
				return
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "307 after the consent POST", Checks: []string{"AZ-11", "BCP-20"}, Target: onPath(pConsent, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			rec := capture(next, r)
			if rec.Code == http.StatusFound || rec.Code == http.StatusSeeOther {
				rec.Code = http.StatusTemporaryRedirect
			}
			rec.send(w, nil)
		})},
		{Name: "unregistered error codes", Checks: []string{"AZ-12", "BCP-28"}, Target: editLocation(pAuthorize, "", func(r *http.Request, u *url.URL, q url.Values) {
			if q.Has("error") {
				q.Set("error", "conformance_bogus_error")
			}
		})},
		{Name: "scope required", Checks: []string{"AZ-13"}, Target: onPath(pAuthorize, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			if !r.URL.Query().Has("scope") {
				http.Redirect(w, r, r.URL.Query().Get("redirect_uri")+"?error=invalid_scope&state="+url.QueryEscape(r.URL.Query().Get("state")), http.StatusFound)
				return
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "invalid scope reported as invalid_request", Checks: []string{"AZ-13"}, Target: editLocation(pAuthorize, "", func(r *http.Request, u *url.URL, q url.Values) {
			if q.Get("error") == "invalid_scope" {
				q.Set("error", "invalid_request")
			}
		})},
		{Name: "iss of another issuer", Checks: []string{"AZ-14"}, Target: chain(
			editLocation(pCallback, "", func(r *http.Request, u *url.URL, q url.Values) {
				if q.Has("iss") {
					q.Set("iss", q.Get("iss")+"/")
				}
			}))},

		// ---- C.8 PKCE
		{Name: "PKCE not enforced", Checks: []string{"PKCE-01", "PKCE-03", "PKCE-04", "PKCE-05", "PKCE-06", "BCP-10"}, Target: skipPKCE()},
		{Name: "unsupported PKCE methods accepted", Checks: []string{"PKCE-02", "BCP-10"}, Target: acceptAuthorize(func(q url.Values, raw string) bool {
			return q.Get("code_challenge_method") != "" && q.Get("code_challenge_method") != "S256"
		})},
		{Name: "the client's PKCE values forwarded upstream", Checks: []string{"PKCE-07"}, Target: forwardClientPKCE()},
		{Name: "constant PKCE challenges not detected", Checks: []string{"PKCE-08"}, Target: hideRepeatedChallenges()},

		// ---- C.9 resource indicators
		{Name: "access token audience is not the resource", Checks: []string{"RES-01", "RS-04", "TOK-16", "BCP-16"}, Target: editToken(func(m map[string]any) {
			if at, _ := m["access_token"].(string); at != "" {
				m["access_token"] = editClaims(at, func(c map[string]any) { c["aud"] = "https://other.conformance-defect.example/mcp" })
			}
		})},
		{Name: "resource required", Checks: []string{"RES-02", "CLI-10"}, Target: onPath(pAuthorize, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			if !r.URL.Query().Has("resource") {
				http.Error(w, "resource is required", http.StatusBadRequest)
				return
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "foreign or malformed resources accepted", Checks: []string{"RES-03", "RES-04"}, Target: acceptAuthorize(func(q url.Values, raw string) bool { return q.Has("resource") })},
		{Name: "resource compared case-sensitively", Checks: []string{"RES-05"}, Target: onPath(pAuthorize, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			if res := r.URL.Query().Get("resource"); strings.HasPrefix(res, "HTTP") || strings.HasSuffix(res, "/") {
				http.Redirect(w, r, r.URL.Query().Get("redirect_uri")+"?error=invalid_target", http.StatusFound)
				return
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "token-request resource ignored", Checks: []string{"RES-06", "RES-07", "CLI-14", "BCP-13"}, Target: onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			f := readForm(r)
			f.Del("resource")
			setForm(r, f)
			next.ServeHTTP(w, r)
		})},

		// ---- C.10 token endpoint
		{Name: "GET on the token endpoint answered", Checks: []string{"TOK-01"}, Target: onPath(pToken, http.MethodGet, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			if !s.replayGoodToken(w) {
				writeJSON(w, http.StatusOK, map[string]any{"access_token": "x", "token_type": "Bearer"})
			}
		})},
		{Name: "token responses cacheable", Checks: []string{"TOK-02", "BCP-19"}, Target: editHeaders(pToken, "", func(r *http.Request, h http.Header) {
			h.Del("Cache-Control")
			h.Del("Pragma")
		})},
		{Name: "token_type not Bearer", Checks: []string{"TOK-03"}, Target: editToken(func(m map[string]any) { m["token_type"] = "mac" })},
		{Name: "codes redeemable twice", Checks: []string{"TOK-04", "BCP-08", "BCP-09"}, Target: reusableCodes()},
		{Name: "code replay does not revoke", Checks: []string{"TOK-05", "BCP-09"}, Target: replayNotForwarded()},
		{Name: "invalid code replay revokes", Checks: []string{"TOK-06", "BCP-09"}, Target: invalidReplayRevokes()},
		{Name: "codes not bound to the client", Checks: []string{"TOK-07"}, Target: codesAnyClient()},
		{Name: "redirect_uri required and unchecked at /token", Checks: []string{"TOK-08", "BCP-25", "CLI-14"}, Target: onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			f := readForm(r)
			if f.Get("grant_type") == "authorization_code" && !f.Has("redirect_uri") {
				oauthError(w, http.StatusBadRequest, "invalid_request")
				return
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "token errors are 500 HTML", Checks: []string{"TOK-10", "CLI-15", "BCP-28"}, Target: onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			rec := capture(next, r)
			if rec.Code >= 400 {
				http.Error(w, "<html>internal error</html>", http.StatusInternalServerError)
				return
			}
			rec.send(w, nil)
		})},
		{Name: "password grant accepted", Checks: []string{"TOK-12", "BCP-02"}, Target: tokenSucceeds(func(s *State, f url.Values) bool { return f.Get("grant_type") == "password" })},
		{Name: "repeated token parameters accepted", Checks: []string{"TOK-13", "BCP-26"}, Target: onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			f := readForm(r)
			for k, vs := range f {
				f[k] = vs[:1]
			}
			setForm(r, f)
			next.ServeHTTP(w, r)
		})},
		{Name: "public clients need no client_id", Checks: []string{"TOK-14"}, Target: onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			f := readForm(r)
			if !f.Has("client_id") && f.Get("code") != "" {
				if cid := s.clientOfCode(f.Get("code")); cid != "" {
					f.Set("client_id", cid)
					setForm(r, f)
				}
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "access tokens live 30 days", Checks: []string{"TOK-15", "BCP-30"}, Target: editToken(func(m map[string]any) {
			m["expires_in"] = 30 * 24 * 3600
			if at, _ := m["access_token"].(string); at != "" {
				m["access_token"] = editClaims(at, func(c map[string]any) {
					if iat, ok := c["iat"].(float64); ok {
						c["exp"] = iat + 30*24*3600
					}
				})
			}
		})},
		{Name: "access token iss is not the AS", Checks: []string{"TOK-16"}, Target: editToken(func(m map[string]any) {
			if at, _ := m["access_token"].(string); at != "" {
				m["access_token"] = editClaims(at, func(c map[string]any) { c["iss"] = "https://issuer.conformance-defect.example" })
			}
		})},

		// ---- C.11 refresh
		{Name: "offline_access advertised but refused", Checks: []string{"RT-00"}, Target: chain(
			editJSON(pMetadata, func(m map[string]any) {
				ss, _ := m["scopes_supported"].([]any)
				m["scopes_supported"] = append(ss, "offline_access")
			}),
			onPath(pAuthorize, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.URL.Query().Get("scope"), "offline_access") {
					http.Error(w, "bad scope", http.StatusBadRequest)
					return
				}
				next.ServeHTTP(w, r)
			}))},
		{Name: "refresh tokens not rotated", Checks: []string{"RT-01", "BCP-12"}, Target: onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			f := readForm(r)
			rec := capture(next, r)
			if f.Get("grant_type") == "refresh_token" && rec.Code == http.StatusOK {
				m := rec.jsonBody()
				m["refresh_token"] = f.Get("refresh_token")
				rec.send(w, mustJSON(m))
				return
			}
			rec.send(w, nil)
		})},
		{Name: "rotated-out refresh tokens keep working", Checks: []string{"RT-02", "RT-03", "BCP-12"}, Target: onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			f := readForm(r)
			if f.Get("grant_type") == "refresh_token" {
				if latest := s.latestRefresh(f.Get("refresh_token")); latest != f.Get("refresh_token") {
					f.Set("refresh_token", latest)
					setForm(r, f)
				}
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "no refresh-token reuse detection", Checks: []string{"RT-03", "BCP-12"}, Target: onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			f := readForm(r)
			if f.Get("grant_type") == "refresh_token" && s.latestRefresh(f.Get("refresh_token")) != f.Get("refresh_token") {
				oauthError(w, http.StatusBadRequest, "invalid_grant")
				return
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "refresh tokens not bound to the client", Checks: []string{"RT-04", "BCP-13"}, Target: onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			f := readForm(r)
			if f.Get("grant_type") == "refresh_token" {
				s.mu.Lock()
				owner := s.issued[f.Get("refresh_token")]
				s.mu.Unlock()
				if owner != "" {
					f.Set("client_id", owner)
					setForm(r, f)
				}
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "refresh widens the scope", Checks: []string{"RT-05"}, Target: onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			f := readForm(r)
			asked := f.Get("scope")
			if f.Get("grant_type") != "refresh_token" || asked == "" {
				next.ServeHTTP(w, r)
				return
			}
			f.Del("scope")
			setForm(r, f)
			rec := capture(next, r)
			if rec.Code == http.StatusOK {
				m := rec.jsonBody()
				m["scope"] = asked
				rec.send(w, mustJSON(m))
				return
			}
			rec.send(w, nil)
		})},
		{Name: "narrowed refresh tokens keep the narrow scope", Checks: []string{"RT-06", "BCP-13"}, Target: narrowedKeepNarrow()},
		{Name: "forged refresh tokens accepted", Checks: []string{"RT-07"}, Target: tokenSucceeds(func(s *State, f url.Values) bool {
			return f.Get("grant_type") == "refresh_token" && !s.issuedBy(f.Get("refresh_token"))
		})},
		{Name: "refresh tokens never expire", Checks: []string{"RT-08", "BCP-15", "BCP-30"}, Target: tokenSucceeds(func(s *State, f url.Values) bool { return f.Get("grant_type") == "refresh_token" })},
		// Concurrent refreshes of one token are taken one at a time, and every one after the first
		// is answered with an older token response: two live families whatever the timing.
		{Name: "concurrent refreshes fork the family", Checks: []string{"RT-10"}, Target: onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			// A refresh of a token whose refresh is under way waits for it and is then refreshed
			// with the token that refresh returned: the client gets a second, different live pair.
			// (The later requests wait, so the fork does not depend on how the target answers
			// concurrent refreshes itself: strictly, or with a replay window.)
			f := readForm(r)
			rt := f.Get("refresh_token")
			if f.Get("grant_type") != "refresh_token" {
				next.ServeHTTP(w, r)
				return
			}
			unlock := s.lockKey("refresh " + f.Get("refresh_token"))
			defer unlock()
			s.mu.Lock()
			ch, busy := s.inflight[rt]
			_, used := s.rotated[rt]
			prev := s.prevToken
			if !busy && !used {
				ch = make(chan struct{})
				s.inflight[rt] = ch
			}
			s.mu.Unlock()
			switch {
			case busy:
				<-ch
				s.mu.Lock()
				successor := s.forked[rt]
				s.mu.Unlock()
				if successor != "" {
					f.Set("refresh_token", successor)
					setForm(r, f)
				}
				next.ServeHTTP(w, r)
				return
			case used && prev != nil:
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(prev)
				return
			case used:
				next.ServeHTTP(w, r)
				return
			}
			rec := capture(next, r)
			s.mu.Lock()
			if successor, _ := rec.jsonBody()["refresh_token"].(string); rec.Code == http.StatusOK && successor != "" {
				s.forked[rt] = successor
			}
			delete(s.inflight, rt)
			s.mu.Unlock()
			close(ch)
			rec.send(w, nil)
		})},
		// Strict reuse detection without a grace window (as the mock Auth0 without leeway, seen
		// through the TS SDK proxy): concurrent refreshes are taken one at a time, every one after
		// the first is reuse of a rotated-out token and revokes the grant, the winner's refresh
		// token included. RT-10 warns (clients that refresh in parallel lose the session) and says
		// so, instead of claiming that a valid refresh token was refused.
		{Name: "concurrent refreshes revoke the grant (strict reuse detection)", Checks: []string{"RT-10"},
			Messages: map[string][]string{"RT-10": {"revoked the grant", "!valid refresh token"}},
			Target: onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
				f := readForm(r)
				rt := f.Get("refresh_token")
				if f.Get("grant_type") != "refresh_token" {
					next.ServeHTTP(w, r)
					return
				}
				unlock := s.lockKey("refresh " + rt)
				defer unlock()
				s.mu.Lock()
				revoked, _ := s.extra["strict reuse"].(map[string]bool)
				if revoked == nil {
					revoked = map[string]bool{}
					s.extra["strict reuse"] = revoked
				}
				_, used := s.rotated[rt]
				if used {
					for x, i := s.rotated[rt], 0; x != "" && i < 100; x, i = s.rotated[x], i+1 {
						revoked[x] = true
					}
				}
				refuse := used || revoked[rt]
				s.mu.Unlock()
				if refuse {
					oauthError(w, http.StatusBadRequest, "invalid_grant")
					return
				}
				next.ServeHTTP(w, r)
			})},
		{Name: "refresh grant for clients not registered for it", Checks: []string{"RT-11"}, Target: onPath(pRegister, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			m := readJSON(r)
			gs, _ := m["grant_types"].([]any)
			if len(gs) == 1 && gs[0] == "authorization_code" {
				m["grant_types"] = []any{"authorization_code", "refresh_token"}
				setJSON(r, m)
				rec := capture(next, r)
				b := rec.jsonBody()
				if b != nil {
					b["grant_types"] = []any{"authorization_code"}
					rec.send(w, mustJSON(b))
					return
				}
				rec.send(w, nil)
				return
			}
			next.ServeHTTP(w, r)
		})},

		// ---- C.12 revocation
		{Name: "unknown tokens at /revoke get 400", Checks: []string{"REV-01"}, Target: onPath(pRevoke, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			f := readForm(r)
			if !s.issuedBy(f.Get("token")) {
				oauthError(w, http.StatusBadRequest, "invalid_request")
				return
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "revocation is a no-op", Checks: []string{"REV-02", "REV-03", "REV-04"}, Target: onPath(pRevoke, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
		})},
		{Name: "revoking a refresh token leaves the access tokens", Checks: []string{"REV-03"}, Target: onPath(pRevoke, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			f := readForm(r)
			if f.Get("token_type_hint") == "refresh_token" {
				w.WriteHeader(http.StatusOK)
				return
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "any client revokes any token", Checks: []string{"REV-05"}, Target: onPath(pRevoke, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			f := readForm(r)
			s.mu.Lock()
			owner := s.issued[f.Get("token")]
			s.mu.Unlock()
			if owner != "" {
				f.Set("client_id", owner)
				setForm(r, f)
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "upstream token not revoked", Checks: []string{"REV-06"}, Upstream: handle(func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/oauth/revoke" {
				w.WriteHeader(http.StatusOK)
				return
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "revocation auth failure is unauthorized_client", Checks: []string{"REV-07"}, Target: onPath(pRevoke, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			rec := capture(next, r)
			if m := rec.jsonBody(); m != nil && m["error"] == "invalid_client" {
				oauthError(w, http.StatusUnauthorized, "unauthorized_client")
				return
			}
			rec.send(w, nil)
		})},

		// ---- C.13 proxy
		// A static-client proxy without consent: PXY-01 fails, the consent rows have no page to
		// check and are inconclusive, graded by PXY-01 (issue 10: design detection).
		{Name: "no consent page (auto-approve)", Checks: []string{"PXY-01"}, Inconclusive: []string{"PXY-02", "PXY-11", "BCP-31", "PXY-03", "PXY-19"},
			Messages: map[string][]string{"PXY-02": {"PXY-01"}}, Target: autoApprove(func(s *State, r *http.Request) bool { return true })},
		{Name: "client_name rendered as HTML", Checks: []string{"PXY-02", "SEC-02", "BCP-31"}, Target: chain(
			editHeaders(pConsent, http.MethodGet, func(r *http.Request, h http.Header) { h.Del("Content-Security-Policy") }),
			editBody(pConsent, http.MethodGet, func(b []byte) []byte { return []byte(html.UnescapeString(string(b))) }))},
		{Name: "no double-submit CSRF cookie", Checks: []string{"PXY-03"}, Target: noCSRFCookie()},
		{Name: "consent page frameable", Checks: []string{"PXY-04", "BCP-22"}, Target: editHeaders(pConsent, "", func(r *http.Request, h http.Header) {
			h.Del("X-Frame-Options")
			h.Del("Content-Security-Policy")
		})},
		{Name: "consent cookies without HttpOnly/SameSite", Checks: []string{"PXY-05"}, Target: handle(func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != s.Paths.Consent {
				next.ServeHTTP(w, r)
				return
			}
			rec := capture(next, r)
			cs := rec.Header().Values("Set-Cookie")
			rec.Header().Del("Set-Cookie")
			for _, c := range cs {
				c = regexp.MustCompile(`(?i);\s*(HttpOnly|SameSite=\w+)`).ReplaceAllString(c, "")
				rec.Header().Add("Set-Cookie", c)
			}
			rec.send(w, nil)
		})},
		{Name: "callback not bound to the consenting browser", Checks: []string{"PXY-06"}, Inconclusive: []string{"PXY-07"},
			Messages: map[string][]string{"PXY-07": {"PXY-06"}}, Target: injectBinding(false)},
		{Name: "binding granted by viewing the consent page", Checks: []string{"PXY-07"}, Target: injectBinding(true)},
		{Name: "callback replayable", Checks: []string{"PXY-08"}, Target: onPath(pCallback, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			loc, seen := s.callbacks[r.URL.String()]
			s.mu.Unlock()
			if seen && loc != "" {
				http.Redirect(w, r, loc, http.StatusFound)
				return
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "consent remembered and silent cross-site", Checks: []string{"PXY-10"}, Target: autoApprove(func(s *State, r *http.Request) bool {
			ck, err := r.Cookie("defect_remembered")
			return err == nil && ck.Value != ""
		})},
		{Name: "deny sends no state", Checks: []string{"PXY-11"}, Target: editLocation(pConsent, http.MethodPost, func(r *http.Request, u *url.URL, q url.Values) {
			if q.Get("error") == "access_denied" {
				q.Del("state")
				q.Set("error", "server_error")
			}
		})},
		{Name: "upstream failure shown as an HTML 500", Checks: []string{"PXY-12"}, Target: onPath(pCallback, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			rec := capture(next, r)
			if strings.Contains(rec.Header().Get("Location"), "error=") {
				http.Error(w, "upstream exchange failed: dial tcp 127.0.0.1:1: connection refused", http.StatusInternalServerError)
				return
			}
			rec.send(w, nil)
		})},
		{Name: "upstream JWE passed through", Checks: []string{"PXY-13"}, Target: editToken(func(m map[string]any) {
			m["access_token"] = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIiwiaXNzIjoiaHR0cHM6Ly91cHN0cmVhbS5leGFtcGxlLyJ9..aXY.Y2lwaGVydGV4dA.dGFn"
		})},
		{Name: "client resource forwarded upstream", Checks: []string{"PXY-15"}, Target: editLocation(pConsent, http.MethodPost, func(r *http.Request, u *url.URL, q url.Values) {
			if q.Has("state") && !q.Has("resource") {
				q.Set("resource", "http://"+r.Host+"/mcp")
			}
		})},
		{Name: "upstream leg without PKCE", Checks: []string{"PXY-16"}, Target: editLocation(pConsent, http.MethodPost, func(r *http.Request, u *url.URL, q url.Values) {
			q.Del("code_challenge")
			q.Del("code_challenge_method")
		})},
		// PXY-18's defect must not fail PXY-07 (issue 10: a second browser's render invalidating
		// the first form is not a binding-cookie defect).
		{Name: "prefetch invalidates the consent form", Checks: []string{"PXY-18"}, Pass: []string{"PXY-07"}, Target: prefetchBreaks()},
		{Name: "consent page cacheable", Checks: []string{"PXY-19"}, Target: editHeaders(pConsent, "", func(r *http.Request, h http.Header) { h.Del("Cache-Control") })},
		{Name: "tokens refused after the upstream login (JWE upstream token)", Checks: []string{"PXY-20"}, Target: onPath(pMCP, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			if bearerToken(r) != "" {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})},

		// ---- C.14 transport
		{Name: "tokens in the redirect URL", Checks: []string{"SEC-04"}, Target: editLocation(pCallback, "", func(r *http.Request, u *url.URL, q url.Values) {
			if q.Has("code") {
				q.Set("access_token", "leaked")
			}
		})},

		// ---- C.15 clients
		{Name: "discovery documents disagree", Checks: []string{"CLI-02"}, Target: handle(func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == s.Paths.Metadata {
				http.NotFound(w, r)
				return
			}
			if r.URL.Path == "/.well-known/openid-configuration" {
				writeJSON(w, http.StatusOK, map[string]any{"issuer": "https://issuer.conformance-defect.example"})
				return
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "loopback port must match", Checks: []string{"CLI-07", "BCP-04"}, Pass: []string{"AZ-03"},
			Messages: map[string][]string{"AZ-03": {"BCP-04"}}, Target: loopbackPortFixed()},
		{Name: "claude.ai redirect URIs refused", Checks: []string{"CLI-08"}, Target: onPath(pAuthorize, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Query().Get("redirect_uri"), "claude.") {
				http.Error(w, "bad redirect", http.StatusBadRequest)
				return
			}
			next.ServeHTTP(w, r)
		})},
		{Name: "scope claudeai breaks authorization", Checks: []string{"CLI-11"}, Target: onPath(pAuthorize, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("scope") == "claudeai" {
				http.Error(w, "invalid scope", http.StatusBadRequest)
				return
			}
			next.ServeHTTP(w, r)
		})},

		// ---- D
		{Name: "empty state echoed", Checks: []string{"BCP-27"}, Target: editLocation(pAuthorize, "", func(r *http.Request, u *url.URL, q url.Values) {
			if !q.Has("state") && r.URL.Query().Has("state") {
				q["state"] = []string{""}
			}
		})},
		{Name: "client chooses its client_id", Checks: []string{"BCP-29"}, Target: fakeRegistration(func(m map[string]any) bool {
			_, ok := m["client_id"]
			return ok
		}, nil)},
	}
	all = append(all, verdictDefects()...)
	return append(all, peerDefects()...)
}

// claimsOf decodes a JWT's claims (nil for anything else).
func claimsOf(tok string) map[string]any {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil
	}
	var c map[string]any
	b, err := decodeSeg(parts[1])
	if err != nil || jsonUnmarshal(b, &c) != nil {
		return nil
	}
	return c
}

func (s *State) clientOfCode(code string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.codeClient[code]; ok {
		return c.client
	}
	if c := s.codes[code]; c != nil {
		return c.clientID
	}
	return ""
}

// latestRefresh follows the rotation chain to the current refresh token.
func (s *State) latestRefresh(rt string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < 100; i++ {
		n, ok := s.rotated[rt]
		if !ok {
			return rt
		}
		rt = n
	}
	return rt
}
