package tenant

import (
	"errors"
	"time"
)

// AuthRequest is a validated /authorize request waiting for login and consent.
type AuthRequest struct {
	ClientID            string
	RedirectURI         string
	RedirectURISent     bool   // redirect_uri was in the request, so /oauth/token must repeat it
	ResponseMode        string // query or form_post
	State               string
	HasState            bool
	Scope               []string // granted scopes (already filtered)
	Audience            string   // "" = no API (opaque /userinfo token)
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	Prompt              string
}

// LoginTxn is the `state` of the login page.
type LoginTxn struct {
	State   string
	Request AuthRequest
	Expires time.Time
	// Sub is set once the user has authenticated (between login and consent).
	Sub      string
	AuthTime time.Time
}

// Session is the tenant SSO session (the "auth0" cookie).
type Session struct {
	ID       string
	Sub      string
	AuthTime time.Time
	Expires  time.Time
}

// Code is an authorization code.
type Code struct {
	Code     string
	Request  AuthRequest
	Sub      string
	AuthTime time.Time
	SID      string
	Expires  time.Time
}

// Family is one refresh-token grant: every token obtained by rotating the first one.
type Family struct {
	ID       string
	ClientID string
	Sub      string
	Audience string
	Scope    []string
	SID      string
	Created  time.Time
	Revoked  bool
	Reason   string
}

// Refresh is one refresh token of a family.
type Refresh struct {
	FamilyID   string
	Issued     time.Time
	LastUsed   time.Time
	RotatedAt  time.Time // zero until used with rotation
	Revoked    bool
	NonExpires bool
}

// NewLogin stores a login transaction and returns its state.
func (t *Tenant) NewLogin(req AuthRequest) *LoginTxn {
	now := t.clock.Now()
	tx := &LoginTxn{State: RandomToken(24), Request: req, Expires: now.Add(t.lifetimes.LoginTransaction.D(15 * time.Minute))}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gcLocked(now)
	t.logins[tx.State] = tx
	return tx
}

// Login returns a live login transaction.
func (t *Tenant) Login(state string) (LoginTxn, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tx, ok := t.logins[state]
	if !ok || !t.clock.Now().Before(tx.Expires) {
		return LoginTxn{}, false
	}
	return *tx, true
}

// MarkAuthenticated records the user who logged in for a login transaction.
func (t *Tenant) MarkAuthenticated(state, sub string, at time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	tx, ok := t.logins[state]
	if !ok || !t.clock.Now().Before(tx.Expires) {
		return false
	}
	tx.Sub, tx.AuthTime = sub, at
	return true
}

// TakeLogin consumes a login transaction (single use).
func (t *Tenant) TakeLogin(state string) (LoginTxn, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tx, ok := t.logins[state]
	if !ok {
		return LoginTxn{}, false
	}
	delete(t.logins, state)
	if !t.clock.Now().Before(tx.Expires) {
		return LoginTxn{}, false
	}
	return *tx, true
}

// NewSession starts an SSO session.
func (t *Tenant) NewSession(sub string) Session {
	now := t.clock.Now()
	s := &Session{ID: RandomToken(24), Sub: sub, AuthTime: now, Expires: now.Add(t.lifetimes.Session.D(72 * time.Hour))}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sessions[s.ID] = s
	return *s
}

// Session returns a live session whose user still exists.
func (t *Tenant) Session(id string) (Session, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.sessions[id]
	if !ok || !t.clock.Now().Before(s.Expires) {
		return Session{}, false
	}
	if u, ok := t.users[s.Sub]; !ok || u.Blocked {
		return Session{}, false
	}
	return *s, true
}

// EndSession deletes a session.
func (t *Tenant) EndSession(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.sessions, id)
}

// HasConsent reports whether the user consented to a third-party client for an audience and scopes.
func (t *Tenant) HasConsent(sub, clientID, audience string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.consents[sub+"|"+clientID+"|"+audience]
	return ok
}

// GrantConsent remembers a consent.
func (t *Tenant) GrantConsent(sub, clientID, audience string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.consents[sub+"|"+clientID+"|"+audience] = t.clock.Now()
}

// NewCode issues an authorization code.
func (t *Tenant) NewCode(req AuthRequest, sub string, authTime time.Time, sid string) string {
	now := t.clock.Now()
	c := &Code{Code: RandomToken(24), Request: req, Sub: sub, AuthTime: authTime, SID: sid,
		Expires: now.Add(t.lifetimes.AuthorizationCode.D(10 * time.Minute))}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gcLocked(now)
	t.codes[c.Code] = c
	return c.Code
}

// ErrCodeInvalid is returned for unknown, used or expired codes.
var ErrCodeInvalid = errors.New("invalid authorization code")

// RedeemCode consumes a code atomically: of concurrent redemptions exactly one gets it.
func (t *Tenant) RedeemCode(code string) (Code, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.codes[code]
	if !ok {
		return Code{}, ErrCodeInvalid
	}
	delete(t.codes, code)
	if !t.clock.Now().Before(c.Expires) {
		return Code{}, ErrCodeInvalid
	}
	return *c, nil
}

