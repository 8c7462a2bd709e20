package store

import "time"

// Client is a registered OAuth client (RFC 7591) or a cached Client ID Metadata Document client.
type Client struct {
	ID                      string    `json:"client_id"`
	Name                    string    `json:"client_name,omitempty"`
	RedirectURIs            []string  `json:"redirect_uris"`
	GrantTypes              []string  `json:"grant_types"`
	ResponseTypes           []string  `json:"response_types"`
	TokenEndpointAuthMethod string    `json:"token_endpoint_auth_method"`
	ApplicationType         string    `json:"application_type"`
	Scope                   string    `json:"scope,omitempty"`
	ClientURI               string    `json:"client_uri,omitempty"`
	LogoURI                 string    `json:"logo_uri,omitempty"`
	IssuedAt                time.Time `json:"issued_at"`
	Metadata                bool      `json:"metadata_document,omitempty"` // from a CIMD URL
	// UnusedUntil: a registration that has completed no authorization expires then (zero: kept).
	UnusedUntil time.Time `json:"unused_until,omitzero"`
}

// HasGrantType reports whether the client registered the grant type.
func (c Client) HasGrantType(g string) bool {
	for _, x := range c.GrantTypes {
		if x == g {
			return true
		}
	}
	return false
}

// Transaction is an authorization request that passed validation and waits for consent.
type Transaction struct {
	ID            string    `json:"id"`
	ClientID      string    `json:"client_id"`
	RedirectURI   string    `json:"redirect_uri"`
	State         string    `json:"state,omitempty"`
	HasState      bool      `json:"has_state,omitempty"`
	Scopes        []string  `json:"scopes"`
	Resource      string    `json:"resource"`
	CodeChallenge string    `json:"code_challenge"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// CSRF binds one rendered consent form to its transaction.
type CSRF struct {
	TxnID     string    `json:"txn_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// UpstreamSession is what the callback needs once the user approved consent: the transaction, the
// hash of the browser-binding cookie, and the upstream PKCE verifier and nonce.
type UpstreamSession struct {
	Txn         Transaction `json:"txn"`
	BindingHash []byte      `json:"binding_hash"`
	Verifier    string      `json:"verifier"`
	Nonce       string      `json:"nonce"`
	ExpiresAt   time.Time   `json:"expires_at"`
}

// Code is an authorization code issued to a client (stored under the code's hash).
type Code struct {
	GrantID       string    `json:"grant_id"`
	ClientID      string    `json:"client_id"`
	RedirectURI   string    `json:"redirect_uri"`
	CodeChallenge string    `json:"code_challenge"`
	Scopes        []string  `json:"scopes"`
	Resource      string    `json:"resource"`
	ExpiresAt     time.Time `json:"expires_at"`
	// RedemptionID is set when the code is redeemed (Redemption.RedemptionID).
	RedemptionID string `json:"redemption_id,omitempty"`
}

// UpstreamTokens are the upstream provider's tokens for a grant; they are sealed at rest.
type UpstreamTokens struct {
	AccessToken  string    `json:"access_token,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	IDToken      string    `json:"id_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

// UpstreamIdentity is what the identity provider said about the user: the verified claims of the
// id_token (and of a verifiable upstream access token, or /userinfo), without the token mechanics
// (identity.PersonClaims). It is sealed with the grant, read at sign-in and replaced at every upstream
// refresh; the server maps it to the Kubernetes user it impersonates (kubernetes.identity: impersonate).
type UpstreamIdentity struct {
	Claims map[string]any `json:"claims"`
	At     time.Time      `json:"at"` // when the provider said so (sign-in or upstream refresh)
}

// Grant is one user's authorization of one client: every token we issue belongs to a grant, and
// deleting the grant revokes all of them (access tokens are checked against it on every request).
type Grant struct {
	ID        string         `json:"id"`
	ClientID  string         `json:"client_id"`
	Subject   string         `json:"sub"`
	Scopes    []string       `json:"scopes"`
	Resource  string         `json:"resource"`
	CreatedAt time.Time      `json:"created_at"`
	ExpiresAt time.Time      `json:"expires_at"`
	Upstream  UpstreamTokens `json:"-"`
	Sealed    []byte         `json:"sealed"`
	// UpstreamVersion counts the upstream refreshes committed for this grant; a rotation that
	// carries new upstream tokens commits only over the version its upstream call started from.
	UpstreamVersion int64 `json:"upstream_version,omitempty"`
	// UpstreamRotation is the rotation (Rotation.RotationID) that stored the current upstream
	// tokens, so a retried commit recognizes its own earlier success.
	UpstreamRotation string `json:"upstream_rotation,omitempty"`
	// RefreshedAt is when the grant's refresh token was last rotated.
	RefreshedAt time.Time `json:"refreshed_at,omitzero"`
	// Identity is the user's upstream identity (nil: none recorded, e.g. a grant from before it was
	// kept); SealedIdentity holds it sealed (its own additional data, so the per-request read opens
	// only this and not the upstream tokens).
	Identity       *UpstreamIdentity `json:"-"`
	SealedIdentity []byte            `json:"sealed_identity,omitempty"`
	// sealedFrom is what Sealed holds (set when read or sealed), so an update that does not change
	// the upstream tokens does not seal them again.
	sealedFrom *UpstreamTokens
	// identityFrom is the Identity SealedIdentity holds (set when read or sealed).
	identityFrom *UpstreamIdentity
}

// RefreshToken is one member of a grant's refresh-token family (stored under the token's hash).
type RefreshToken struct {
	GrantID   string    `json:"grant_id"`
	ClientID  string    `json:"client_id"`
	Scopes    []string  `json:"scopes"` // the grant's original scope, kept on every rotation
	Resource  string    `json:"resource"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"` // absolute expiry of the family
	IdleUntil time.Time `json:"idle_until"` // inactivity expiry of this token

	// A claim: an upstream refresh for this token is in progress until ClaimedUntil (a lease, so a
	// crash leaves nothing that outlives it).
	ClaimID      string    `json:"claim_id,omitempty"`
	ClaimedUntil time.Time `json:"claimed_until,omitzero"`

	// Set when the token is rotated out (its Entry.UsedAt is set then too).
	RotationID string `json:"rotation_id,omitempty"`
	// Successor is the storage key (HashKey) of the refresh token that replaced this one.
	Successor string `json:"successor,omitempty"`
	// Replay is the answer of the rotation, sealed with a key derived from this token (SealReplay),
	// for the same client retrying with this token until ReplayUntil while Successor is unused.
	Replay      []byte    `json:"replay,omitempty"`
	ReplayUntil time.Time `json:"replay_until,omitzero"`
}

// Expiry is when the record can be forgotten: the idle or the absolute expiry, whichever is first.
func (r RefreshToken) Expiry() time.Time {
	exp := r.IdleUntil
	if exp.IsZero() || (!r.ExpiresAt.IsZero() && r.ExpiresAt.Before(exp)) {
		exp = r.ExpiresAt
	}
	return exp
}
