// Package bearer is the OAuth 2.0 resource-server check in front of the MCP endpoint.
//
// Every request to the MCP endpoint passes through Middleware, which handles these cases (check IDs
// from shared/spec/auth-checks.md; the test named in brackets proves each one):
//
//   - CORS preflight (OPTIONS) from an allowed Origin: 204 with the CORS headers, no token needed
//     [TestPreflight]; from any other Origin: 403 [TestPreflight].
//   - RS-13: a request whose Origin header is not allowed: 403, before anything else [TestOrigin].
//   - RS-01, RS-02, SC-01, PRM-04: no Authorization header (or a non-Bearer scheme, or a token only in
//     the query string or form body, RS-06): 401 with
//     `WWW-Authenticate: Bearer resource_metadata="<absolute URL>", scope="<challenge scopes>"` and no
//     `error` attribute [TestMissingToken, TestTokenOutsideHeader]. The challenge scopes are every
//     scope the tool set needs (ChallengeScopes, e.g. "mcp:read mcp:write"), so clients that follow
//     the MCP scope selection strategy ask for them all at once and the user decides on the consent
//     page [TestChallengeScopes].
//   - RS-07: the scheme is matched case-insensitively [TestSchemeCaseInsensitive].
//   - RS-12: a malformed Authorization header (empty token, two tokens, several Authorization
//     headers, characters outside RFC 6750 b64token): 400 invalid_request or 401 invalid_token,
//     never 200 or 500 [TestMalformedHeader].
//   - RS-03, RS-04, RS-05: any error from the Verifier (bad signature, expired, wrong iss/aud,
//     alg=none, refresh token, upstream token): 401 `error="invalid_token"` [TestInvalidToken].
//   - The Verifier could not decide (an error wrapping ErrUnavailable: the grant store is down): 503
//     `temporarily_unavailable` with Retry-After and no challenge, so clients keep a valid token and
//     retry instead of starting a new sign-in [TestVerifierUnavailable].
//   - SC-02, SC-03: a valid token without a scope every request needs, or a tools/call of a tool
//     that needs more (e.g. mcp:write for mutating tools): 403 with `error="insufficient_scope"` and
//     every scope the operation needs in one `scope` attribute, as an HTTP step-up challenge rather
//     than a JSON-RPC error [TestInsufficientScope, TestToolStepUp]. JSON-RPC batches are checked
//     message by message [TestToolStepUpBatch].
//   - SC-06: a down-scoped token works for the operations it covers [TestToolStepUp].
//   - RS-08: every request is verified; an Mcp-Session-Id never stands in for a token
//     [TestSessionIsNotAuthentication].
//   - CLI-17: `Access-Control-Expose-Headers: WWW-Authenticate` on every response [TestOrigin].
//   - The caller's Identity (sub, client_id, scopes) goes into the request context for the tools
//     [TestIdentityInContext].
//   - A request carrying any Impersonate-* header (Impersonate-User, -Group, -Uid, -Extra-*): 400
//     invalid_request saying why, before the token is looked at. Who a tool call acts as in
//     Kubernetes comes only from the server's own grant (the Identity's KubeUser), never from the
//     client; such headers are never forwarded, and refusing them makes an attempt visible
//     [TestImpersonateHeadersRefused].
//
// The request body is read at most once, bounded by MaxBodyBytes (413 beyond it), and handed on
// unchanged. Tokens never appear in logs or error descriptions.
package bearer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cnpg-mcp/cnpg-mcp/server/identity"
)

// Verifier validates an access token and returns who it was issued to. An error wrapping
// ErrUnavailable means it could not decide (503); any other error means the token is not acceptable
// here (401 invalid_token). The error text is logged, never returned.
type Verifier interface {
	VerifyAccessToken(ctx context.Context, token string) (identity.Identity, error)
}

// ErrUnavailable is what a Verifier wraps when it cannot judge a token now (its grant store is
// unreachable): the request gets 503 temporarily_unavailable, never 401.
var ErrUnavailable = errors.New("bearer: token verification temporarily unavailable")

