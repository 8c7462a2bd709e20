package defects

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	mconfig "github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
)

// peerDefects reproduce the wrong verdicts the suite gave against the npm peers (the MCP
// TypeScript SDK's pass-through ProxyOAuthServerProvider and fastmcp's OAuthProvider, see
// conformance/peers): each behaves as the peer did, and pins the true outcome.
func peerDefects() []Defect {
	return []Defect{
		// ---- A: a refusal of the wrong form fails only the row that owns the endpoint's error format
		{Name: "token errors turned into HTTP 500 server_error (an upstream's refusal relayed as a 500)",
			Why:    "peers A1–A8, A10: the SDK proxy answers every refused token request with 500 server_error; the rows whose refusal held must warn, TOK-10 and CLI-15 fail once",
			Checks: []string{"TOK-10", "CLI-15"},
			Pass:   []string{"TOK-04", "TOK-07", "PKCE-04", "PKCE-06", "RT-02", "RT-04", "RT-07", "REV-02", "BCP-08", "BCP-10", "BCP-12"},
			Messages: map[string][]string{"TOK-04": {"TOK-10", "!failed with"}, "PKCE-04": {"TOK-10"}, "RT-02": {"TOK-10"},
				"TOK-10": {"PKCE-04", "RT-07", "REV-02"}, "BCP-08": {"TOK-04"}},
			Target: onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
				rec := capture(next, r)
				if rec.Code >= 400 {
					writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error", "error_description": "Token exchange failed: 403"})
					return
				}
				rec.send(w, nil)
			})},
		{Name: "HTTP 500 for a wrong code_verifier only",
			Why:    "a 5xx that only another row sees (PKCE-04) must still fail the owner of the token endpoint's error format",
			Checks: []string{"TOK-10", "CLI-15"}, Pass: []string{"PKCE-04"},
			Messages: map[string][]string{"TOK-10": {"PKCE-04"}, "PKCE-04": {"TOK-10"}},
			Target: onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
				rec := capture(next, r)
				if d, _ := rec.jsonBody()["error_description"].(string); rec.Code == http.StatusBadRequest && strings.Contains(d, "does not match the code_challenge") {
					writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error", "error_description": "Token exchange failed: 403"})
					return
				}
				rec.send(w, nil)
			})},
		{Name: "registration errors turned into HTTP 500 server_error",
			Why:    "peers A9: refused redirect URIs answered with 500 \"Client registration failed: 400\"; DCR-04/05/06 must warn, DCR-03 fails",
			Checks: []string{"DCR-03"}, Pass: []string{"DCR-04", "DCR-05", "DCR-06", "BCP-05"},
			Messages: map[string][]string{"DCR-04": {"DCR-03"}, "DCR-03": {"DCR-05"}},
			Target: onPath(pRegister, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
				rec := capture(next, r)
				if rec.Code == http.StatusBadRequest {
					writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error", "error_description": "Client registration failed: 400"})
					return
				}
				rec.send(w, nil)
			})},
		{Name: "invalid authorization requests answered with HTTP 500",
			Why:    "a refused authorization request answered with a 5xx is AZ-12's failure (server_error is redirected), not a \"was accepted\" of the row",
			Checks: []string{"AZ-12"}, Pass: []string{"PKCE-01", "PKCE-02", "RES-03", "RES-04", "AZ-06", "AZ-02", "AZ-07"},
			Messages: map[string][]string{"RES-03": {"AZ-12", "!was accepted"}, "AZ-12": {"RES-03"}},
			Target: onPath(pAuthorize, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
				rec := capture(next, r)
				if rec.Code >= 400 || strings.Contains(rec.Header().Get("Location"), "error=") {
					http.Error(w, "internal error", http.StatusInternalServerError)
					return
				}
				rec.send(w, nil)
			})},

		// ---- B, C: the pass-through design
		{Name: "pass-through forwarding resource to an upstream that maps it to an API (Auth0's resource-parameter profile)",
			Why:  "peers C1–C3: the suite stopped at the proxy's 302 to the upstream and called it accepted; the upstream decides (a fragment redirect URI refused by its error page, a foreign resource refused with access_denied)",
			Pass: []string{"AZ-03", "RES-03", "RES-04", "PXY-09", "BCP-03", "BCP-06", "AZ-10"}, NotFail: []string{"PXY-12", "PXY-16", "PKCE-07", "PXY-13", "PXY-20"},
			Messages: map[string][]string{"RES-03": {"access_denied", "!was accepted"}, "RES-04": {"access_denied", "!was accepted"},
				"AZ-03": {"another port", "!accepted"}, "PXY-12": {"pass-through"}},
			Target: passThroughWith(passThroughOpts{forwardResource: true}), Upstream: resourceAsAudience()},
		{Name: "pass-through whose MCP endpoint accepts any token the upstream's /userinfo accepts",
			Why:    "peers B7: in a pass-through design the upstream's tokens for this resource are the client's; RS-05 fails for the token without audience only",
			Checks: []string{"RS-05"}, Messages: map[string][]string{"RS-05": {"without audience", "!for audience"}},
			Target: passThroughWith(passThroughOpts{acceptUpstreamTokens: true})},

		// ---- E: PXY-07 must not repeat PXY-06's failure
		{Name: "no cookies at all (the callback is bound to no browser)",
			Why:    "peers E1: a server that sets no cookie sets none before consent; the missing browser binding is PXY-06's failure, PXY-07 passes",
			Checks: []string{"PXY-06"}, Pass: []string{"PXY-07"}, Messages: map[string][]string{"PXY-07": {"!browser B"}},
			Target: cookieless()},

		// ---- F: --scope with offline_access, offline_access not advertised
		{Name: "refresh tokens only for offline_access, not advertised, which --scope asks for",
			Why:   "peers F1/F2: RT-05/RT-06 ignored --scope 'openid profile email offline_access' and found no refresh token",
			Scope: "mcp:read mcp:write offline_access", Pass: []string{"RT-01", "RT-02", "RT-04", "RT-05", "RT-06", "REV-02"},
			Target: refreshOnlyWithOfflineAccess(false)},
		{Name: "narrowed refresh tokens keep the narrow scope, with --scope asking for offline_access",
			Why:   "peers F2: RT-06 reaches its verdict with --scope",
			Scope: "mcp:read mcp:write offline_access", Checks: []string{"RT-06"}, Pass: []string{"RT-05"},
			Target: chain(refreshOnlyWithOfflineAccess(false), narrowedKeepNarrow())},

		// ---- G: ASM-09 with authorization errors shown as a page
		{Name: "authorization errors shown as a page (no error redirects)",
			Why:    "peers G1: ASM-09 gave up when its unsupported-response_type probe got an error page; the success response still shows whether iss is sent",
			Pass:   []string{"ASM-09"},
			Target: errorsAsPages()},
		{Name: "iss advertised but not sent, errors shown as a page", Checks: []string{"ASM-09"},
			Messages: map[string][]string{"ASM-09": {"success response"}},
			Target: chain(errorsAsPages(),
				editLocation(pConsent, "", func(r *http.Request, u *url.URL, q url.Values) { q.Del("iss") }),
				editLocation(pCallback, "", func(r *http.Request, u *url.URL, q url.Values) { q.Del("iss") }))},

		// ---- I: PXY-02 and scope descriptions
		{Name: "the consent page describes the scopes instead of naming them",
			Why:    "peers I1: the page shows \"Verify your identity\" for openid; a scope shown in words or by its usual description is shown",
			Pass:   []string{"PXY-02"},
			Target: editBody(pConsent, http.MethodGet, func(b []byte) []byte { return []byte(strings.ReplaceAll(string(b), "mcp:read", "Mcp Read")) })},
		{Name: "the consent page shows no scopes", Checks: []string{"PXY-02"}, Messages: map[string][]string{"PXY-02": {"none of the requested scopes"}},
			Target: editBody(pConsent, http.MethodGet, func(b []byte) []byte {
				return []byte(strings.NewReplacer("mcp:read", "", "mcp:write", "").Replace(string(b)))
			})},

		// ---- J2: a failed redemption voids the code
		{Name: "a failed redemption by another client voids the code",
			Why:    "peers J2: fastmcp burns a code on \"Client ID mismatch\"; its owner's redemption is then refused (a denial of service)",
			Checks: []string{"TOK-17"}, Pass: []string{"TOK-07"}, Messages: map[string][]string{"TOK-17": {"another client"}},
			Target: burnOnWrongClient()},
	}
}

