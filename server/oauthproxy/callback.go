package oauthproxy

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/identity"
	"github.com/cnpg-mcp/cnpg-mcp/server/store"
)

// serveCallback is where the upstream sends the browser back after login.
//
//	PXY-06  state is bound to the browser that approved consent: the binding cookie set on approval
//	        must match, else 403 and the client receives nothing     TestPXY06_BrowserBinding
//	PXY-08  state single-use (atomic take) and short-lived              TestPXY08_StateSingleUseAndExpiry
//	PXY-12  upstream error or failed exchange → error redirect to the client with state + iss, never a
//	        500 page with internal text                                 TestPXY12_UpstreamFailures
//	PXY-13  the client gets our code, never upstream tokens             TestPXY13_NoUpstreamTokensToClient
//	PXY-16, PKCE-07  our own S256 pair and state upstream               TestPXY16_UpstreamPKCEAndState (mock Auth0)
//	PXY-20  identity verified (id_token signature/iss/aud/nonce; JWE access tokens opaque)
//	                                                                    TestPXY20_JWEUpstreamToken (mock Auth0)
//	the user's verified claims are kept sealed with the grant; with Options.Identity.Check, a sign-in
//	        whose claims cannot name a Kubernetes user is refused (access_denied, with the reason)
//	                                                                    TestIdentityKeptWithGrant
//	AZ-14   iss on success and on every error redirect                  TestAZ14_IssOnEveryResponse
//	AZ-15   a code is only issued after the upstream login              TestAZ15_CodeOnlyAfterLogin
//	a store fault taking the state → 503 page with Retry-After; the state is still there, so reloading
//	        the callback completes the sign-in                          TestStoreFaultsAre503
func (p *Proxy) serveCallback(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		page(w, http.StatusMethodNotAllowed, pageData{Title: "Method not allowed", Message: "This address is only used by the identity provider."})
		return
	}
	v, err := params(r.URL.Query(), "state", "code", "error")
	if err != nil || v["state"] == "" {
		page(w, http.StatusBadRequest, pageData{Title: "Invalid sign-in response", Message: "The identity provider's response is incomplete. Start the sign-in again from your application."})
		return
	}
	state := v["state"]
	cookie := p.cookieName("bind", state)
	sess, err := p.o.Store.TakeUpstreamSession(r.Context(), state)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		p.log.Error("callback: take upstream session", "err", err)
		unavailablePage(w) // the state was not taken: reloading this page completes the sign-in
		return
	}
	if err != nil {
		page(w, http.StatusBadRequest, pageData{Title: "This sign-in has expired",
			Message: "It was already completed or is too old. Start the sign-in again from your application."})
		return
	}
	p.clearCookie(w, cookie)
	ck, cerr := r.Cookie(cookie)
	if cerr != nil || subtle.ConstantTimeCompare(hashBytes(ck.Value), sess.BindingHash) != 1 {
		p.log.Warn("callback: browser binding missing or wrong (sign-in finished in another browser than the one that approved consent)", "client_id", sess.Txn.ClientID)
		page(w, http.StatusForbidden, pageData{Title: "Sign-in started in another browser",
			Message: "This sign-in was approved in a different browser, or your browser blocked our cookie. For your safety it was stopped. Start again from your application, in this browser."})
		return
	}
	txn := sess.Txn
	if !p.stillRegistered(w, r, txn) {
		return
	}
	fail := func(code, desc string) {
		http.Redirect(w, r, p.clientRedirect(txn, url.Values{"error": {code}, "error_description": {desc}}), http.StatusFound)
	}
	if e := v["error"]; e != "" {
		p.log.Info("callback: upstream returned an error", "client_id", txn.ClientID, "error", safeErrorCode(e))
		if e == "access_denied" || e == "login_required" || e == "consent_required" || e == "interaction_required" {
			fail("access_denied", "the identity provider did not authorize the sign-in")
		} else {
			fail("server_error", "the identity provider could not complete the sign-in")
		}
		return
	}
	if v["code"] == "" {
		fail("server_error", "the identity provider returned no authorization code")
		return
	}
	res, err := p.o.Upstream.Exchange(r.Context(), v["code"], sess.Verifier, sess.Nonce)
	if err != nil {
		p.log.Warn("callback: upstream exchange failed", "client_id", txn.ClientID, "err", err.Error())
		fail("server_error", "the identity provider could not complete the sign-in; try again")
		return
	}
	if check := p.o.Identity.Check; check != nil {
		if err := check(res.Claims); err != nil {
			p.log.Warn("callback: the user's identity cannot be used: sign-in refused", "client_id", txn.ClientID, "reason", err.Error())
			p.revokeUpstream(r.Context(), "", res.Tokens.RefreshToken) // nobody will ever use it
			fail("access_denied", "this server acts as you in Kubernetes, and your sign-in cannot name you there: "+err.Error())
			return
		}
	}
	now := p.now()
	g := store.Grant{ID: randomToken(), ClientID: txn.ClientID, Subject: res.Subject, Scopes: txn.Scopes, Resource: txn.Resource,
		CreatedAt: now, ExpiresAt: now.Add(p.o.Lifetimes.AuthorizationCode + p.o.Lifetimes.Transaction),
		Upstream: store.UpstreamTokens{AccessToken: res.Tokens.AccessToken, RefreshToken: res.Tokens.RefreshToken, IDToken: res.Tokens.IDToken, Expiry: res.Tokens.Expiry},
		Identity: upstreamIdentity(res.Claims, now)}
	code := randomToken()
	c := store.Code{GrantID: g.ID, ClientID: txn.ClientID, RedirectURI: txn.RedirectURI,
		CodeChallenge: txn.CodeChallenge, Scopes: txn.Scopes, Resource: txn.Resource, ExpiresAt: now.Add(p.o.Lifetimes.AuthorizationCode)}
	// The grant and its code are one commit, retried for a moment on a store fault (the upstream
	// code is spent: this is the only chance to keep the sign-in).
	err = p.commit(r.Context(), func(ctx context.Context) error {
		err := p.o.Store.IssueCode(ctx, g, code, c)
		if errors.Is(err, store.ErrExists) { // a retried commit that had committed
			if _, _, gerr := p.o.Store.GetCode(ctx, code); gerr == nil {
				return nil
			}
		}
		return err
	})
	if err != nil {
		p.log.Error("callback: store grant", "err", err)
		p.revokeUpstream(r.Context(), g.ID, res.Tokens.RefreshToken) // nobody will ever use it
		fail("temporarily_unavailable", "the server could not store the authorization; sign in again")
		return
	}
	p.log.Info("authorization code issued", "client_id", txn.ClientID, "grant", g.ID[:8], "upstream_access_token", res.AccessTokenKind)
	http.Redirect(w, r, p.clientRedirect(txn, url.Values{"code": {code}}), http.StatusFound)
}

// upstreamIdentity is what the grant keeps of the user's claims (nil when the provider gave none).
func upstreamIdentity(claims map[string]any, at time.Time) *store.UpstreamIdentity {
	if claims == nil {
		return nil
	}
	return &store.UpstreamIdentity{Claims: identity.PersonClaims(claims), At: at}
}

// safeErrorCode keeps an error code for logs only if it has the OAuth character set.
func safeErrorCode(s string) string {
	if len(s) > 64 {
		return "invalid"
	}
	for _, r := range s {
		if !(r == '_' || (r >= 'a' && r <= 'z')) {
			return "invalid"
		}
	}
	return s
}
