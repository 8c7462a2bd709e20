package defects

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// Wrap is a defect's middleware.
type Wrap func(s *State, next http.Handler) http.Handler

// chain applies wraps in order (the first is outermost).
func chain(ws ...Wrap) Wrap {
	return func(s *State, next http.Handler) http.Handler {
		for i := len(ws) - 1; i >= 0; i-- {
			next = ws[i](s, next)
		}
		return next
	}
}

// handle builds a Wrap from a function that may serve the request itself or call next.
func handle(f func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request)) Wrap {
	return func(s *State, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f(s, next, w, r) })
	}
}

// onPath runs f for requests to path (any method when method is ""), and passes the rest through.
func onPath(path func(Paths) string, method string, f func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request)) Wrap {
	return handle(func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path(s.Paths) && (method == "" || r.Method == method) {
			f(s, next, w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

var (
	pAuthorize = func(p Paths) string { return p.Authorize }
	pToken     = func(p Paths) string { return p.Token }
	pRegister  = func(p Paths) string { return p.Register }
	pRevoke    = func(p Paths) string { return p.Revoke }
	pConsent   = func(p Paths) string { return p.Consent }
	pCallback  = func(p Paths) string { return p.Callback }
	pMCP       = func(p Paths) string { return p.MCP }
	pPRM       = func(p Paths) string { return p.PRM }
	pMetadata  = func(p Paths) string { return p.Metadata }
)

// editJSON rewrites a JSON response on a path.
func editJSON(path func(Paths) string, mod func(m map[string]any)) Wrap {
	return onPath(path, http.MethodGet, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		rec := capture(next, r)
		m := rec.jsonBody()
		if m == nil {
			rec.send(w, nil)
			return
		}
		mod(m)
		rec.send(w, mustJSON(m))
	})
}

// editHeaders rewrites response headers on a path (method "" = any).
func editHeaders(path func(Paths) string, method string, mod func(r *http.Request, h http.Header)) Wrap {
	return onPath(path, method, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		rec := capture(next, r)
		mod(r, rec.Header())
		rec.send(w, nil)
	})
}

// editLocation rewrites the Location of redirects from a path.
func editLocation(path func(Paths) string, method string, mod func(r *http.Request, u *url.URL, q url.Values)) Wrap {
	return onPath(path, method, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		rec := capture(next, r)
		rec.rewriteLocation(func(u *url.URL, q url.Values) { mod(r, u, q) })
		rec.send(w, nil)
	})
}

// editBody rewrites a response body on a path.
func editBody(path func(Paths) string, method string, mod func(b []byte) []byte) Wrap {
	return onPath(path, method, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		rec := capture(next, r)
		rec.send(w, mod(rec.Body.Bytes()))
	})
}

// acceptAuthorize answers matching authorization requests as if accepted (a consent page), when
// the server refused them.
func acceptAuthorize(pred func(q url.Values, raw string) bool) Wrap {
	return onPath(pAuthorize, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		if !pred(r.URL.Query(), r.URL.RawQuery) {
			next.ServeHTTP(w, r)
			return
		}
		rec := capture(next, r)
		if rec.Code >= 400 || strings.Contains(rec.Header().Get("Location"), "error=") {
			fakeConsentPage(w)
			return
		}
		rec.send(w, nil)
	})
}

// tokenSucceeds makes refused token requests that match pred succeed (with the latest good
// token response).
func tokenSucceeds(pred func(s *State, form url.Values) bool) Wrap {
	return onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		form := readForm(r)
		if !pred(s, form) {
			next.ServeHTTP(w, r)
			return
		}
		rec := capture(next, r)
		if rec.Code != http.StatusOK && s.replayGoodToken(w) {
			return
		}
		rec.send(w, nil)
	})
}

// editToken rewrites successful token responses.
func editToken(mod func(m map[string]any)) Wrap {
	return onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		rec := capture(next, r)
		if rec.Code != http.StatusOK {
			rec.send(w, nil)
			return
		}
		m := rec.jsonBody()
		mod(m)
		rec.send(w, mustJSON(m))
	})
}

// editClaims rewrites claims of a JWT without re-signing (the suite only decodes them).
func editClaims(tok string, mod func(c map[string]any)) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return tok
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return tok
	}
	var c map[string]any
	if json.Unmarshal(b, &c) != nil {
		return tok
	}
	mod(c)
	nb, _ := json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(nb)
	return strings.Join(parts, ".")
}

// substituteToken replaces the bearer token of MCP requests matching pred with a valid one the
// server issued, so the server "accepts" them.
func substituteToken(pred func(s *State, r *http.Request, tok string) bool) Wrap {
	return onPath(pMCP, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		if pred(s, r, bearerToken(r)) {
			good := s.anyValidAccessToken()
			if good == "" {
				fakeMCPOK(w)
				return
			}
			r.Header.Set("Authorization", "Bearer "+good)
		}
		next.ServeHTTP(w, r)
	})
}

// anyValidAccessToken is the access token of the latest successful token response.
func (s *State) anyValidAccessToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m map[string]any
	_ = json.Unmarshal(s.lastToken, &m)
	at, _ := m["access_token"].(string)
	return at
}

// issuedBy reports whether the server issued tok.
func (s *State) issuedBy(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.issued[tok]
	return ok
}

// fakeRegistration answers matching registrations with 201 and the request echoed.
func fakeRegistration(pred func(m map[string]any) bool, mod func(m map[string]any)) Wrap {
	return onPath(pRegister, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		m := readJSON(r)
		if m == nil || !pred(m) {
			next.ServeHTTP(w, r)
			return
		}
		if _, ok := m["client_id"]; !ok {
			m["client_id"] = "defect-client-" + randID()
		}
		if mod != nil {
			mod(m)
		}
		writeJSON(w, http.StatusCreated, m)
	})
}

// redirectURIsContain reports whether a registration body lists a redirect URI matching f.
func redirectURIsContain(m map[string]any, f func(string) bool) bool {
	rs, _ := m["redirect_uris"].([]any)
	for _, r := range rs {
		if s, _ := r.(string); f(s) {
			return true
		}
	}
	return false
}

var idSeq int

func randID() string {
	idSeq++
	return strings.Repeat("x", 4) + string(rune('a'+idSeq%26)) + base64.RawURLEncoding.EncodeToString([]byte{byte(idSeq), byte(idSeq >> 8)})
}