// RetryAfterSeconds is the Retry-After of a 503 from the check.
const RetryAfterSeconds = 5

// VerifierFunc adapts a function to Verifier.
type VerifierFunc func(ctx context.Context, token string) (identity.Identity, error)

// VerifyAccessToken calls f.
func (f VerifierFunc) VerifyAccessToken(ctx context.Context, token string) (identity.Identity, error) {
	return f(ctx, token)
}

// Options configures the check.
type Options struct {
	// Verifier validates tokens. Required.
	Verifier Verifier
	// ResourceMetadataURL is the absolute URL of this resource's RFC 9728 metadata, sent in every
	// challenge. Required.
	ResourceMetadataURL string
	// RequiredScopes are needed for any request (e.g. "mcp:read"). Empty means a valid token is
	// enough.
	RequiredScopes []string
	// ChallengeScopes are the `scope` of the 401 challenge: what a client should ask for when it
	// authorizes (MCP 2025-11-25 "Scope Selection Strategy": clients use the challenge's scope as
	// given). Empty means RequiredScopes.
	ChallengeScopes []string
	// ToolScopes returns the extra scopes a tools/call of the named tool needs (e.g. "mcp:write" for
	// mutating tools). Nil means no per-tool scopes.
	ToolScopes func(tool string) []string
	// AllowedOrigins are the exact origins ("https://app.example") browsers may call from. Requests
	// without an Origin header are not affected. The origin of ResourceMetadataURL is always allowed.
	AllowedOrigins []string
	// MaxBodyBytes bounds the request body (default 1 MiB).
	MaxBodyBytes int64
	// MaxTokenBytes bounds the token length (default 8 KiB); longer tokens are invalid.
	MaxTokenBytes int
	// Logger receives debug lines about rejected requests (no tokens). Default: slog.Default().
	Logger *slog.Logger
}

// Middleware is the configured check.
type Middleware struct {
	opts      Options
	origins   map[string]bool
	required  []string
	challenge []string
}

// DefaultMaxBodyBytes is the request body limit when Options.MaxBodyBytes is zero.
const DefaultMaxBodyBytes = 1 << 20