// errorsAsPages answers authorization errors that the server redirects to the client (an
// unsupported response_type, a plain PKCE method, …) with an HTML error page instead.
func errorsAsPages() Wrap {
	return onPath(pAuthorize, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		rec := capture(next, r)
		if u, err := url.Parse(rec.Header().Get("Location")); err == nil && rec.Code/100 == 3 && u.Query().Get("error") != "" && u.Query().Get("error") != "access_denied" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte("<!doctype html><html><body><h1>" + u.Query().Get("error") + "</h1></body></html>"))
			return
		}
		rec.send(w, nil)
	})
}

// burnOnWrongClient voids a code when another client tries to redeem it: the owner's redemption
// is refused afterwards.
func burnOnWrongClient() Wrap {
	type burnt struct {
		mu    sync.Mutex
		codes map[string]bool
	}
	return onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		st := own(s, "burnt codes", func() *burnt { return &burnt{codes: map[string]bool{}} })
		f := readForm(r)
		code := f.Get("code")
		if f.Get("grant_type") != "authorization_code" || code == "" {
			next.ServeHTTP(w, r)
			return
		}
		s.mu.Lock()
		ref, known := s.codeClient[code]
		s.mu.Unlock()
		st.mu.Lock()
		if known && f.Get("client_id") != ref.client {
			st.codes[code] = true
		}
		burnt := st.codes[code]
		st.mu.Unlock()
		if burnt && f.Get("client_id") == ref.client {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "Authorization code already used"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cookieless keeps the server's consent cookies on the server side: the browser gets none (the
// consent page and the approval set no cookie), the approval and the callback are given the
// cookies of their transaction anyway — so the callback is bound to no browser.
func cookieless() Wrap {
	return handle(func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		p := s.Paths
		switch {
		case r.URL.Path == p.Consent && r.Method == http.MethodGet:
			rec := capture(next, r)
			rec.Header().Del("Set-Cookie")
			rec.send(w, nil)
		case r.URL.Path == p.Consent && r.Method == http.MethodPost:
			f := readForm(r)
			_, txn := txnOf(f)
			s.mu.Lock()
			cks := append([]*http.Cookie(nil), s.consentCookies[txn]...)
			s.mu.Unlock()
			for _, c := range cks {
				r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
			}
			rec := capture(next, r)
			rec.Header().Del("Set-Cookie")
			rec.send(w, nil)
		case r.URL.Path == p.Callback:
			s.mu.Lock()
			bind := append([]*http.Cookie(nil), s.bindings[r.URL.Query().Get("state")]...)
			s.mu.Unlock()
			for _, c := range bind {
				if c.Value != "" {
					r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
				}
			}
			rec := capture(next, r)
			rec.Header().Del("Set-Cookie")
			rec.send(w, nil)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// resourceAsAudience plays Auth0's resource-parameter compatibility profile at the upstream: a
// resource names an API. The MCP URL (an absolute loopback URL with the MCP path) is the
// upstream's API; any other resource names no API, so the upstream refuses it with access_denied
// "Service not found".
func resourceAsAudience() Wrap {
	return handle(func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		res := q.Get("resource")
		if r.URL.Path != "/authorize" || res == "" {
			next.ServeHTTP(w, r)
			return
		}
		aud := res
		if u, err := url.Parse(res); err == nil && u.Scheme == "http" && u.Fragment == "" && !strings.Contains(res, "#") && u.Path == s.Paths.MCP {
			if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() {
				aud = mconfig.DefaultAPIIdentifier
			}
		}
		q.Del("resource")
		q.Set("audience", aud)
		r2 := r.Clone(r.Context())
		r2.URL.RawQuery = q.Encode()
		r2.RequestURI = r2.URL.RequestURI()
		next.ServeHTTP(w, r2)
	})
}

// userinfoAccepts reports whether the upstream's /userinfo accepts a bearer token (the check a
// pass-through proxy's verifyAccessToken makes).
func (s *State) userinfoAccepts(r *http.Request, tok string) bool {
	resp, _, err := s.upstreamCall(r, http.MethodGet, "/userinfo", "", nil, http.Header{"Authorization": {"Bearer " + tok}})
	return err == nil && resp.StatusCode == http.StatusOK
}
