package accesstoken

import (
	"context"

	"github.com/cnpg-mcp/cnpg-mcp/server/identity"
)

// VerifyAccessToken implements bearer.Verifier: Verify, then the caller's identity for the request
// context. Any error means 401 invalid_token.
func (t *Tokens) VerifyAccessToken(ctx context.Context, token string) (identity.Identity, error) {
	c, err := t.Verify(ctx, token)
	if err != nil {
		return identity.Identity{}, err
	}
	return identity.Identity{Subject: c.Subject, ClientID: c.ClientID, TokenID: c.TokenID, Scopes: c.Scopes(), ExpiresAt: c.ExpiresAt}, nil
}
