package defects

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/consentform"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
)

func decodeSeg(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
func s256(v string) string {
	h := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(h[:])
}
func newVerifier() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// skipPKCE replaces every client's PKCE challenge with the wrapper's own and supplies the matching
// verifier at the token endpoint: from the outside, the server no longer checks PKCE at all.
func skipPKCE() Wrap {
	return handle(func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		p := s.Paths
		switch {
		case r.URL.Path == p.Authorize:
			q := r.URL.Query()
			v := newVerifier()
			q.Set("code_challenge", s256(v))
			q.Set("code_challenge_method", "S256")
			r.URL.RawQuery = q.Encode()
			s.mu.Lock()
			s.pkcePending[q.Get("state")] = v
			s.mu.Unlock()
			next.ServeHTTP(w, r)
		case r.URL.Path == p.Callback:
			rec := capture(next, r)
			if u, err := url.Parse(rec.Header().Get("Location")); err == nil && u.Query().Get("code") != "" {
				s.mu.Lock()
				if v, ok := s.pkcePending[u.Query().Get("state")]; ok {
					s.pkce[u.Query().Get("code")] = v
				}
				s.mu.Unlock()
			}
			rec.send(w, nil)
		case r.URL.Path == p.Token && r.Method == http.MethodPost:
			f := readForm(r)
			s.mu.Lock()
			v, ok := s.pkce[f.Get("code")]
			s.mu.Unlock()
			if ok {
				f.Set("code_verifier", v)
				setForm(r, f)
			}
			next.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// forwardClientPKCE sends the client's own code_challenge to the upstream instead of the proxy's.
func forwardClientPKCE() Wrap {
	var last string
	return handle(func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		p := s.Paths
		if r.URL.Path == p.Authorize {
			s.mu.Lock()
			last = r.URL.Query().Get("code_challenge")
			s.mu.Unlock()
		}
		if r.URL.Path == p.Consent && r.Method == http.MethodPost {
			rec := capture(next, r)
			rec.rewriteLocation(func(u *url.URL, q url.Values) {
				if q.Has("code_challenge") {
					s.mu.Lock()
					q.Set("code_challenge", last)
					s.mu.Unlock()
				}
			})
			rec.send(w, nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// onReplay runs f for a code exchange whose code the server already saw redeemed, and passes
// every other request through.
func onReplay(f func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request, form url.Values, c *codeRec) bool) Wrap {
	return onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		form := readForm(r)
		s.mu.Lock()
		c := s.codes[form.Get("code")]
		s.mu.Unlock()
		if form.Get("grant_type") == "authorization_code" && c != nil && f(s, next, w, r, form, c) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// reusableCodes answers a second redemption of a code with the first answer.
func reusableCodes() Wrap {
	return onReplay(func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request, form url.Values, c *codeRec) bool {
		if c.status != http.StatusOK {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(c.resp)
		return true
	})
}

// replayNotForwarded refuses a replayed code itself, so the server never learns of the replay
// (and revokes nothing).
func replayNotForwarded() Wrap {
	return onReplay(func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request, form url.Values, c *codeRec) bool {
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return true
	})
}

// invalidReplayRevokes turns a replay with a wrong verifier into a valid replay (which makes the
// server revoke the grant), then refuses it.
func invalidReplayRevokes() Wrap {
	return onReplay(func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request, form url.Values, c *codeRec) bool {
		if form.Get("code_verifier") == c.verifier {
			return false
		}
		form.Set("code_verifier", c.verifier)
		setForm(r, form)
		_ = capture(next, r)
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return true
	})
}

// codesAnyClient redeems a code for whichever client asks (by swapping in the client it was issued to).
func codesAnyClient() Wrap {
	return onPath(pToken, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		f := readForm(r)
		s.mu.Lock()
		orig, ok := s.codeClient[f.Get("code")]
		s.mu.Unlock()
		if f.Get("grant_type") == "authorization_code" && ok && orig.client != f.Get("client_id") {
			f.Set("client_id", orig.client)
			f.Set("redirect_uri", orig.redirectURI)
			setForm(r, f)
		}
		next.ServeHTTP(w, r)
	})
}

// autoApprove approves the consent page on the user's behalf when pred says so: the browser goes
// straight to the upstream. Every genuine approval also sets a "remembered" cookie.
func autoApprove(pred func(s *State, r *http.Request) bool) Wrap {
	return onPath(pConsent, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			rec := capture(next, r)
			if rec.Code/100 == 3 {
				http.SetCookie(rec, &http.Cookie{Name: "defect_remembered", Value: "1", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
			}
			rec.send(w, nil)
			return
		}
		if !pred(s, r) {
			next.ServeHTTP(w, r)
			return
		}
		page := capture(next, r)
		f, err := consentform.Parse("http://"+r.Host+r.URL.RequestURI(), page.Body.Bytes())
		if err != nil {
			page.send(w, nil)
			return
		}
		post, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, f.Action, strings.NewReader(f.Values(true).Encode()))
		post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		post.Host = r.Host
		for _, c := range r.Cookies() {
			post.AddCookie(c)
		}
		for _, c := range (&http.Response{Header: page.Header()}).Cookies() {
			post.AddCookie(c)
		}
		post.RequestURI = post.URL.RequestURI()
		res := capture(next, post)
		for _, c := range page.Header().Values("Set-Cookie") {
			w.Header().Add("Set-Cookie", c)
		}
		res.send(w, nil)
	})
}

// noCSRFCookie supplies the consent page's cookies to a consent POST that lacks them: the server's
// double-submit check no longer protects anything.
func noCSRFCookie() Wrap {
	return onPath(pConsent, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		f := readForm(r)
		_, txn := txnOf(f)
		s.mu.Lock()
		cks := append([]*http.Cookie(nil), s.consentCookies[txn]...)
		s.mu.Unlock()
		have := map[string]bool{}
		for _, c := range r.Cookies() {
			have[c.Name] = true
		}
		for _, c := range cks {
			if !have[c.Name] {
				r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
			}
		}
		next.ServeHTTP(w, r)
	})
}

// injectBinding adds the browser-binding cookies recorded at approval to a callback that lacks
// them: always, or (viewOnly) only for a browser that viewed that transaction's consent page.
func injectBinding(viewOnly bool) Wrap {
	return onPath(pCallback, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		st := r.URL.Query().Get("state")
		s.mu.Lock()
		bind := append([]*http.Cookie(nil), s.bindings[st]...)
		viewed := s.consentCookies[s.stateTxn[st]]
		s.mu.Unlock()
		have := map[string]string{}
		for _, c := range r.Cookies() {
			have[c.Name] = c.Value
		}
		ok := !viewOnly
		if viewOnly {
			for _, c := range viewed {
				if have[c.Name] == c.Value {
					ok = true
				}
			}
		}
		if ok {
			for _, c := range bind {
				if _, present := have[c.Name]; !present && c.Value != "" {
					r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// prefetchBreaks accepts only the most recently rendered consent form of a transaction.
func prefetchBreaks() Wrap {
	return onPath(pConsent, http.MethodPost, func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		f := readForm(r)
		_, txn := txnOf(f)
		_, csrf := csrfOf(f)
		s.mu.Lock()
		latest := s.csrfLatest[txn]
		s.mu.Unlock()
		if latest != "" && csrf != latest {
			http.Error(w, "invalid or expired consent token", http.StatusBadRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackPortFixed refuses a loopback redirect URI whose port differs from the registered one.
func loopbackPortFixed() Wrap {
	return onPath(pAuthorize, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		s.mu.Lock()
		reg := s.registered[q.Get("client_id")]
		s.mu.Unlock()
		ru := q.Get("redirect_uri")
		if reg != nil && ru != "" {
			found := false
			for _, x := range toStrings(reg["redirect_uris"]) {
				found = found || x == ru
			}
			if !found {
				http.Error(w, "redirect_uri not registered", http.StatusBadRequest)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func toStrings(v any) []string {
	xs, _ := v.([]any)
	var out []string
	for _, x := range xs {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// cachedCIMDFailures keeps refusing a metadata-document client once it was refused.
func cachedCIMDFailures() Wrap {
	refused := map[string]bool{}
	return onPath(pAuthorize, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("client_id")
		if !strings.HasPrefix(id, "https://") {
			next.ServeHTTP(w, r)
			return
		}
		s.mu.Lock()
		bad := refused[id]
		s.mu.Unlock()
		if bad {
			http.Error(w, "unknown client (cached)", http.StatusBadRequest)
			return
		}
		rec := capture(next, r)
		if rec.Code >= 400 {
			s.mu.Lock()
			refused[id] = true
			s.mu.Unlock()
		}
		rec.send(w, nil)
	})
}

// hideRepeatedChallenges hands the server a fresh code_challenge whenever a client repeats one, so a
// server that refuses constant challenges (PKCE-08) no longer sees the repetition.
func hideRepeatedChallenges() Wrap {
	var mu sync.Mutex
	seen := map[string]bool{}
	return onPath(pAuthorize, "", func(s *State, next http.Handler, w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if c := q.Get("code_challenge"); c != "" {
			mu.Lock()
			repeated := seen[c]
			seen[c] = true
			mu.Unlock()
			if repeated {
				q.Set("code_challenge", oauthclient.S256(oauthclient.NewVerifier()))
				r.URL.RawQuery = q.Encode()
			}
		}
		next.ServeHTTP(w, r)
	})
}
