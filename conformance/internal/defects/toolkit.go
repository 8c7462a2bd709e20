// Package defects makes a correct MCP authorization server wrong in one precise way at a time, as
// an HTTP middleware around it (and, for a few upstream-side defects, around the mock Auth0), so
// the conformance suite's self-test can prove each check fails against the defect it exists for.
//
// A defect either rewrites what the server answers (drops a header, adds a parameter, changes a
// status) or makes the server accept what it refused, by answering from what it saw earlier (the
// last good token response, the cookie a browser should have sent). An always-on observer records
// codes, tokens, consent cookies and upstream states so defects can do that.
package defects

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
)

// Paths are the target's endpoint paths.
type Paths struct {
	Authorize, Token, Register, Revoke, Consent, Callback, MCP, PRM, Metadata string
}

// State is what the observer saw; defects read and extend it.
type State struct {
	Paths Paths
	// Upstream is the upstream's issuer URL (the mock Auth0, through its wrapper), for defects
	// that talk to it themselves.
	Upstream string

	mu sync.Mutex
	// lastToken is the body of the latest successful token response.
	lastToken []byte
	// prevToken is the one before it.
	prevToken []byte
	// codes: code → what its first redemption looked like.
	codes map[string]*codeRec
	// issued: access or refresh token → client_id.
	issued map[string]string
	// rotated: refresh tokens that were rotated out → the refresh token that replaced them.
	rotated map[string]string
	// inflight: refresh tokens whose refresh is under way → closed when it has been answered;
	// forked: such a token → the refresh token its first refresh returned.
	inflight map[string]chan struct{}
	forked   map[string]string
	// narrowed: refresh tokens issued by a refresh that narrowed the scope → that narrow scope.
	narrowed map[string]string
	// consentCookies: cookies set with a consent page, by transaction → cookies.
	consentCookies map[string][]*http.Cookie
	// bindings: upstream state → cookies set when consent was approved.
	bindings map[string][]*http.Cookie
	// stateTxn: upstream state → consent transaction.
	stateTxn map[string]string
	// callbacks: callback URL → the response Location it produced.
	callbacks map[string]string
	// seenClients: client_id → scopes asked so far (for step-up defects).
	seenClients map[string]string
	// registered: client_id → registration response.
	registered map[string]map[string]any
	// csrfLatest: consent transaction → the latest CSRF value rendered.
	csrfLatest map[string]string
	// remembered: client IDs "remembered" by a defect.
	remembered map[string]bool
	// sessions: MCP session ID → the token that created it.
	sessions map[string]string
	// sessionSeq numbers session IDs for the sequential-IDs defect.
	sessionSeq int
	// firstUse: tokens already presented to the MCP endpoint.
	firstUse map[string]bool
	// pkce: code → the verifier the wrapper substituted (the "skip PKCE" defect).
	pkce map[string]string
	// pkcePending: client state → wrapper verifier, until the code is known.
	pkcePending map[string]string
	// stateClient: client state at /authorize → the client; codeClient: code → that client.
	stateClient map[string]clientRef
	codeClient  map[string]clientRef
	// extra is per-defect state (keyed by the defect's own name).
	extra map[string]any
}

// own returns the defect-private state stored under key, creating it with mk on first use.
func own[V any](s *State, key string, mk func() V) V {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.extra[key].(V); ok {
		return v
	}
	v := mk()
	s.extra[key] = v
	return v
}

type clientRef struct{ client, redirectURI, scope string }

type codeRec struct {
	clientID, redirectURI, verifier string
	resp                            []byte
	status                          int
}