// New validates opts and returns the middleware.
func New(opts Options) (*Middleware, error) {
	if opts.Verifier == nil {
		return nil, errors.New("bearer: a token Verifier is required")
	}
	u, err := url.Parse(opts.ResourceMetadataURL)
	if err != nil || !u.IsAbs() || u.Host == "" || strings.ContainsAny(opts.ResourceMetadataURL, "\"\\ ") {
		return nil, fmt.Errorf("bearer: ResourceMetadataURL %q must be an absolute URL (e.g. https://mcp.example.com/.well-known/oauth-protected-resource/mcp)", opts.ResourceMetadataURL)
	}
	for _, s := range append(append(slices.Clone(opts.RequiredScopes), opts.ChallengeScopes...), "") {
		if strings.ContainsAny(s, "\" \\") {
			return nil, fmt.Errorf("bearer: scope %q contains a space, quote or backslash", s)
		}
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxTokenBytes <= 0 {
		opts.MaxTokenBytes = 8 << 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m := &Middleware{opts: opts, origins: map[string]bool{strings.ToLower(u.Scheme + "://" + u.Host): true}, required: uniq(opts.RequiredScopes)}
	m.challenge = uniq(append(slices.Clone(m.required), opts.ChallengeScopes...))
	for _, o := range opts.AllowedOrigins {
		ou, err := url.Parse(o)
		if err != nil || ou.Scheme == "" || ou.Host == "" || (ou.Path != "" && ou.Path != "/") {
			return nil, fmt.Errorf("bearer: allowed origin %q must look like https://host[:port]", o)
		}
		m.origins[strings.ToLower(ou.Scheme+"://"+ou.Host)] = true
	}
	return m, nil
}

// Wrap returns next behind the check.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, Mcp-Session-Id, Mcp-Protocol-Version")
		origin := r.Header.Get("Origin")
		if origin != "" {
			h.Add("Vary", "Origin")
			if !m.origins[strings.ToLower(origin)] {
				m.reject(w, r, http.StatusForbidden, "", "forbidden_origin", "the Origin of this request is not allowed to call the MCP endpoint")
				return
			}
			h.Set("Access-Control-Allow-Origin", origin)
		}
		if r.Method == http.MethodOptions {
			if origin == "" {
				http.Error(w, "preflight requests need an Origin header", http.StatusBadRequest)
				return
			}
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Mcp-Method, Mcp-Name, Last-Event-ID")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}

		if name := impersonateHeader(r.Header); name != "" {
			m.opts.Logger.WarnContext(r.Context(), "bearer: request with an Impersonate header refused", "header", name, "path", r.URL.Path)
			writeJSONError(w, http.StatusBadRequest, "invalid_request", "the "+name+" header is not accepted: this server decides itself who a tool call acts as in Kubernetes (the signed-in user, from its authorization), never from request headers; send the request without Impersonate-* headers")
			return
		}
		token, status, code, desc := m.extract(r)
		if status != 0 {
			m.reject(w, r, status, strings.Join(m.challenge, " "), code, desc)
			return
		}
		id, err := m.opts.Verifier.VerifyAccessToken(r.Context(), token)
		if errors.Is(err, ErrUnavailable) {
			m.opts.Logger.WarnContext(r.Context(), "bearer: token not verifiable now: answering 503", "reason", err.Error(), "path", r.URL.Path)
			w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
			writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the access token cannot be checked right now; keep it and try again shortly")
			return
		}
		if err != nil {
			m.opts.Logger.DebugContext(r.Context(), "bearer: token rejected", "reason", err.Error(), "path", r.URL.Path)
			m.reject(w, r, http.StatusUnauthorized, strings.Join(m.challenge, " "), "invalid_token", "the access token is invalid, expired or not issued for this resource")
			return
		}
		if missing := id.Missing(m.required); len(missing) > 0 {
			m.reject(w, r, http.StatusForbidden, m.scopeAttr(nil), "insufficient_scope", "the access token lacks a scope this endpoint requires")
			return
		}
		if r.Method == http.MethodPost && r.Body != nil {
			body, err := readAll(http.MaxBytesReader(w, r.Body, m.opts.MaxBodyBytes), r.ContentLength, m.opts.MaxBodyBytes)
			_ = r.Body.Close()
			if err != nil {
				var tooBig *http.MaxBytesError
				if errors.As(err, &tooBig) {
					writeJSONError(w, http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("the request body exceeds %d bytes", m.opts.MaxBodyBytes))
					return
				}
				writeJSONError(w, http.StatusBadRequest, "invalid_request", "the request body could not be read")
				return
			}
			if m.opts.ToolScopes != nil {
				if need := m.toolScopes(body); len(need) > 0 && len(id.Missing(need)) > 0 {
					m.reject(w, r, http.StatusForbidden, m.scopeAttr(need), "insufficient_scope", "this tool needs a scope the access token was not granted; authorize again with the scopes listed in the challenge")
					return
				}
			}
			r.Body = &Body{Reader: bytes.NewReader(body), b: body}
			r.ContentLength = int64(len(body))
		}
		next.ServeHTTP(w, r.WithContext(identity.NewContext(r.Context(), id)))
	})
}

// Body is the request body a handler behind the check receives: the bytes the check read, to be
// read again, or taken whole with RequestBody instead of being copied once more.
type Body struct {
	*bytes.Reader
	b []byte
}

// RequestBody returns the whole body, however much of it was read. The caller must not modify it.
func (b *Body) RequestBody() []byte { return b.b }

// Close does nothing.
func (b *Body) Close() error { return nil }

// readAll reads r whole, into one buffer of the announced length when there is one (io.ReadAll
// would start at 512 bytes and grow).
func readAll(r io.Reader, length, limit int64) ([]byte, error) {
	if length <= 0 || length > limit {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, length+1) // +1: EOF is seen without growing
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // longer than announced: grow as io.ReadAll does
		}
	}
}

