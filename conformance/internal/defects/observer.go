package defects

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/consentform"
)

// Observe records what the server does (it never changes anything). Put it between the defect and
// the server: it sees the server's real answers.
func Observe(next http.Handler, s *State) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := s.Paths
		switch {
		case r.URL.Path == p.Token && r.Method == http.MethodPost:
			form := readForm(r)
			rec := capture(next, r)
			s.observeToken(form, rec)
			rec.send(w, nil)
		case r.URL.Path == p.Consent && r.Method == http.MethodGet:
			rec := capture(next, r)
			s.observeConsentPage(r, rec)
			rec.send(w, nil)
		case r.URL.Path == p.Consent && r.Method == http.MethodPost:
			form := readForm(r)
			rec := capture(next, r)
			s.observeApproval(form, rec)
			rec.send(w, nil)
		case r.URL.Path == p.Authorize:
			q := r.URL.Query()
			if st := q.Get("state"); st != "" {
				s.mu.Lock()
				s.stateClient[st] = clientRef{client: q.Get("client_id"), redirectURI: q.Get("redirect_uri"), scope: q.Get("scope")}
				s.mu.Unlock()
			}
			next.ServeHTTP(w, r)
		case r.URL.Path == p.Callback:
			rec := capture(next, r)
			s.mu.Lock()
			s.callbacks[r.URL.String()] = rec.Header().Get("Location")
			if u, err := url.Parse(rec.Header().Get("Location")); err == nil && u.Query().Get("code") != "" {
				if ref, ok := s.stateClient[u.Query().Get("state")]; ok {
					s.codeClient[u.Query().Get("code")] = ref
				}
			}
			s.mu.Unlock()
			rec.send(w, nil)
		case r.URL.Path == p.Register && r.Method == http.MethodPost:
			rec := capture(next, r)
			if m := rec.jsonBody(); m != nil {
				if id, _ := m["client_id"].(string); id != "" {
					s.mu.Lock()
					s.registered[id] = m
					s.mu.Unlock()
				}
			}
			rec.send(w, nil)
		case r.URL.Path == p.MCP:
			rec := capture(next, r)
			if sid := rec.Header().Get("Mcp-Session-Id"); sid != "" {
				s.mu.Lock()
				s.sessions[sid] = bearerToken(r)
				s.mu.Unlock()
			}
			rec.send(w, nil)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func bearerToken(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

func (s *State) observeToken(form url.Values, rec *recorder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec.Code == http.StatusOK {
		s.prevToken, s.lastToken = s.lastToken, append([]byte(nil), rec.Body.Bytes()...)
	}
	m := rec.jsonBody()
	at, _ := m["access_token"].(string)
	rt, _ := m["refresh_token"].(string)
	client := form.Get("client_id")
	switch form.Get("grant_type") {
	case "authorization_code":
		code := form.Get("code")
		if _, seen := s.codes[code]; !seen && code != "" {
			s.codes[code] = &codeRec{clientID: client, redirectURI: form.Get("redirect_uri"), verifier: form.Get("code_verifier"),
				resp: append([]byte(nil), rec.Body.Bytes()...), status: rec.Code}
		}
	case "refresh_token":
		old := form.Get("refresh_token")
		if client == "" {
			client = s.issued[old]
		}
		if rec.Code == http.StatusOK && rt != "" && rt != old {
			s.rotated[old] = rt
			if sc := form.Get("scope"); sc != "" {
				s.narrowed[rt] = sc
			}
		}
	}
	if rec.Code == http.StatusOK {
		if at != "" {
			s.issued[at] = client
		}
		if rt != "" {
			s.issued[rt] = client
		}
	}
}

// txnOf finds the consent transaction field of a form.
func txnOf(v url.Values) (name, value string) {
	for k, vs := range v {
		lk := strings.ToLower(k)
		if (strings.Contains(lk, "txn") || strings.Contains(lk, "transaction")) && len(vs) > 0 {
			return k, vs[0]
		}
	}
	return "", ""
}

// csrfOf finds the CSRF field of a form.
func csrfOf(v url.Values) (name, value string) {
	for k, vs := range v {
		lk := strings.ToLower(k)
		if (strings.Contains(lk, "csrf") || strings.Contains(lk, "xsrf")) && len(vs) > 0 {
			return k, vs[0]
		}
	}
	return "", ""
}

func (s *State) observeConsentPage(r *http.Request, rec *recorder) {
	f, err := consentform.Parse("http://x"+r.URL.RequestURI(), rec.Body.Bytes())
	if err != nil {
		return
	}
	_, txn := txnOf(f.Fields)
	_, csrf := csrfOf(f.Fields)
	resp := http.Response{Header: rec.Header()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if txn != "" {
		s.consentCookies[txn] = append(s.consentCookies[txn], resp.Cookies()...)
		if csrf != "" {
			s.csrfLatest[txn] = csrf
		}
	}
}

func (s *State) observeApproval(form url.Values, rec *recorder) {
	_, txn := txnOf(form)
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil || loc.Query().Get("state") == "" {
		return
	}
	st := loc.Query().Get("state")
	resp := http.Response{Header: rec.Header()}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bindings[st] = resp.Cookies()
	s.stateTxn[st] = txn
}