// NewState returns an empty state.
func NewState(p Paths) *State {
	return &State{Paths: p, codes: map[string]*codeRec{}, issued: map[string]string{}, rotated: map[string]string{},
		narrowed: map[string]string{}, consentCookies: map[string][]*http.Cookie{}, bindings: map[string][]*http.Cookie{},
		stateTxn: map[string]string{}, callbacks: map[string]string{}, seenClients: map[string]string{},
		registered: map[string]map[string]any{}, csrfLatest: map[string]string{}, remembered: map[string]bool{},
		sessions: map[string]string{}, firstUse: map[string]bool{}, pkce: map[string]string{}, pkcePending: map[string]string{},
		stateClient: map[string]clientRef{}, codeClient: map[string]clientRef{}, extra: map[string]any{}, inflight: map[string]chan struct{}{}, forked: map[string]string{}}
}

// Reset forgets everything (between defects).
func (s *State) Reset() {
	up := s.Upstream
	*s = *NewState(s.Paths)
	s.Upstream = up
}

// recorder captures a response so it can be inspected and rewritten before it is sent.
type recorder struct {
	*httptest.ResponseRecorder
}

func capture(next http.Handler, r *http.Request) *recorder {
	rec := &recorder{httptest.NewRecorder()}
	next.ServeHTTP(rec, r)
	return rec
}

// send writes a captured response, with its body replaced when body is not nil.
func (rec *recorder) send(w http.ResponseWriter, body []byte) {
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	b := rec.Body.Bytes()
	if body != nil {
		b = body
		w.Header().Del("Content-Length")
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(b)
}

// readForm reads a form body and gives the request a fresh copy of it.
func readForm(r *http.Request) url.Values {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	v, _ := url.ParseQuery(string(b))
	return v
}

// setForm replaces the request's form body.
func setForm(r *http.Request, v url.Values) {
	b := v.Encode()
	r.Body = io.NopCloser(strings.NewReader(b))
	r.ContentLength = int64(len(b))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
}

// readJSON reads a JSON object body and gives the request a fresh copy.
func readJSON(r *http.Request) map[string]any {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// setJSON replaces the request's JSON body.
func setJSON(r *http.Request, m map[string]any) {
	b, _ := json.Marshal(m)
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": "defect"})
}

// fakeMCPOK answers an MCP request as if it were accepted.
func fakeMCPOK(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, map[string]any{"jsonrpc": "2.0", "id": 1, "result": map[string]any{
		"protocolVersion": "2025-11-25", "capabilities": map[string]any{}, "serverInfo": map[string]any{"name": "defect", "version": "0"}}})
}

// fakeConsentPage answers an authorization request as if it were accepted (a 200 page).
func fakeConsentPage(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, `<!doctype html><html><body><p>defect: accepted</p></body></html>`)
}

// replayGoodToken answers a token request with the latest successful token response (or, before
// any, with a made-up one: the checks that meet it only look at the status).
func (s *State) replayGoodToken(w http.ResponseWriter) bool {
	s.mu.Lock()
	b := s.lastToken
	s.mu.Unlock()
	if b == nil {
		b = mustJSON(map[string]any{"access_token": "defect-access-token", "token_type": "Bearer", "expires_in": 3600,
			"refresh_token": "defect-refresh-token"})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
	return true
}

// rewriteLocation edits the query of a captured redirect.
func (rec *recorder) rewriteLocation(mod func(u *url.URL, q url.Values)) {
	loc := rec.Header().Get("Location")
	if loc == "" {
		return
	}
	u, err := url.Parse(loc)
	if err != nil {
		return
	}
	q := u.Query()
	mod(u, q)
	u.RawQuery = q.Encode()
	rec.Header().Set("Location", u.String())
}

// jsonBody decodes a captured JSON response.
func (rec *recorder) jsonBody() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	return m
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// lockKey serializes the requests that share key (a defect that must not depend on timing) and
// returns the unlock function.
func (s *State) lockKey(key string) func() {
	locks := own(s, "key locks", func() *keyLocks { return &keyLocks{m: map[string]*sync.Mutex{}} })
	locks.mu.Lock()
	l := locks.m[key]
	if l == nil {
		l = &sync.Mutex{}
		locks.m[key] = l
	}
	locks.mu.Unlock()
	l.Lock()
	return l.Unlock
}

type keyLocks struct {
	mu sync.Mutex
	m  map[string]*sync.Mutex
}
