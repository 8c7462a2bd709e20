package oauthproxy

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/accesstoken"
	"github.com/cnpg-mcp/cnpg-mcp/server/store"
	"github.com/cnpg-mcp/cnpg-mcp/server/upstream"
)

// serveToken is the token endpoint (OAuth 2.1 §3.2): authorization_code and refresh_token grants for
// public clients.
//
//	TOK-01  POST + form only (405/400 otherwise)                          TestTOK01_MethodAndContentType
//	TOK-02, BCP-19  Cache-Control: no-store on success and errors          TestTOK02_NoStore
//	TOK-03  access_token, token_type Bearer, expires_in, scope, refresh_token   TestFullFlow…
//	TOK-04, BCP-08  code single-use, also under 10 concurrent redemptions   TestTOK04_CodeSingleUse
//	TOK-05, BCP-09  a second *valid* redemption revokes the grant (AT and RT die)   TestTOK05_CodeReplayRevokes
//	TOK-06  an invalid replay (wrong verifier) revokes nothing              TestTOK06_InvalidReplayDoesNotRevoke
//	TOK-07  code bound to the client                                        TestTOK07_CodeBoundToClient
//	TOK-08, BCP-25  redirect_uri optional; if sent it must match (invalid_grant)   TestTOK08_RedirectURI
//	TOK-09, AZ-09  expired code → invalid_grant                             TestTOK09_ExpiredCode
//	TOK-10  JSON errors; 400 except invalid_client (401, WWW-Authenticate when Basic was used)  TestTOK10_ErrorStatuses
//	TOK-11, CLI-06, DCR-10  unknown client → 401 invalid_client             TestTOK10_ErrorStatuses
//	TOK-12, BCP-02  other grants → unsupported_grant_type                    TestTOK12_UnsupportedGrants
//	TOK-13, BCP-26  repeated parameters and two auth methods rejected; unknown ignored   TestTOK13_Parameters
//	TOK-14  public clients identify with client_id                          TestTOK10_ErrorStatuses
//	TOK-15, BCP-30  access tokens ≤ 1 h by default, capped at the upstream token's expiry   TestFullFlow…
//	TOK-16  RFC 9068 claims (server/accesstoken)                            TestTOK16_TokenShape
//	PKCE-03/04/05/06  verifier required, must match, 43–128 unreserved chars   TestPKCE03_06_Verifier
//	RES-06/07  resource at token and refresh must match the grant           TestRES06_07_TokenResource
//	RT-01/02  rotation; the old token is dead                               TestRT01_02_Rotation
//	RT-03, BCP-12  reuse of a rotated token revokes the whole grant          TestRT03_ReuseRevokesFamily
//	RT-04   bound to the client                                             TestRT04_BoundToClient
//	RT-05   narrower scope allowed, wider → invalid_scope                   TestRT05_06_Scope
//	RT-06, BCP-13  the new refresh token keeps the original scope           TestRT05_06_Scope
//	RT-07   tampered → invalid_grant                                        TestRT07_Tampered
//	RT-08, BCP-15  inactivity expiry                                        TestRT08_IdleExpiry
//	RT-09   upstream refusal → invalid_grant and the grant ends; upstream outage → 503, token kept
//	                                                                        TestRT09_UpstreamRefresh
//	RT-10   concurrent refreshes: one winner; the others count as reuse      TestRT10_ConcurrentRefresh
//	RT-11   refresh only for clients registered for it                      TestRT11_GrantTypeRegistered
func (p *Proxy) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		writeJSON(w, http.StatusMethodNotAllowed, oauthError{Error: "invalid_request", Description: "use POST with an application/x-www-form-urlencoded body"})
		return
	}
	form, basic, ok := p.readForm(w, r)
	if !ok {
		return
	}
	v, err := params(form, "grant_type", "code", "code_verifier", "redirect_uri", "client_id", "client_secret", "refresh_token", "scope", "resource")
	if err != nil {
		p.tokenError(w, "invalid_request", err.Error(), basic.used)
		return
	}
	client, ok := p.authenticateClient(w, r, v, basic)
	if !ok {
		return
	}
	switch v["grant_type"] {
	case "authorization_code":
		p.codeGrant(w, r, client, v, basic.used)
	case "refresh_token":
		p.refreshGrant(w, r, client, v, basic.used)
	case "":
		p.tokenError(w, "invalid_request", "grant_type is required", basic.used)
	default:
		p.tokenError(w, "unsupported_grant_type", "only authorization_code and refresh_token are supported", basic.used)
	}
}

