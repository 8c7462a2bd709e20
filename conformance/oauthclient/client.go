// Package oauthclient is the conformance suite's own OAuth 2.1 client for MCP: strict where a
// client must be strict (issuer comparison, PKCE S256, exact parameters), and able to send
// deliberately wrong requests for the negative checks.
//
// It never follows redirects (checks inspect every Location), returns every response in full
// (status, headers, raw body and decoded JSON) and leaves judging to the caller.
package oauthclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// Client sends the requests. HTTP must not follow redirects (New arranges that).
type Client struct {
	HTTP *http.Client
	// UserAgent is sent on every request.
	UserAgent string
	// ProtocolVersion is the MCP protocol version sent in initialize and the MCP-Protocol-Version header.
	ProtocolVersion string
}

// New wraps an HTTP client (its Transport is kept, redirects are never followed).
func New(base *http.Client) *Client {
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if base != nil {
		c.Transport, c.Jar, c.Timeout = base.Transport, base.Jar, base.Timeout
	}
	return &Client{HTTP: c, UserAgent: "mcp-auth-conformance", ProtocolVersion: "2025-11-25"}
}

// Response is an HTTP response read in full.
type Response struct {
	// URL is the request URL without its query.
	URL    string
	Status int
	Header http.Header
	Body   []byte
	// JSON is the body decoded as a JSON object (nil when it is not one).
	JSON map[string]any
}

// Str returns a string field of the JSON body ("" when absent or not a string).
func (r *Response) Str(field string) string {
	if r == nil || r.JSON == nil {
		return ""
	}
	s, _ := r.JSON[field].(string)
	return s
}

// Has reports whether the JSON body has the field.
func (r *Response) Has(field string) bool {
	if r == nil || r.JSON == nil {
		return false
	}
	_, ok := r.JSON[field]
	return ok
}

// ErrorCode is the OAuth `error` field.
func (r *Response) ErrorCode() string { return r.Str("error") }

// Location is the Location header.
func (r *Response) Location() string {
	if r == nil {
		return ""
	}
	return r.Header.Get("Location")
}

// IsRedirect reports a 3xx with a Location.
func (r *Response) IsRedirect() bool {
	return r != nil && r.Status >= 300 && r.Status < 400 && r.Location() != ""
}

// MediaType is the Content-Type without parameters, lower-cased.
func (r *Response) MediaType() string {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return strings.ToLower(r.Header.Get("Content-Type"))
	}
	return mt
}

// Describe is a one-line summary for failure messages: status, error fields, Location.
func (r *Response) Describe() string {
	if r == nil {
		return "no response"
	}
	s := fmt.Sprintf("HTTP %d", r.Status)
	if e := r.ErrorCode(); e != "" {
		s += " error=" + e
		if d := r.Str("error_description"); d != "" {
			s += fmt.Sprintf(" (%s)", clip(d, 120))
		}
	} else if r.JSON == nil && len(r.Body) > 0 && r.Status >= 400 {
		s += fmt.Sprintf(" body %q", clip(string(r.Body), 120))
	}
	if l := r.Location(); l != "" {
		s += " → " + redactLocation(l)
	}
	return s
}

// Do sends a request and reads the whole response.
func (c *Client) Do(req *http.Request) (*Response, error) {
	if req.Header.Get("User-Agent") == "" && c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the response: %w", req.Method, req.URL.Redacted(), err)
	}
	u := *req.URL
	u.RawQuery, u.Fragment = "", ""
	r := &Response{URL: u.String(), Status: resp.StatusCode, Header: resp.Header, Body: b}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		var m map[string]any
		if json.Unmarshal(t, &m) == nil {
			r.JSON = m
		}
	}
	return r, nil
}

// Get sends a GET with optional headers.
func (c *Client) Get(ctx context.Context, rawURL string, header http.Header) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	return c.Do(req)
}

// PostForm sends a form-encoded POST. The body is sent exactly as given (repeated keys stay
// repeated); header may add or override headers (e.g. Authorization for client_secret_basic).
func (c *Client) PostForm(ctx context.Context, endpoint string, form url.Values, header http.Header) (*Response, error) {
	return c.PostRaw(ctx, endpoint, "application/x-www-form-urlencoded", form.Encode(), header)
}

// PostRaw sends a POST with a literal body.
func (c *Client) PostRaw(ctx context.Context, endpoint, contentType, body string, header http.Header) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	return c.Do(req)
}

// PostJSON sends a JSON POST.
func (c *Client) PostJSON(ctx context.Context, endpoint string, body any, header http.Header) (*Response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return c.PostRaw(ctx, endpoint, "application/json", string(b), header)
}

// Options sends a CORS preflight for method from origin.
func (c *Client) Options(ctx context.Context, rawURL, origin, method, reqHeaders string) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, rawURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", method)
	if reqHeaders != "" {
		req.Header.Set("Access-Control-Request-Headers", reqHeaders)
	}
	return c.Do(req)
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// redactLocation hides codes and tokens in a Location for messages.
func redactLocation(l string) string {
	u, err := url.Parse(l)
	if err != nil {
		return l
	}
	q := u.Query()
	for _, k := range []string{"code", "access_token", "id_token", "refresh_token"} {
		if q.Has(k) {
			q.Set(k, "…")
		}
	}
	if u.RawQuery != "" {
		u.RawQuery = q.Encode()
	}
	return u.String()
}
