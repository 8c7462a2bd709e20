package app

import (
	"context"
	"errors"

	"github.com/cnpg-mcp/cnpg-mcp/server/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/identity"
	"github.com/cnpg-mcp/cnpg-mcp/server/store"
)

// Mapping is the configured mapping of upstream claims to the Kubernetes user and groups.
func Mapping(cfg *config.Config) identity.Mapping {
	im := cfg.Kubernetes.Impersonation
	return identity.Mapping{UserClaim: im.UserClaim, UserPrefix: im.UserPrefix, GroupsClaim: im.GroupsClaim, GroupsPrefix: im.GroupsPrefix,
		Users: im.Users, Groups: im.Groups}
}

// kubeUsers resolves the Kubernetes user of a grant from the upstream identity kept (sealed) with
// it, for the access-token check of an impersonating server (accesstoken.KubeUsers): one store read
// per request, so a refreshed identity (a group removed upstream) counts from the next request on,
// on every replica.
type kubeUsers struct {
	grants  store.Grants
	mapping identity.Mapping
}

// errNoIdentity: the grant predates kept identities (or the provider sent no claims).
var errNoIdentity = errors.New("this authorization holds no identity from the identity provider (it was made before the server acted as its users, or the provider sent no claims)")

func (k kubeUsers) KubeUser(ctx context.Context, grantID string) (identity.KubeUser, bool, error) {
	id, err := k.grants.GrantIdentity(ctx, grantID)
	if errors.Is(err, store.ErrNotFound) {
		return identity.KubeUser{}, false, nil
	}
	if err != nil {
		return identity.KubeUser{}, false, err
	}
	if id.Claims == nil {
		return identity.KubeUser{Err: errNoIdentity}, true, nil
	}
	u, err := k.mapping.Map(id.Claims, id.At)
	if err != nil {
		return identity.KubeUser{Err: err, ClaimsAt: id.At}, true, nil
	}
	return u, true, nil
}
