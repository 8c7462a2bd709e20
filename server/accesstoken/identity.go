package accesstoken

import (
	"context"
	"errors"
	"fmt"

	"github.com/cnpg-mcp/cnpg-mcp/server/bearer"
	"github.com/cnpg-mcp/cnpg-mcp/server/identity"
)

// VerifyAccessToken implements bearer.Verifier: Verify, then the caller's identity for the request
// context. An unavailable grant store is reported as bearer.ErrUnavailable (503); any other error
// means 401 invalid_token.
func (t *Tokens) VerifyAccessToken(ctx context.Context, token string) (identity.Identity, error) {
	c, scopes, err := t.verify(ctx, token)
	if errors.Is(err, ErrUnavailable) {
		return identity.Identity{}, fmt.Errorf("%w: %w", bearer.ErrUnavailable, err)
	}
	if err != nil {
		return identity.Identity{}, err
	}
	return identity.Identity{Subject: c.Subject, ClientID: c.ClientID, TokenID: c.TokenID, Scopes: scopes, ExpiresAt: c.ExpiresAt, Kube: c.Kube}, nil
}
