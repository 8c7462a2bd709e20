// Package adminclient talks to a running mock Auth0's admin API (/mock-admin/v1/), for tests that run
// the mock as a separate process or container: read the requests it received, move its clock, inject
// faults, rotate keys, revoke a user's grants.
package adminclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/control"
)

// RecordedRequest is one request the mock received.
type RecordedRequest = control.RecordedRequest

// Fault is injected into an endpoint's responses.
type Fault = control.Fault

// Client is an admin API client.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client for the mock at issuer (e.g. "http://127.0.0.1:8081/"). token may be empty.
func New(issuer, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimSuffix(issuer, "/") + control.AdminPrefix, token: token, http: hc}
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("mock Auth0 admin API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		if resp.StatusCode == http.StatusNotFound && e.Error == "" {
			return fmt.Errorf("mock Auth0 admin API %s %s: 404: is the admin API enabled (--admin)?", method, path)
		}
		return fmt.Errorf("mock Auth0 admin API %s %s: %s: %s", method, path, resp.Status, e.Error)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode %s response: %w", path, err)
		}
	}
	return nil
}

// Requests returns recorded requests to path ("" = all) with sequence number > since.
func (c *Client) Requests(ctx context.Context, path string, since int64) ([]RecordedRequest, error) {
	q := url.Values{}
	if path != "" {
		q.Set("path", path)
	}
	if since > 0 {
		q.Set("since", strconv.FormatInt(since, 10))
	}
	var out struct {
		Requests []RecordedRequest `json:"requests"`
	}
	err := c.do(ctx, http.MethodGet, "requests?"+q.Encode(), nil, &out)
	return out.Requests, err
}

// ResetRequests forgets the recorded requests.
func (c *Client) ResetRequests(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, "requests", nil, nil)
}

// Advance moves the mock's clock forward.
func (c *Client) Advance(ctx context.Context, d time.Duration) error {
	return c.do(ctx, http.MethodPost, "clock/advance", map[string]string{"duration": d.String()}, nil)
}

// Now reads the mock's clock.
func (c *Client) Now(ctx context.Context) (time.Time, error) {
	var out struct {
		Now time.Time `json:"now"`
	}
	err := c.do(ctx, http.MethodGet, "clock", nil, &out)
	return out.Now, err
}

// RotateSigningKey rotates the signing key and returns the new kid.
func (c *Client) RotateSigningKey(ctx context.Context) (string, error) {
	var out struct {
		KID string `json:"kid"`
	}
	err := c.do(ctx, http.MethodPost, "keys/rotate", struct{}{}, &out)
	return out.KID, err
}

// SetFault installs a fault (f.Path names the endpoint).
func (c *Client) SetFault(ctx context.Context, f Fault) error {
	return c.do(ctx, http.MethodPost, "faults", f, nil)
}

// ClearFaults removes every fault.
func (c *Client) ClearFaults(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, "faults", nil, nil)
}

// RevokeUserGrants revokes a user's refresh tokens, consents and sessions.
func (c *Client) RevokeUserGrants(ctx context.Context, sub string) (int, error) {
	var out struct {
		Revoked int `json:"revoked"`
	}
	err := c.do(ctx, http.MethodPost, "users/"+url.PathEscape(sub)+"/revoke-grants", struct{}{}, &out)
	return out.Revoked, err
}

// SetUserGroups replaces a user's groups (the post-login Action's groups claim in the next tokens).
func (c *Client) SetUserGroups(ctx context.Context, sub string, groups []string) error {
	return c.do(ctx, http.MethodPut, "users/"+url.PathEscape(sub)+"/groups", map[string][]string{"groups": nonNil(groups)}, nil)
}

// SetUserRoles replaces a user's roles.
func (c *Client) SetUserRoles(ctx context.Context, sub string, roles []string) error {
	return c.do(ctx, http.MethodPut, "users/"+url.PathEscape(sub)+"/roles", map[string][]string{"roles": nonNil(roles)}, nil)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