type basicAuth struct {
	used         bool
	id, secret   string
	malformedHdr bool
}

// readForm reads a form body (only the body: query parameters are not merged).
func (p *Proxy) readForm(w http.ResponseWriter, r *http.Request) (url.Values, basicAuth, bool) {
	var b basicAuth
	if h := r.Header.Get("Authorization"); h != "" {
		id, secret, ok := r.BasicAuth()
		if !ok {
			p.tokenError(w, "invalid_client", "the Authorization header is not valid HTTP Basic", true)
			return nil, b, false
		}
		var e1, e2 error
		b.id, e1 = url.QueryUnescape(id)
		b.secret, e2 = url.QueryUnescape(secret)
		if e1 != nil || e2 != nil {
			p.tokenError(w, "invalid_client", "the Basic credentials are not form-encoded", true)
			return nil, b, false
		}
		b.used = true
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		p.tokenError(w, "invalid_request", "the body must be application/x-www-form-urlencoded", b.used)
		return nil, b, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		p.tokenError(w, "invalid_request", "the form body cannot be parsed", b.used)
		return nil, b, false
	}
	return r.PostForm, b, true
}

// authenticateClient identifies the (public) client: client_id in the body or HTTP Basic with an
// empty password — one method only (TOK-13). Our clients have no secret, so any presented secret
// fails authentication.
func (p *Proxy) authenticateClient(w http.ResponseWriter, r *http.Request, v map[string]string, b basicAuth) (store.Client, bool) {
	id := v["client_id"]
	if b.used {
		if v["client_secret"] != "" || (id != "" && id != b.id) {
			p.tokenError(w, "invalid_request", "use one client authentication method", true)
			return store.Client{}, false
		}
		id = b.id
	}
	if id == "" {
		p.tokenError(w, "invalid_client", "client_id is required", b.used)
		return store.Client{}, false
	}
	if b.secret != "" || v["client_secret"] != "" {
		p.tokenError(w, "invalid_client", "this server registers public clients only (token_endpoint_auth_method none); do not send a client secret", b.used)
		return store.Client{}, false
	}
	c, err := p.lookupClient(r.Context(), id)
	if err != nil {
		if errors.Is(err, errUnknownClient) {
			p.tokenError(w, "invalid_client", "unknown client; register again", b.used)
		} else {
			p.log.Error("token: client lookup", "err", err)
			tokenUnavailable(w)
		}
		return store.Client{}, false
	}
	return c, true
}

