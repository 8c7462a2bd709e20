package oauthclient

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// NewVerifier returns a PKCE code verifier of 43 unreserved characters (32 random bytes).
func NewVerifier() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// S256 is the PKCE S256 challenge of a verifier.
func S256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// RandomString returns n random bytes, base64url-encoded (for state values and the like).
func RandomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Registration is a DCR response's client.
type Registration struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Scope                   string   `json:"scope"`
	ClientName              string   `json:"client_name"`
}

// Register posts client metadata to a registration endpoint. It returns the decoded registration
// when the server answered 201 (or 200) with a client_id.
func (c *Client) Register(ctx context.Context, endpoint string, metadata map[string]any) (*Registration, *Response, error) {
	resp, err := c.PostJSON(ctx, endpoint, metadata, http.Header{"Accept": {"application/json"}})
	if err != nil {
		return nil, nil, err
	}
	if resp.Status != http.StatusCreated && resp.Status != http.StatusOK {
		return nil, resp, fmt.Errorf("registration refused: %s", resp.Describe())
	}
	var reg Registration
	if err := json.Unmarshal(resp.Body, &reg); err != nil || reg.ClientID == "" {
		return nil, resp, fmt.Errorf("registration response has no client_id: %s", resp.Describe())
	}
	return &reg, resp, nil
}

// PublicClientMetadata is the registration body of a typical MCP client (Claude Code-like): a
// public native client with one loopback redirect URI, code + refresh grants.
func PublicClientMetadata(name string, redirectURIs ...string) map[string]any {
	return map[string]any{
		"client_name":                name,
		"redirect_uris":              redirectURIs,
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	}
}

// AuthorizeURL appends parameters to an authorization endpoint. Values with several entries are
// sent repeated, exactly as given.
func AuthorizeURL(endpoint string, params url.Values) string {
	sep := "?"
	if strings.Contains(endpoint, "?") {
		sep = "&"
	}
	return endpoint + sep + params.Encode()
}

// TokenResponse is a successful token response.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    *int64 `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	IDToken      string `json:"id_token"`
}

// DecodeToken decodes a token response; it fails when the response is not a 200 with an access token.
func DecodeToken(resp *Response) (*TokenResponse, error) {
	if resp.Status != http.StatusOK {
		return nil, fmt.Errorf("token request refused: %s", resp.Describe())
	}
	var t TokenResponse
	if err := json.Unmarshal(resp.Body, &t); err != nil {
		return nil, fmt.Errorf("token response is not JSON: %w", err)
	}
	if t.AccessToken == "" {
		return nil, fmt.Errorf("token response has no access_token: %s", resp.Describe())
	}
	return &t, nil
}

// CodeExchange is an authorization_code token request. Empty fields are omitted.
type CodeExchange struct {
	ClientID     string
	Code         string
	RedirectURI  string
	CodeVerifier string
	Resource     string
	// Extra parameters, sent as given.
	Extra url.Values
}

// Form builds the request body.
func (x CodeExchange) Form() url.Values {
	f := url.Values{"grant_type": {"authorization_code"}}
	set(f, "code", x.Code)
	set(f, "client_id", x.ClientID)
	set(f, "redirect_uri", x.RedirectURI)
	set(f, "code_verifier", x.CodeVerifier)
	set(f, "resource", x.Resource)
	for k, vs := range x.Extra {
		f[k] = append(f[k], vs...)
	}
	return f
}

// RefreshRequest is a refresh_token token request.
type RefreshRequest struct {
	ClientID     string
	RefreshToken string
	Scope        string
	Resource     string
	Extra        url.Values
}

// Form builds the request body.
func (x RefreshRequest) Form() url.Values {
	f := url.Values{"grant_type": {"refresh_token"}}
	set(f, "refresh_token", x.RefreshToken)
	set(f, "client_id", x.ClientID)
	set(f, "scope", x.Scope)
	set(f, "resource", x.Resource)
	for k, vs := range x.Extra {
		f[k] = append(f[k], vs...)
	}
	return f
}

// Token posts a form to the token endpoint.
func (c *Client) Token(ctx context.Context, endpoint string, form url.Values) (*Response, error) {
	return c.PostForm(ctx, endpoint, form, http.Header{"Accept": {"application/json"}})
}

// Revoke posts an RFC 7009 revocation request for a public client.
func (c *Client) Revoke(ctx context.Context, endpoint, clientID, token, hint string) (*Response, error) {
	f := url.Values{"token": {token}}
	set(f, "client_id", clientID)
	set(f, "token_type_hint", hint)
	return c.PostForm(ctx, endpoint, f, nil)
}

func set(f url.Values, k, v string) {
	if v != "" {
		f.Set(k, v)
	}
}