// NewFamily starts a refresh-token family and returns its first token.
func (t *Tenant) NewFamily(clientID, sub, audience string, scope []string, sid string) string {
	now := t.clock.Now()
	f := &Family{ID: RandomToken(12), ClientID: clientID, Sub: sub, Audience: audience, Scope: scope, SID: sid, Created: now}
	tok := refreshPrefix + RandomToken(48)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.families[f.ID] = f
	t.refresh[hashToken(tok)] = &Refresh{FamilyID: f.ID, Issued: now, LastUsed: now}
	return tok
}

const refreshPrefix = "v1.M"

// RefreshResult is what a refresh grant yields.
type RefreshResult struct {
	Family Family
	// Token is the new refresh token ("" for non-rotating clients: keep the old one).
	Token string
}

// Refresh errors.
var (
	ErrRefreshInvalid = errors.New("unknown or invalid refresh token")
	ErrRefreshReused  = errors.New("refresh token reuse detected: family revoked")
)

// RefreshPolicy is the client's refresh-token policy, in durations.
type RefreshPolicy struct {
	Rotating     bool
	Leeway       time.Duration
	Absolute     time.Duration // 0 = infinite
	Idle         time.Duration // 0 = infinite
	NonExpiring  bool
	ExpectClient string
}

// UseRefresh validates and (for rotating clients) rotates a refresh token. Presenting a token that was
// already rotated outside the leeway revokes the whole family (Auth0's reuse detection).
func (t *Tenant) UseRefresh(tok string, p RefreshPolicy) (RefreshResult, error) {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.refresh[hashToken(tok)]
	if !ok || r.Revoked {
		return RefreshResult{}, ErrRefreshInvalid
	}
	f, ok := t.families[r.FamilyID]
	if !ok || f.Revoked {
		return RefreshResult{}, ErrRefreshInvalid
	}
	if f.ClientID != p.ExpectClient {
		return RefreshResult{}, ErrRefreshInvalid
	}
	if _, ok := t.users[f.Sub]; !ok && f.Sub != "" {
		return RefreshResult{}, ErrRefreshInvalid
	}
	if !p.NonExpiring {
		if p.Absolute > 0 && !now.Before(f.Created.Add(p.Absolute)) {
			return RefreshResult{}, ErrRefreshInvalid
		}
		if p.Idle > 0 && !now.Before(r.LastUsed.Add(p.Idle)) {
			return RefreshResult{}, ErrRefreshInvalid
		}
	}
	if !r.RotatedAt.IsZero() {
		if p.Leeway <= 0 || now.After(r.RotatedAt.Add(p.Leeway)) {
			f.Revoked, f.Reason = true, "reuse"
			return RefreshResult{}, ErrRefreshReused
		}
	}
	res := RefreshResult{Family: cloneFamily(f)}
	if !p.Rotating {
		r.LastUsed = now
		return res, nil
	}
	if r.RotatedAt.IsZero() {
		r.RotatedAt = now
	}
	r.LastUsed = now
	nt := refreshPrefix + RandomToken(48)
	t.refresh[hashToken(nt)] = &Refresh{FamilyID: f.ID, Issued: now, LastUsed: now}
	res.Token = nt
	return res, nil
}

func cloneFamily(f *Family) Family {
	cp := *f
	cp.Scope = append([]string(nil), f.Scope...)
	return cp
}

// PeekRefresh returns the family of a live refresh token without using it.
func (t *Tenant) PeekRefresh(tok string) (Family, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.refresh[hashToken(tok)]
	if !ok || r.Revoked {
		return Family{}, false
	}
	f, ok := t.families[r.FamilyID]
	if !ok || f.Revoked {
		return Family{}, false
	}
	return cloneFamily(f), true
}

// RevokeRefresh revokes the family of a refresh token if it belongs to clientID. It reports whether a
// family was revoked; unknown tokens and other clients' tokens are ignored (RFC 7009 §2.2).
func (t *Tenant) RevokeRefresh(tok, clientID string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.refresh[hashToken(tok)]
	if !ok {
		return false
	}
	f, ok := t.families[r.FamilyID]
	if !ok || f.ClientID != clientID {
		return false
	}
	f.Revoked, f.Reason = true, "revoked"
	return true
}

// RevokeUserGrants revokes every refresh-token family, consent and session of a user.
// It returns the number of families revoked.
func (t *Tenant) RevokeUserGrants(sub string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, f := range t.families {
		if f.Sub == sub && !f.Revoked {
			f.Revoked, f.Reason, n = true, "user grants revoked", n+1
		}
	}
	for k := range t.consents {
		if len(k) > len(sub) && k[:len(sub)+1] == sub+"|" {
			delete(t.consents, k)
		}
	}
	for id, s := range t.sessions {
		if s.Sub == sub {
			delete(t.sessions, id)
		}
	}
	return n
}

// gcLocked drops expired short-lived state. Called with t.mu held.
func (t *Tenant) gcLocked(now time.Time) {
	for k, v := range t.logins {
		if !now.Before(v.Expires) {
			delete(t.logins, k)
		}
	}
	for k, v := range t.codes {
		if !now.Before(v.Expires) {
			delete(t.codes, k)
		}
	}
	for k, v := range t.sessions {
		if !now.Before(v.Expires) {
			delete(t.sessions, k)
		}
	}
}