// impersonateHeader returns the canonical name of the first Impersonate-* header of h ("" if none).
func impersonateHeader(h http.Header) string {
	for name := range h {
		if len(name) >= len("Impersonate-") && strings.EqualFold(name[:len("Impersonate-")], "Impersonate-") {
			return http.CanonicalHeaderKey(name)
		}
	}
	return ""
}

// extract returns the bearer token, or the rejection to send.
func (m *Middleware) extract(r *http.Request) (token string, status int, code, desc string) {
	values := r.Header.Values("Authorization")
	switch {
	case len(values) == 0:
		return "", http.StatusUnauthorized, "", ""
	case len(values) > 1:
		return "", http.StatusBadRequest, "invalid_request", "send exactly one Authorization header"
	}
	scheme, rest, _ := strings.Cut(strings.TrimLeft(values[0], " "), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		// Another scheme (Basic, DPoP, ...) carries no credentials for this resource (RFC 6750 §3.1).
		return "", http.StatusUnauthorized, "", ""
	}
	token = strings.Trim(rest, " ")
	switch {
	case token == "":
		return "", http.StatusBadRequest, "invalid_request", "the Bearer scheme needs a token"
	case strings.ContainsAny(token, " \t"):
		return "", http.StatusBadRequest, "invalid_request", "send exactly one token after Bearer"
	case len(token) > m.opts.MaxTokenBytes || !isB64Token(token):
		return "", http.StatusUnauthorized, "invalid_token", "the access token is malformed"
	}
	return token, 0, "", ""
}

// isB64Token reports whether s matches RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/':
		default:
			return false
		}
	}
	return true
}

// toolScopes returns every scope the JSON-RPC message(s) in body need beyond nothing: the required
// scopes plus the per-tool scopes of each tools/call. Unparseable bodies need nothing extra here;
// the MCP handler rejects them, and the tool layer re-checks scopes itself.
func (m *Middleware) toolScopes(body []byte) []string {
	type msg struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	var msgs []msg
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if json.Unmarshal(trimmed, &msgs) != nil {
			return nil
		}
	} else {
		var one msg
		if json.Unmarshal(trimmed, &one) != nil {
			return nil
		}
		msgs = []msg{one}
	}
	var extra []string
	for _, mm := range msgs {
		if mm.Method == "tools/call" {
			extra = append(extra, m.opts.ToolScopes(mm.Params.Name)...)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	return uniq(append(slices.Clone(m.required), extra...))
}

// scopeAttr is the `scope` of a challenge: every scope the operation needs.
func (m *Middleware) scopeAttr(need []string) string {
	if need == nil {
		need = m.required
	}
	return strings.Join(need, " ")
}

// reject writes a challenge. A 401 without code carries no error attribute (RFC 6750 §3.1).
func (m *Middleware) reject(w http.ResponseWriter, r *http.Request, status int, scope, code, desc string) {
	if status == http.StatusUnauthorized || (status == http.StatusForbidden && code == "insufficient_scope") || (status == http.StatusBadRequest && code == "invalid_request") {
		var b strings.Builder
		b.WriteString("Bearer ")
		var parts []string
		if code != "" {
			parts = append(parts, fmt.Sprintf("error=%q", code))
			if desc != "" {
				parts = append(parts, fmt.Sprintf("error_description=%q", desc))
			}
		}
		parts = append(parts, fmt.Sprintf("resource_metadata=%q", m.opts.ResourceMetadataURL))
		if scope != "" {
			parts = append(parts, fmt.Sprintf("scope=%q", scope))
		}
		b.WriteString(strings.Join(parts, ", "))
		w.Header().Set("WWW-Authenticate", b.String())
	}
	if code == "" {
		code, desc = "unauthorized", "this endpoint needs an OAuth access token in the Authorization header; discover how to get one from the resource_metadata URL in WWW-Authenticate"
	}
	m.opts.Logger.DebugContext(r.Context(), "bearer: request rejected", "status", status, "error", code, "path", r.URL.Path)
	writeJSONError(w, status, code, desc)
}

func writeJSONError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func uniq(in []string) []string {
	var out []string
	for _, s := range in {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