func (p *Proxy) tokenError(w http.ResponseWriter, code, desc string, basic bool) {
	status := http.StatusBadRequest
	if code == "invalid_grant" && p.o.InvalidGrantStatus != 0 {
		status = p.o.InvalidGrantStatus
	}
	if code == "invalid_client" {
		status = http.StatusUnauthorized
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="token", charset="UTF-8"`)
		}
	}
	writeJSON(w, status, oauthError{Error: code, Description: desc})
}

func tokenUnavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "5")
	writeJSON(w, http.StatusServiceUnavailable, oauthError{Error: "temporarily_unavailable", Description: "try again shortly"})
}

var verifierRe = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func (p *Proxy) codeGrant(w http.ResponseWriter, r *http.Request, client store.Client, v map[string]string, basic bool) {
	ctx := r.Context()
	code, verifier := v["code"], v["code_verifier"]
	if code == "" {
		p.tokenError(w, "invalid_request", "code is required", basic)
		return
	}
	if verifier == "" {
		p.tokenError(w, "invalid_request", "code_verifier is required", basic)
		return
	}
	c, usedAt, err := p.o.Store.GetCode(ctx, code)
	if errors.Is(err, store.ErrNotFound) {
		p.tokenError(w, "invalid_grant", "the authorization code is invalid or expired", basic)
		return
	}
	if err != nil {
		p.log.Error("token: code lookup", "err", err)
		tokenUnavailable(w)
		return
	}
	// Every check before redemption: an invalid request neither redeems the code nor, on a
	// replay, revokes anything (TOK-06).
	switch {
	case c.ClientID != client.ID:
		p.tokenError(w, "invalid_grant", "the authorization code was issued to another client", basic)
		return
	case !verifierRe.MatchString(verifier):
		p.tokenError(w, "invalid_grant", "code_verifier must be 43 to 128 unreserved characters", basic)
		return
	case !equalSecret(s256(verifier), c.CodeChallenge):
		p.tokenError(w, "invalid_grant", "code_verifier does not match the code_challenge", basic)
		return
	case v["redirect_uri"] != "" && v["redirect_uri"] != c.RedirectURI:
		p.tokenError(w, "invalid_grant", "redirect_uri does not match the authorization request", basic)
		return
	case v["resource"] != "" && !p.checkResource(v["resource"]):
		p.tokenError(w, "invalid_target", "resource is not this server's MCP endpoint", basic)
		return
	}
	if !usedAt.IsZero() {
		p.codeReplayed(w, r, client, c, basic)
		return
	}
	g, err := p.o.Store.GetGrant(ctx, c.GrantID)
	if err != nil {
		p.tokenError(w, "invalid_grant", "the authorization is no longer valid", basic)
		return
	}
	// The redemption (the atomic step), the grant's new expiry and the new refresh token are written
	// concurrently so that they land in one store batch (one fsync on the embedded store). The two
	// speculative writes are harmless when the redemption loses: a replay revokes the grant (and with
	// it the unseen refresh token), an expired code ends its grant too.
	now := p.now()
	g.ExpiresAt = now.Add(p.o.Lifetimes.RefreshAbsolute)
	rt, rec := p.newRefreshToken(client, g, now, g.ExpiresAt)
	var (
		wg                      sync.WaitGroup
		first                   bool
		redeemErr, upErr, rtErr error
	)
	if !client.UnusedUntil.IsZero() && !client.Metadata {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The registration is in use: keep it beyond lifetimes.unused_registration.
			if err := p.o.Store.KeepClient(ctx, client); err != nil {
				p.log.Warn("token: keep client registration", "client_id", client.ID, "err", err)
			}
		}()
	}
	wg.Add(3)
	go func() { defer wg.Done(); first, redeemErr = p.o.Store.RedeemCode(ctx, code) }()
	go func() { defer wg.Done(); upErr = p.o.Store.UpdateGrant(ctx, g) }()
	go func() {
		defer wg.Done()
		// PKCE-08: remember the challenge so that a client reusing it is refused at /authorize.
		if err := p.o.Store.RememberChallenge(ctx, c.CodeChallenge, now.Add(ChallengeMemory)); err != nil {
			p.log.Warn("token: remember PKCE challenge", "err", err)
		}
	}()
	if rt != "" {
		rtErr = p.o.Store.PutRefreshToken(ctx, rt, rec)
	}
	wg.Wait()
	switch {
	case errors.Is(redeemErr, store.ErrNotFound):
		p.revokeGrantLocal(ctx, g.ID)
		p.tokenError(w, "invalid_grant", "the authorization code is invalid or expired", basic)
		return
	case redeemErr != nil:
		p.log.Error("token: redeem code", "err", redeemErr)
		tokenUnavailable(w)
		return
	case !first:
		p.codeReplayed(w, r, client, c, basic)
		return
	case errors.Is(upErr, store.ErrNotFound):
		// A concurrent replay already revoked the grant (TOK-05): this redemption won the code, so
		// it gets its response, but the tokens are dead on arrival.
		p.log.Warn("code redeemed while a concurrent replay revoked its grant", "client_id", client.ID, "grant", c.GrantID[:8])
	case upErr != nil || rtErr != nil:
		p.log.Error("token: store", "err", errors.Join(upErr, rtErr))
		tokenUnavailable(w)
		return
	}
	p.writeTokens(w, client, g, c.Scopes, rt)
}

// ChallengeMemory is how long the PKCE challenge of a redeemed code is remembered and refused when a
// client sends it again (RFC 9700 §2.1.1 encourages detecting constant challenges; PKCE-08).
const ChallengeMemory = 24 * time.Hour

// codeReplayed answers a second valid redemption: the grant and everything issued from it is revoked
// (TOK-05), here and upstream.
func (p *Proxy) codeReplayed(w http.ResponseWriter, r *http.Request, client store.Client, c store.Code, basic bool) {
	p.log.Warn("authorization code replayed: revoking its grant", "client_id", client.ID, "grant", c.GrantID[:8])
	p.revokeGrant(r.Context(), c.GrantID)
	p.tokenError(w, "invalid_grant", "the authorization code was already used", basic)
}

// newRefreshToken prepares the next refresh token of a family (none for clients not registered for
// the refresh_token grant).
func (p *Proxy) newRefreshToken(client store.Client, g store.Grant, now, familyExp time.Time) (string, store.RefreshToken) {
	if !client.HasGrantType("refresh_token") {
		return "", store.RefreshToken{}
	}
	idle := now.Add(p.o.Lifetimes.RefreshIdle)
	if idle.After(familyExp) {
		idle = familyExp
	}
	return randomToken(), store.RefreshToken{GrantID: g.ID, ClientID: client.ID, Scopes: g.Scopes, Resource: g.Resource,
		IssuedAt: now, ExpiresAt: familyExp, IdleUntil: idle}
}

// writeTokens mints the access token and writes the token response (with rt when not empty).
func (p *Proxy) writeTokens(w http.ResponseWriter, client store.Client, g store.Grant, scopes []string, rt string) {
	now := p.now()
	exp := now.Add(p.o.Lifetimes.AccessToken)
	if up := g.Upstream.Expiry; !up.IsZero() && up.Before(exp) && up.After(now) {
		exp = up // never outlive the upstream token (RS-10): the client refreshes, and so do we upstream
	}
	scope := strings.Join(scopes, " ")
	at, claims, err := p.o.Tokens.Issue(accesstoken.Claims{Subject: g.Subject, ClientID: client.ID, Scope: scope, GrantID: g.ID, ExpiresAt: exp})
	if err != nil {
		p.log.Error("token: issue", "err", err)
		tokenUnavailable(w)
		return
	}
	resp := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int64(claims.ExpiresAt.Sub(now).Seconds()), "scope": scope}
	if rt != "" {
		resp["refresh_token"] = rt
	}
	p.log.Info("tokens issued", "client_id", client.ID, "grant", g.ID[:8], "jti", claims.TokenID[:8], "expires_in", resp["expires_in"])
	writeJSON(w, http.StatusOK, resp)
}

func (p *Proxy) refreshGrant(w http.ResponseWriter, r *http.Request, client store.Client, v map[string]string, basic bool) {
	ctx := r.Context()
	rt := v["refresh_token"]
	if rt == "" {
		p.tokenError(w, "invalid_request", "refresh_token is required", basic)
		return
	}
	if !client.HasGrantType("refresh_token") {
		p.tokenError(w, "unauthorized_client", "the client is not registered for the refresh_token grant", basic)
		return
	}
	rec, usedAt, err := p.o.Store.GetRefreshToken(ctx, rt)
	if errors.Is(err, store.ErrNotFound) {
		p.tokenError(w, "invalid_grant", "the refresh token is invalid or expired", basic)
		return
	}
	if err != nil {
		p.log.Error("token: refresh lookup", "err", err)
		tokenUnavailable(w)
		return
	}
	if rec.ClientID != client.ID {
		p.tokenError(w, "invalid_grant", "the refresh token was issued to another client", basic)
		return
	}
	if !usedAt.IsZero() {
		p.log.Warn("refresh token reused: revoking the grant", "client_id", client.ID, "grant", rec.GrantID[:8])
		p.revokeGrant(ctx, rec.GrantID)
		p.tokenError(w, "invalid_grant", "the refresh token was already used", basic)
		return
	}
	scopes := rec.Scopes
	if s := v["scope"]; s != "" {
		scopes = nil
		for _, x := range strings.Fields(s) {
			if !slices.Contains(rec.Scopes, x) {
				p.tokenError(w, "invalid_scope", "the requested scope exceeds the original grant", basic)
				return
			}
			if !slices.Contains(scopes, x) {
				scopes = append(scopes, x)
			}
		}
	}
	if v["resource"] != "" && !p.checkResource(v["resource"]) {
		p.tokenError(w, "invalid_target", "resource is not this server's MCP endpoint", basic)
		return
	}
	markedAt, before, err := p.o.Store.UseRefreshToken(ctx, rt)
	if errors.Is(err, store.ErrNotFound) {
		p.tokenError(w, "invalid_grant", "the refresh token is invalid or expired", basic)
		return
	}
	if err != nil {
		p.log.Error("token: use refresh token", "err", err)
		tokenUnavailable(w)
		return
	}
	if !before.IsZero() {
		p.log.Warn("refresh token reused concurrently: revoking the grant", "client_id", client.ID, "grant", rec.GrantID[:8])
		p.revokeGrant(ctx, rec.GrantID)
		p.tokenError(w, "invalid_grant", "the refresh token was already used", basic)
		return
	}
	g, err := p.o.Store.GetGrant(ctx, rec.GrantID)
	if errors.Is(err, store.ErrNotFound) {
		p.tokenError(w, "invalid_grant", "the authorization was revoked", basic)
		return
	}
	if err != nil { // a store failure is not the client's fault: keep its refresh token usable
		p.log.Error("token: load grant", "err", err)
		_ = p.o.Store.UnuseRefreshToken(ctx, rt, markedAt)
		tokenUnavailable(w)
		return
	}
	now := p.now()
	// Refresh upstream when its access token would expire before ours; without an upstream refresh
	// token, keep going until the upstream token has expired (our tokens are capped at its expiry).
	up := g.Upstream
	if !up.Expiry.IsZero() && up.Expiry.Before(now.Add(p.o.Lifetimes.AccessToken)) && (up.RefreshToken != "" || !up.Expiry.After(now)) {
		nt, err := p.o.Upstream.Refresh(ctx, upstream.Tokens{AccessToken: up.AccessToken, RefreshToken: up.RefreshToken, IDToken: up.IDToken, Expiry: up.Expiry}, g.Subject)
		switch {
		case errors.Is(err, upstream.ErrInvalidGrant):
			p.log.Info("upstream refused the refresh: ending the grant", "client_id", client.ID, "grant", g.ID[:8], "err", err.Error())
			p.revokeGrantLocal(ctx, g.ID)
			p.tokenError(w, "invalid_grant", "the sign-in at the identity provider has ended; authorize again", basic)
			return
		case err != nil:
			p.log.Warn("upstream refresh unavailable: refresh token kept", "client_id", client.ID, "err", err.Error())
			_ = p.o.Store.UnuseRefreshToken(ctx, rt, markedAt)
			tokenUnavailable(w)
			return
		}
		g.Upstream = store.UpstreamTokens{AccessToken: nt.AccessToken, RefreshToken: nt.RefreshToken, IDToken: nt.IDToken, Expiry: nt.Expiry}
		if err := p.o.Store.UpdateGrant(ctx, g); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				p.tokenError(w, "invalid_grant", "the authorization was revoked", basic)
				return
			}
			p.log.Error("token: store refreshed upstream tokens", "err", err)
			_ = p.o.Store.UnuseRefreshToken(ctx, rt, markedAt)
			tokenUnavailable(w)
			return
		}
	}
	rt2, rec2 := p.newRefreshToken(client, g, now, rec.ExpiresAt)
	if rt2 != "" {
		if err := p.o.Store.PutRefreshToken(ctx, rt2, rec2); err != nil {
			p.log.Error("token: store refresh token", "err", err)
			_ = p.o.Store.UnuseRefreshToken(ctx, rt, markedAt) // the client may retry with the old token
			tokenUnavailable(w)
			return
		}
	}
	p.writeTokens(w, client, g, scopes, rt2)
}
