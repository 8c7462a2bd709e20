package oauthproxy

import (
	"context"
	"errors"
	"net/http"
	"strings"

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
		if c, err := p.o.Tokens.Verify(ctx, tok); err == nil && c.ClientID == client.ID {
			grant = c.GrantID
		}
	} else if rec, _, err := p.o.Store.GetRefreshToken(ctx, tok); err == nil && rec.ClientID == client.ID {
		grant = rec.GrantID
	}
	if grant != "" {
		p.log.Info("grant revoked by its client", "client_id", client.ID, "grant", grant[:8])
		p.revokeGrant(ctx, grant)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// revokeGrant ends a grant here and revokes its upstream refresh token at the upstream.
func (p *Proxy) revokeGrant(ctx context.Context, id string) {
	g, err := p.o.Store.GetGrant(ctx, id)
	p.revokeGrantLocal(ctx, id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			p.log.Error("revoke: read grant", "err", err)
		}
		return
	}
	if g.Upstream.RefreshToken != "" {
		if err := p.o.Upstream.Revoke(context.WithoutCancel(ctx), g.Upstream.RefreshToken); err != nil {
			p.log.Warn("upstream revocation failed (the grant is revoked here)", "grant", id[:8], "err", err.Error())
		}
	}
}

func (p *Proxy) revokeGrantLocal(ctx context.Context, id string) {
	if err := p.o.Store.RevokeGrant(context.WithoutCancel(ctx), id); err != nil {
		p.log.Error("revoke grant", "err", err)
	}
}
