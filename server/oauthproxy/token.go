package oauthproxy

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/accesstoken"
	"github.com/cnpg-mcp/cnpg-mcp/server/store"
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
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		if limit, ok := tooLarge(err); ok {
			writeJSON(w, http.StatusRequestEntityTooLarge, oauthError{Error: "invalid_request", Description: fmt.Sprintf("the request body exceeds %d bytes", limit)})
			return nil, b, false
		}
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

// MaxFormBytes bounds the bodies of /token and /revoke (413 beyond it).
const MaxFormBytes = 64 << 10

// tokenUnavailable is the answer to a store (or upstream) fault: no verdict on the request, which the
// client retries unchanged.
func tokenUnavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", RetryAfterSeconds)
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
	if errors.Is(err, store.ErrNotFound) {
		p.tokenError(w, "invalid_grant", "the authorization is no longer valid", basic)
		return
	}
	if err != nil { // a store fault is no verdict on the code: the client retries it
		p.log.Error("token: load grant", "err", err)
		tokenUnavailable(w)
		return
	}
	// Everything is prepared first; the redemption is then one store transaction (the code's use,
	// the grant's family expiry, the first refresh token, the kept registration and the remembered
	// PKCE challenge, PKCE-08): a fault leaves the code unredeemed and the client's retry works.
	now := p.now()
	g.ExpiresAt = now.Add(p.o.Lifetimes.RefreshAbsolute)
	rt, rec := p.newRefreshToken(client, g, now, g.ExpiresAt)
	ans, err := p.mintAnswer(client, g, c.Scopes, rt)
	if err != nil {
		p.log.Error("token: issue", "err", err)
		tokenUnavailable(w)
		return
	}
	red := store.Redemption{Code: code, RedemptionID: randomToken(), GrantID: g.ID, GrantExpiresAt: g.ExpiresAt, RefreshToken: rt, Refresh: rec,
		Challenge: c.CodeChallenge, ChallengeUntil: now.Add(ChallengeMemory)}
	if !client.UnusedUntil.IsZero() && !client.Metadata {
		red.KeepClient = client.ID // the registration is in use: keep it beyond lifetimes.unused_registration
	}
	err = p.commit(ctx, func(ctx context.Context) error { return p.o.Store.RedeemCode(ctx, red) })
	switch {
	case err == nil:
		p.writeAnswer(w, client, g.ID, ans)
	case errors.Is(err, store.ErrCodeUsed):
		p.codeReplayed(w, r, client, c, basic)
	case errors.Is(err, store.ErrGrantNotFound):
		p.tokenError(w, "invalid_grant", "the authorization is no longer valid", basic)
	case errors.Is(err, store.ErrNotFound):
		p.tokenError(w, "invalid_grant", "the authorization code is invalid or expired", basic)
	default:
		p.log.Error("token: redeem code", "err", err)
		tokenUnavailable(w)
	}
}

// ChallengeMemory is how long the PKCE challenge of a redeemed code is remembered and refused when a
// client sends it again (RFC 9700 §2.1.1 encourages detecting constant challenges; PKCE-08).
const ChallengeMemory = 24 * time.Hour

// codeReplayed answers a second valid redemption: the grant and everything issued from it is revoked
// (TOK-05), here and upstream. When the store cannot revoke, the answer is 503 (the replay is retried
// and revokes then), never a quiet invalid_grant that leaves the grant alive.
func (p *Proxy) codeReplayed(w http.ResponseWriter, r *http.Request, client store.Client, c store.Code, basic bool) {
	p.log.Warn("authorization code replayed: revoking its grant", "client_id", client.ID, "grant", c.GrantID[:8])
	if err := p.revokeGrant(r.Context(), c.GrantID); err != nil {
		tokenUnavailable(w)
		return
	}
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

// answer is a token response: it is minted before the store commit, so that nothing can fail after
// it, and kept (sealed) for a retried refresh.
type answer struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresAt    int64  `json:"expires_at"` // unix seconds
	Scope        string `json:"scope"`
	TokenID      string `json:"jti"`
}

// mintAnswer mints the access token for the grant (never outliving the upstream access token, RS-10:
// the client refreshes, and so do we upstream) and pairs it with rt.
func (p *Proxy) mintAnswer(client store.Client, g store.Grant, scopes []string, rt string) (answer, error) {
	now := p.now()
	exp := now.Add(p.o.Lifetimes.AccessToken)
	if up := g.Upstream.Expiry; !up.IsZero() && up.Before(exp) && up.After(now) {
		exp = up
	}
	scope := strings.Join(scopes, " ")
	at, claims, err := p.o.Tokens.Issue(accesstoken.Claims{Subject: g.Subject, ClientID: client.ID, Scope: scope, GrantID: g.ID, ExpiresAt: exp})
	if err != nil {
		return answer{}, err
	}
	return answer{AccessToken: at, RefreshToken: rt, ExpiresAt: claims.ExpiresAt.Unix(), Scope: scope, TokenID: claims.TokenID}, nil
}

// writeAnswer writes a token response.
func (p *Proxy) writeAnswer(w http.ResponseWriter, client store.Client, grantID string, a answer) {
	expiresIn := max(0, a.ExpiresAt-p.now().Unix())
	resp := map[string]any{"access_token": a.AccessToken, "token_type": "Bearer", "expires_in": expiresIn, "scope": a.Scope}
	if a.RefreshToken != "" {
		resp["refresh_token"] = a.RefreshToken
	}
	p.log.Info("tokens issued", "client_id", client.ID, "grant", grantID[:8], "jti", a.TokenID[:8], "expires_in", expiresIn)
	writeJSON(w, http.StatusOK, resp)
}

// commit runs a store transaction that decides a token request, detached from the request's
// context (a client hanging up must not cut a commit in half-known state) and retried for a moment
// on storage faults: the operations are idempotent (RedemptionID, RotationID), so a retry after a
// commit whose outcome was lost recognizes its own success. Verdicts (errors of the store package
// other than faults) return at once.
func (p *Proxy) commit(ctx context.Context, op func(ctx context.Context) error) error {
	ctx = context.WithoutCancel(ctx)
	deadline := time.Now().Add(p.rot.CommitRetry)
	backoff := 50 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := op(cctx)
		cancel()
		if err == nil || verdict(err) || time.Now().Add(backoff).After(deadline) {
			return err
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, time.Second)
	}
}

// verdict reports the store's decisions, as opposed to its faults.
func verdict(err error) bool {
	var claimed *store.ClaimedError
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrCodeUsed) ||
		errors.Is(err, store.ErrRefreshUsed) || errors.Is(err, store.ErrUpstreamChanged) || errors.As(err, &claimed)
}
