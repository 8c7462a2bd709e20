package setupauth0

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// The subset of Auth0's Management API v2 objects that setup-auth0 reads and writes.

type resourceServer struct {
	ID                 string  `json:"id,omitempty"`
	Name               string  `json:"name"`
	Identifier         string  `json:"identifier,omitempty"`
	SigningAlg         string  `json:"signing_alg,omitempty"`
	Scopes             []scope `json:"scopes"`
	AllowOfflineAccess bool    `json:"allow_offline_access"`
}

type scope struct {
	Value       string `json:"value"`
	Description string `json:"description,omitempty"`
}

type client struct {
	ClientID                string         `json:"client_id,omitempty"`
	ClientSecret            string         `json:"client_secret,omitempty"`
	Name                    string         `json:"name"`
	AppType                 string         `json:"app_type"`
	TokenEndpointAuthMethod string         `json:"token_endpoint_auth_method"`
	Callbacks               []string       `json:"callbacks"`
	GrantTypes              []string       `json:"grant_types"`
	OIDCConformant          bool           `json:"oidc_conformant"`
	RefreshToken            *refreshPolicy `json:"refresh_token,omitempty"`
}

type refreshPolicy struct {
	RotationType   string `json:"rotation_type,omitempty"`
	ExpirationType string `json:"expiration_type,omitempty"`
}

type clientGrant struct {
	ID       string   `json:"id,omitempty"`
	ClientID string   `json:"client_id,omitempty"`
	Audience string   `json:"audience,omitempty"`
	Scope    []string `json:"scope"`
}

type connection struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	EnabledClients []string `json:"enabled_clients"`
}

// mgmtClient calls the Management API with a client_credentials token.
type mgmtClient struct {
	base  string // "https://tenant.auth0.com" (no trailing slash)
	token string
	http  *http.Client
}

// APIError is a non-2xx answer of the Management API, in Auth0's error shape.
type APIError struct {
	Method, Path string
	Status       int
	Message      string
	ErrorCode    string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("auth0 management API %s %s: %d", e.Method, e.Path, e.Status)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	switch e.Status {
	case http.StatusUnauthorized:
		msg += " (check the management application's client ID and secret, and that it is authorized for the Management API)"
	case http.StatusForbidden:
		msg += " (grant the management application the scopes read/create/update:clients, :resource_servers, :client_grants, :connections and read:client_keys)"
	}
	return msg
}

// login gets a Management API token with the client_credentials grant.
func login(ctx context.Context, hc *http.Client, base, audience, clientID, clientSecret string) (*mgmtClient, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {clientID},
		"client_secret": {clientSecret},
		"audience":      {audience},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach the Auth0 tenant at %s: %w", base, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error            string `json:"error"`
			ErrorDescription string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &e)
		return nil, fmt.Errorf("management API token for client %q: %d %s %s (check --mgmt-client-id/--mgmt-client-secret and that the application may use the client_credentials grant for %s)",
			clientID, resp.StatusCode, e.Error, e.ErrorDescription, audience)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return nil, errors.New("management API token response has no access_token")
	}
	return &mgmtClient{base: base, token: tok.AccessToken, http: hc}, nil
}

// do sends one request; in and out may be nil.
func (m *mgmtClient) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	u := m.base + "/api/v2/" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+m.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Message   string `json:"message"`
			ErrorCode string `json:"errorCode"`
		}
		_ = json.Unmarshal(data, &e)
		return &APIError{Method: method, Path: "/api/v2/" + path, Status: resp.StatusCode, Message: e.Message, ErrorCode: e.ErrorCode}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
	}
	return nil
}

// list reads every page of a paginated collection (include_totals=true wraps items under key).
func list[T any](ctx context.Context, m *mgmtClient, path, key string, query url.Values) ([]T, error) {
	const perPage = 100
	var all []T
	for pageNo := 0; pageNo < 1000; pageNo++ {
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		q.Set("page", fmt.Sprint(pageNo))
		q.Set("per_page", fmt.Sprint(perPage))
		q.Set("include_totals", "true")
		var raw map[string]json.RawMessage
		if err := m.do(ctx, http.MethodGet, path, q, nil, &raw); err != nil {
			return nil, err
		}
		var items []T
		if err := json.Unmarshal(raw[key], &items); err != nil {
			return nil, fmt.Errorf("GET /api/v2/%s: decode %q: %w", path, key, err)
		}
		var total int
		_ = json.Unmarshal(raw["total"], &total)
		all = append(all, items...)
		if len(items) < perPage || len(all) >= total {
			return all, nil
		}
	}
	return nil, fmt.Errorf("GET /api/v2/%s: too many pages", path)
}
