package oauthclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ProtectedResourceMetadata is an RFC 9728 document. Raw keeps every field, so checks can tell
// "absent" from "empty".
type ProtectedResourceMetadata struct {
	Resource               string         `json:"resource"`
	AuthorizationServers   []string       `json:"authorization_servers"`
	ScopesSupported        []string       `json:"scopes_supported"`
	BearerMethodsSupported []string       `json:"bearer_methods_supported"`
	ResourceName           string         `json:"resource_name"`
	Raw                    map[string]any `json:"-"`
	// URL is where the document was fetched from.
	URL string `json:"-"`
}

// ASMetadata is an RFC 8414 document (or an OIDC discovery document).
type ASMetadata struct {
	Issuer                                 string         `json:"issuer"`
	AuthorizationEndpoint                  string         `json:"authorization_endpoint"`
	TokenEndpoint                          string         `json:"token_endpoint"`
	RegistrationEndpoint                   string         `json:"registration_endpoint"`
	RevocationEndpoint                     string         `json:"revocation_endpoint"`
	JWKSURI                                string         `json:"jwks_uri"`
	ResponseTypesSupported                 []string       `json:"response_types_supported"`
	GrantTypesSupported                    []string       `json:"grant_types_supported"`
	CodeChallengeMethodsSupported          []string       `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported      []string       `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported []string       `json:"revocation_endpoint_auth_methods_supported"`
	ScopesSupported                        []string       `json:"scopes_supported"`
	Raw                                    map[string]any `json:"-"`
	URL                                    string         `json:"-"`
}

// Bool returns a boolean field and whether it is present.
func (m *ASMetadata) Bool(field string) (value, present bool) {
	v, ok := m.Raw[field]
	if !ok {
		return false, false
	}
	b, isBool := v.(bool)
	return b && isBool, true
}

// Has reports whether a field is present.
func (m *ASMetadata) Has(field string) bool { _, ok := m.Raw[field]; return ok }

// Probe is one discovery request and what came back.
type Probe struct {
	URL    string
	Status int
	Err    error
	Resp   *Response
}

// PRMURLs returns the well-known PRM locations for a resource URL, in client order: path-inserted
// first (RFC 9728 §3.1), then the root.
func PRMURLs(resource string) ([]string, error) {
	u, err := url.Parse(resource)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("resource %q is not an absolute URL", resource)
	}
	root := u.Scheme + "://" + u.Host + "/.well-known/oauth-protected-resource"
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	if p == "" {
		return []string{root}, nil
	}
	inserted := root + p
	if u.RawQuery != "" {
		inserted += "?" + u.RawQuery
	}
	return []string{inserted, root}, nil
}

// ASMetadataURLs returns the discovery URLs for an issuer in the order MCP 2025-11-25 clients try
// them (CLI-02): with a path, RFC 8414 path-inserted, OIDC path-inserted, OIDC path-appended;
// without, the RFC 8414 and OIDC root documents.
func ASMetadataURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("issuer %q is not an absolute URL", issuer)
	}
	origin := u.Scheme + "://" + u.Host
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	if p == "" {
		return []string{origin + "/.well-known/oauth-authorization-server", origin + "/.well-known/openid-configuration"}, nil
	}
	return []string{
		origin + "/.well-known/oauth-authorization-server" + p,
		origin + "/.well-known/openid-configuration" + p,
		origin + p + "/.well-known/openid-configuration",
	}, nil
}

// FetchPRM fetches and decodes a PRM document.
func (c *Client) FetchPRM(ctx context.Context, rawURL string) (*ProtectedResourceMetadata, *Response, error) {
	resp, err := c.Get(ctx, rawURL, http.Header{"Accept": {"application/json"}})
	if err != nil {
		return nil, nil, err
	}
	if resp.Status != http.StatusOK {
		return nil, resp, fmt.Errorf("GET %s: %s", rawURL, resp.Describe())
	}
	var m ProtectedResourceMetadata
	if err := decodeObject(resp.Body, &m, &m.Raw); err != nil {
		return nil, resp, fmt.Errorf("GET %s: %w", rawURL, err)
	}
	m.URL = rawURL
	return &m, resp, nil
}

// FetchASMetadata fetches and decodes one AS metadata URL.
func (c *Client) FetchASMetadata(ctx context.Context, rawURL string) (*ASMetadata, *Response, error) {
	resp, err := c.Get(ctx, rawURL, http.Header{"Accept": {"application/json"}})
	if err != nil {
		return nil, nil, err
	}
	if resp.Status != http.StatusOK {
		return nil, resp, fmt.Errorf("GET %s: %s", rawURL, resp.Describe())
	}
	var m ASMetadata
	if err := decodeObject(resp.Body, &m, &m.Raw); err != nil {
		return nil, resp, fmt.Errorf("GET %s: %w", rawURL, err)
	}
	m.URL = rawURL
	return &m, resp, nil
}

// DiscoverAS tries the issuer's discovery URLs in client order and returns the first document
// served with 200, plus every probe made.
func (c *Client) DiscoverAS(ctx context.Context, issuer string) (*ASMetadata, []Probe, error) {
	urls, err := ASMetadataURLs(issuer)
	if err != nil {
		return nil, nil, err
	}
	var probes []Probe
	for _, u := range urls {
		m, resp, err := c.FetchASMetadata(ctx, u)
		p := Probe{URL: u, Err: err, Resp: resp}
		if resp != nil {
			p.Status = resp.Status
		}
		probes = append(probes, p)
		if err == nil {
			return m, probes, nil
		}
	}
	return nil, probes, fmt.Errorf("no authorization server metadata for issuer %s at %s", issuer, strings.Join(urls, ", "))
}

func decodeObject(body []byte, v any, raw *map[string]any) error {
	if err := json.Unmarshal(body, raw); err != nil {
		return fmt.Errorf("body is not a JSON object: %w", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("unexpected field types: %w", err)
	}
	return nil
}
