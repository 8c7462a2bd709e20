package oauthproxy

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/cnpg-mcp/cnpg-mcp/server/accesstoken"
	"github.com/cnpg-mcp/cnpg-mcp/server/store"
)

// serveRevoke is RFC 7009 token revocation. Revoking either of our tokens ends the whole grant: every
// access token of the grant stops working at once (they are checked against the grant), every refresh
// token of the family dies, and the upstream refresh token is revoked at the upstream.
//
//	REV-01  POST form token (+ hint); client_id; 200 also for unknown tokens   TestREV01_UnknownToken200
//	REV-02  revoked refresh token unusable                                      TestREV02_03_06_RevokeRefresh
//	REV-03  revoking the refresh token kills the grant's access tokens          TestREV02_03_06_RevokeRefresh
//	REV-04  revoked access token rejected                                       TestREV04_RevokeAccessToken
//	REV-05  a client cannot revoke another client's token                      TestREV05_OtherClient
//	REV-06  the upstream refresh token is revoked upstream                      TestREV02_03_06_RevokeRefresh
//	REV-07  unknown client → 401 invalid_client                                 TestREV07_BadClient
//
// A store fault (looking the token up, or ending the grant) answers 503 temporarily_unavailable with
// Retry-After, never 200: the client must not believe a token is revoked when it is not
// [TestStoreFaultsAre503].
func (p *Proxy) serveRevoke(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		writeJSON(w, http.StatusMethodNotAllowed, oauthError{Error: "invalid_request", Description: "use POST"})
		return
	}
	form, basic, ok := p.readForm(w, r)
	if !ok {
		return
	}
	v, err := params(form, "token", "token_type_hint", "client_id", "client_secret")
	if err != nil {
		p.tokenError(w, "invalid_request", err.Error(), basic.used)
		return
	}
	client, ok := p.authenticateClient(w, r, v, basic)
	if !ok {
		return
	}
	tok := v["token"]
	if tok == "" {
		p.tokenError(w, "invalid_request", "token is required", basic.used)
		return
	}
	ctx := r.Context()
	grant := ""
	if strings.Count(tok, ".") == 2 {
		c, err := p.o.Tokens.Verify(ctx, tok)
		switch {
		case err == nil && c.ClientID == client.ID:
			grant = c.GrantID
		case errors.Is(err, accesstoken.ErrUnavailable):
			p.log.Error("revoke: grant lookup", "err", err)
			tokenUnavailable(w)
			return
		}
	} else {
		rec, _, err := p.o.Store.GetRefreshToken(ctx, tok)
		switch {
		case err == nil && rec.ClientID == client.ID:
			grant = rec.GrantID
		case err != nil && !errors.Is(err, store.ErrNotFound):
			p.log.Error("revoke: refresh token lookup", "err", err)
			tokenUnavailable(w)
			return
		}
	}
	if grant != "" {
		p.log.Info("grant revoked by its client", "client_id", client.ID, "grant", grant[:8])
		if err := p.revokeGrant(ctx, grant); err != nil {
			tokenUnavailable(w) // not revoked: the client must not believe it is
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// revokeGrant ends a grant here and revokes its upstream refresh token at the upstream. It fails
// only when the grant could not be ended here (a store fault); the upstream revocation is best
// effort (the grant is over here either way).
func (p *Proxy) revokeGrant(ctx context.Context, id string) error {
	g, gerr := p.o.Store.GetGrant(ctx, id)
	if gerr != nil && !errors.Is(gerr, store.ErrNotFound) {
		p.log.Error("revoke: read grant (revoking it here anyway)", "err", gerr)
	}
	if err := p.revokeGrantLocal(ctx, id); err != nil {
		return err
	}
	if gerr == nil {
		p.revokeUpstream(ctx, id, g.Upstream.RefreshToken)
	}
	return nil
}

// revokeUpstream revokes an upstream refresh token (best effort: logged when it fails).
func (p *Proxy) revokeUpstream(ctx context.Context, grantID, token string) {
	if token == "" {
		return
	}
	if err := p.o.Upstream.Revoke(context.WithoutCancel(ctx), token); err != nil {
		p.log.Warn("upstream revocation failed (the grant is revoked here)", "grant", grantID[:min(8, len(grantID))], "err", err.Error())
	}
}

func (p *Proxy) revokeGrantLocal(ctx context.Context, id string) error {
	if err := p.o.Store.RevokeGrant(context.WithoutCancel(ctx), id); err != nil {
		p.log.Error("revoke grant", "err", err)
		return err
	}
	return nil
}
