package bearer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/bearer"
	"github.com/cnpg-mcp/cnpg-mcp/server/bearer/bearertest"
	"github.com/cnpg-mcp/cnpg-mcp/server/identity"
)

const prmURL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"

// setup returns a server with the check in front of a handler that echoes the identity it got.
func setup(t *testing.T, mut func(*bearer.Options)) (*httptest.Server, *bearertest.Issuer) {
	t.Helper()
	iss := bearertest.NewIssuer("https://mcp.example.com", "https://mcp.example.com/mcp")
	opts := bearer.Options{
		Verifier:            iss,
		ResourceMetadataURL: prmURL,
		RequiredScopes:      []string{"mcp:read"},
		ToolScopes: func(tool string) []string {
			switch tool {
			case "delete_postgres_cluster":
				return []string{"mcp:write"}
			case "two_scopes":
				return []string{"mcp:write", "mcp:admin"}
			}
			return nil
		},
		AllowedOrigins: []string{"http://localhost:6274"},
	}
	if mut != nil {
		mut(&opts)
	}
	m, err := bearer.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := identity.FromContext(r.Context())
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": ok, "sub": id.Subject, "client_id": id.ClientID, "scopes": id.Scopes, "body": string(body)})
	})
	srv := httptest.NewServer(m.Wrap(next))
	t.Cleanup(srv.Close)
	return srv, iss
}

type req struct {
	method string
	header http.Header
	body   string
	query  string
	origin string
	authz  []string
}

func do(t *testing.T, srv *httptest.Server, rq req) *http.Response {
	t.Helper()
	if rq.method == "" {
		rq.method = http.MethodPost
	}
	if rq.body == "" && rq.method == http.MethodPost {
		rq.body = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	}
	r, err := http.NewRequest(rq.method, srv.URL+"/mcp"+rq.query, strings.NewReader(rq.body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	for k, v := range rq.header {
		r.Header[k] = v
	}
	for _, a := range rq.authz {
		r.Header.Add("Authorization", a)
	}
	if rq.origin != "" {
		r.Header.Set("Origin", rq.origin)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// challenge parses a WWW-Authenticate Bearer header strictly (SC-05: each attribute at most once).
func challenge(t *testing.T, resp *http.Response) map[string]string {
	t.Helper()
	vals := resp.Header.Values("WWW-Authenticate")
	if len(vals) != 1 {
		t.Fatalf("want exactly one WWW-Authenticate header, got %q", vals)
	}
	v := vals[0]
	if !strings.HasPrefix(v, "Bearer ") {
		t.Fatalf("challenge scheme: %q", v)
	}
	out := map[string]string{}
	rest := strings.TrimPrefix(v, "Bearer ")
	for rest != "" {
		k, after, ok := strings.Cut(rest, "=\"")
		if !ok {
			t.Fatalf("malformed challenge %q", v)
		}
		val, after2, ok := strings.Cut(after, "\"")
		if !ok {
			t.Fatalf("unterminated value in %q", v)
		}
		k = strings.TrimSpace(k)
		if _, dup := out[k]; dup {
			t.Fatalf("attribute %s repeated in %q", k, v)
		}
		for _, c := range val {
			if c < 0x20 || c == 0x7f || c == '\\' {
				t.Fatalf("attribute %s has a disallowed character: %q", k, val)
			}
		}
		out[k] = val
		rest = strings.TrimPrefix(strings.TrimSpace(after2), ",")
		rest = strings.TrimSpace(rest)
	}
	return out
}

func TestNewValidatesOptions(t *testing.T) {
	iss := bearertest.NewIssuer("a", "b")
	for name, o := range map[string]bearer.Options{
		"no verifier":     {ResourceMetadataURL: prmURL},
		"relative PRM":    {Verifier: iss, ResourceMetadataURL: "/.well-known/oauth-protected-resource"},
		"quote in PRM":    {Verifier: iss, ResourceMetadataURL: `https://x/"`},
		"bad origin":      {Verifier: iss, ResourceMetadataURL: prmURL, AllowedOrigins: []string{"localhost"}},
		"origin w/ path":  {Verifier: iss, ResourceMetadataURL: prmURL, AllowedOrigins: []string{"https://a.example/x"}},
		"space in scope":  {Verifier: iss, ResourceMetadataURL: prmURL, RequiredScopes: []string{"a b"}},
		"quote in scope":  {Verifier: iss, ResourceMetadataURL: prmURL, RequiredScopes: []string{`a"`}},
		"backslash scope": {Verifier: iss, ResourceMetadataURL: prmURL, RequiredScopes: []string{`a\`}},
	} {
		if _, err := bearer.New(o); err == nil {
			t.Errorf("%s: New accepted invalid options", name)
		}
	}
}

// RS-01, RS-02, SC-01, PRM-04, PRM-07.
func TestMissingToken(t *testing.T) {
	srv, _ := setup(t, nil)
	for _, authz := range [][]string{nil, {"Basic dXNlcjpwYXNz"}, {"DPoP abc"}} {
		resp := do(t, srv, req{authz: authz})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%q: status %d, want 401", authz, resp.StatusCode)
		}
		c := challenge(t, resp)
		if _, has := c["error"]; has {
			t.Fatalf("%q: RS-02: no error attribute expected without credentials, got %v", authz, c)
		}
		if c["resource_metadata"] != prmURL {
			t.Fatalf("RS-01: resource_metadata = %q", c["resource_metadata"])
		}
		if c["scope"] != "mcp:read" || strings.Contains(c["scope"], "offline_access") {
			t.Fatalf("SC-01/PRM-07: scope = %q", c["scope"])
		}
		if got := resp.Header.Get("Access-Control-Expose-Headers"); !strings.Contains(got, "WWW-Authenticate") {
			t.Fatalf("CLI-17: expose headers %q", got)
		}
	}
}

// SC-01 with ChallengeScopes: the 401 (no token, or an invalid one) names every scope the tool set
// needs, so a client following the MCP scope selection strategy asks for all of them at once; a
// 403 for a missing required scope still names only what that request needs; a token with the
// required scope alone passes (SC-06: the challenge is what to ask for, not what every request needs).
func TestChallengeScopes(t *testing.T) {
	srv, iss := setup(t, func(o *bearer.Options) { o.ChallengeScopes = []string{"mcp:read", "mcp:write"} })
	for name, authz := range map[string][]string{"no token": nil, "invalid token": {"Bearer not-a-valid-token"}} {
		resp := do(t, srv, req{authz: authz})
		if c := challenge(t, resp); resp.StatusCode != http.StatusUnauthorized || c["scope"] != "mcp:read mcp:write" {
			t.Fatalf("%s: %d %v, want 401 with scope \"mcp:read mcp:write\"", name, resp.StatusCode, c)
		}
	}
	resp := do(t, srv, req{authz: []string{"Bearer " + iss.Mint(t, bearertest.Claims{Scopes: []string{"openid"}})}})
	if c := challenge(t, resp); resp.StatusCode != http.StatusForbidden || c["scope"] != "mcp:read" {
		t.Fatalf("missing required scope: %d %v, want 403 with scope \"mcp:read\"", resp.StatusCode, c)
	}
	if resp := do(t, srv, req{authz: []string{"Bearer " + iss.Mint(t, bearertest.Claims{Scopes: []string{"mcp:read"}})}}); resp.StatusCode != 200 {
		t.Fatalf("read token on tools/list: %d", resp.StatusCode)
	}
	// The required scopes always lead the challenge, even when ChallengeScopes forgets them.
	srv2, _ := setup(t, func(o *bearer.Options) { o.ChallengeScopes = []string{"mcp:write"} })
	if c := challenge(t, do(t, srv2, req{})); c["scope"] != "mcp:read mcp:write" {
		t.Fatalf("challenge without the required scope listed: %v", c)
	}
	if _, err := bearer.New(bearer.Options{Verifier: iss, ResourceMetadataURL: prmURL, ChallengeScopes: []string{"a b"}}); err == nil {
		t.Fatal("a challenge scope with a space was accepted")
	}
}

// RS-06: tokens outside the Authorization header are ignored.
func TestTokenOutsideHeader(t *testing.T) {
	srv, iss := setup(t, nil)
	tok := iss.Mint(t, bearertest.Claims{Scopes: []string{"mcp:read"}})
	for name, rq := range map[string]req{
		"query": {query: "?access_token=" + tok},
		"form":  {body: "access_token=" + tok, header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}},
	} {
		resp := do(t, srv, rq)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: status %d, want 401", name, resp.StatusCode)
		}
		if _, has := challenge(t, resp)["error"]; has {
			t.Fatalf("%s: error attribute present", name)
		}
	}
}

// RS-07.
func TestSchemeCaseInsensitive(t *testing.T) {
	srv, iss := setup(t, nil)
	tok := iss.Mint(t, bearertest.Claims{Scopes: []string{"mcp:read"}})
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		if resp := do(t, srv, req{authz: []string{scheme + " " + tok}}); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", scheme, resp.StatusCode)
		}
	}
}

// RS-12: malformed headers give 400/401, never 200 or 500.
func TestMalformedHeader(t *testing.T) {
	srv, iss := setup(t, nil)
	tok := iss.Mint(t, bearertest.Claims{Scopes: []string{"mcp:read"}})
	cases := []struct {
		name  string
		authz []string
		want  int
		code  string
	}{
		{"bearer without token", []string{"Bearer"}, 400, "invalid_request"},
		{"bearer with spaces only", []string{"Bearer    "}, 400, "invalid_request"},
		{"two tokens", []string{"Bearer " + tok + " " + tok}, 400, "invalid_request"},
		{"two headers", []string{"Bearer " + tok, "Bearer " + tok}, 400, "invalid_request"},
		{"non-b64token characters", []string{"Bearer abc\"def"}, 401, "invalid_token"},
		{"comma", []string{"Bearer a,b"}, 401, "invalid_token"},
		{"only padding", []string{"Bearer ==="}, 401, "invalid_token"},
		{"huge token", []string{"Bearer " + strings.Repeat("a", 9000)}, 401, "invalid_token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(t, srv, req{authz: tc.authz})
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if c := challenge(t, resp); c["error"] != tc.code {
				t.Fatalf("error = %q, want %q", c["error"], tc.code)
			}
		})
	}
}

// RS-03, RS-04, RS-05: every token the verifier refuses is 401 invalid_token.
func TestInvalidToken(t *testing.T) {
	srv, iss := setup(t, nil)
	other := bearertest.NewIssuer("https://mcp.example.com", "https://mcp.example.com/mcp")
	good := iss.Mint(t, bearertest.Claims{Scopes: []string{"mcp:read"}})
	parts := strings.Split(good, ".")
	cases := map[string]string{
		"random string":           "definitely-not-a-jwt",
		"signed with another key": other.Mint(t, bearertest.Claims{Scopes: []string{"mcp:read"}}),
		"expired":                 iss.Mint(t, bearertest.Claims{Scopes: []string{"mcp:read"}, ExpiresIn: -time.Minute}),
		"wrong issuer":            iss.Mint(t, bearertest.Claims{Scopes: []string{"mcp:read"}, Issuer: "https://evil.example"}),
		"wrong audience (RS-04)":  iss.Mint(t, bearertest.Claims{Scopes: []string{"mcp:read"}, Audience: "https://other.example/mcp"}),
		"alg none":                bearertest.UnsignedNone(t, "https://mcp.example.com", "https://mcp.example.com/mcp"),
		"truncated":               parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])/2],
		"refresh token type":      iss.Mint(t, bearertest.Claims{Scopes: []string{"mcp:read"}, Type: "refresh+jwt"}),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			resp := do(t, srv, req{authz: []string{"Bearer " + tok}})
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			c := challenge(t, resp)
			if c["error"] != "invalid_token" || c["resource_metadata"] != prmURL {
				t.Fatalf("challenge %v", c)
			}
			var body map[string]string
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if body["error"] != "invalid_token" || strings.Contains(body["error_description"], tok) {
				t.Fatalf("body %v", body)
			}
		})
	}
}

// SC-02 for the server-wide scope.
func TestInsufficientScope(t *testing.T) {
	srv, iss := setup(t, nil)
	tok := iss.Mint(t, bearertest.Claims{Scopes: []string{"openid"}})
	resp := do(t, srv, req{authz: []string{"Bearer " + tok}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
	c := challenge(t, resp)
	if c["error"] != "insufficient_scope" || c["scope"] != "mcp:read" || c["resource_metadata"] != prmURL {
		t.Fatalf("challenge %v", c)
	}
}

// SC-02, SC-03, SC-06: per-tool scopes surface as an HTTP 403 step-up challenge listing every scope
// the call needs; a down-scoped token still works for the tools it covers.
func TestToolStepUp(t *testing.T) {
	srv, iss := setup(t, nil)
	readOnly := iss.Mint(t, bearertest.Claims{Scopes: []string{"mcp:read"}})
	writer := iss.Mint(t, bearertest.Claims{Scopes: []string{"mcp:read", "mcp:write"}})
	call := func(tool string) string {
		return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"` + tool + `","arguments":{"name":"pg"}}}`
	}
	// SC-06: read tools with a read token.
	if resp := do(t, srv, req{authz: []string{"Bearer " + readOnly}, body: call("list_postgres_clusters")}); resp.StatusCode != 200 {
		t.Fatalf("read tool with read token: %d", resp.StatusCode)
	}
	resp := do(t, srv, req{authz: []string{"Bearer " + readOnly}, body: call("delete_postgres_cluster")})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("mutating tool with read token: %d, want 403", resp.StatusCode)
	}
	if c := challenge(t, resp); c["error"] != "insufficient_scope" || c["scope"] != "mcp:read mcp:write" {
		t.Fatalf("SC-03 challenge %v", c)
	}
	// SC-03: two missing scopes in one challenge.
	resp = do(t, srv, req{authz: []string{"Bearer " + readOnly}, body: call("two_scopes")})
	if c := challenge(t, resp); resp.StatusCode != 403 || c["scope"] != "mcp:read mcp:write mcp:admin" {
		t.Fatalf("two scopes: %d %v", resp.StatusCode, c)
	}
	// After step-up the same call passes and the body reaches the handler unchanged.
	resp = do(t, srv, req{authz: []string{"Bearer " + writer}, body: call("delete_postgres_cluster")})
	var got map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&got)
	if resp.StatusCode != 200 || got["body"] != call("delete_postgres_cluster") {
		t.Fatalf("stepped-up call: %d %v", resp.StatusCode, got)
	}
}

func TestToolStepUpBatch(t *testing.T) {
	srv, iss := setup(t, nil)
	readOnly := iss.Mint(t, bearertest.Claims{Scopes: []string{"mcp:read"}})
	batch := `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_postgres_cluster"}}]`
	if resp := do(t, srv, req{authz: []string{"Bearer " + readOnly}, body: batch}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("batch hiding a mutating call: %d, want 403", resp.StatusCode)
	}
}

func TestBodyLimit(t *testing.T) {
	srv, iss := setup(t, func(o *bearer.Options) { o.MaxBodyBytes = 64 })
	tok := iss.Mint(t, bearertest.Claims{Scopes: []string{"mcp:read"}})
	resp := do(t, srv, req{authz: []string{"Bearer " + tok}, body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"x":"` + strings.Repeat("a", 100) + `"}}`})
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}

// RS-13, CLI-17.
func TestOrigin(t *testing.T) {
	srv, iss := setup(t, nil)
	tok := iss.Mint(t, bearertest.Claims{Scopes: []string{"mcp:read"}})
	for _, o := range []string{"https://evil.example", "http://localhost:6275", "null"} {
		if resp := do(t, srv, req{authz: []string{"Bearer " + tok}, origin: o}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("origin %s: status %d, want 403", o, resp.StatusCode)
		}
	}
	for _, o := range []string{"http://localhost:6274", "https://mcp.example.com", "HTTPS://MCP.EXAMPLE.COM"} {
		resp := do(t, srv, req{authz: []string{"Bearer " + tok}, origin: o})
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != o {
			t.Fatalf("origin %s: status %d, ACAO %q", o, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		if !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
			t.Fatal("WWW-Authenticate not exposed")
		}
	}
	// Origin is checked before the token: an evil origin without a token is 403, not 401.
	if resp := do(t, srv, req{origin: "https://evil.example"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("evil origin, no token: %d", resp.StatusCode)
	}
	// Cross-origin 401 from an allowed origin still exposes the challenge.
	resp := do(t, srv, req{origin: "http://localhost:6274"})
	if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Fatalf("allowed origin without token: %d", resp.StatusCode)
	}
}

// The server's own origin is allowed even when public_url spells the host with capitals.
func TestOriginOwnOriginCaseInsensitive(t *testing.T) {
	srv, iss := setup(t, func(o *bearer.Options) {
		o.ResourceMetadataURL = "https://MCP.Example.COM/.well-known/oauth-protected-resource/mcp"
	})
	tok := iss.Mint(t, bearertest.Claims{Scopes: []string{"mcp:read"}})
	if resp := do(t, srv, req{authz: []string{"Bearer " + tok}, origin: "https://mcp.example.com"}); resp.StatusCode != 200 {
		t.Fatalf("own origin refused: %d", resp.StatusCode)
	}
}

func TestPreflight(t *testing.T) {
	srv, _ := setup(t, nil)
	resp := do(t, srv, req{method: http.MethodOptions, origin: "http://localhost:6274", header: http.Header{"Access-Control-Request-Method": {"POST"}}})
	if resp.StatusCode != http.StatusNoContent || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := do(t, srv, req{method: http.MethodOptions, origin: "https://evil.example"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("evil preflight: %d", resp.StatusCode)
	}
}

// RS-08: a session id is never authentication; each request is verified again.
func TestSessionIsNotAuthentication(t *testing.T) {
	srv, iss := setup(t, nil)
	tok := iss.Mint(t, bearertest.Claims{Scopes: []string{"mcp:read"}})
	if resp := do(t, srv, req{authz: []string{"Bearer " + tok}}); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	resp := do(t, srv, req{header: http.Header{"Mcp-Session-Id": {"any-session"}}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session without token: %d", resp.StatusCode)
	}
	if n := iss.Verifications(); n != 1 {
		t.Fatalf("verifier called %d times, want 1 (the second request had no token)", n)
	}
	// A revoked token stops working at once, whatever session it was used with.
	iss.Revoke(tok)
	if resp := do(t, srv, req{authz: []string{"Bearer " + tok}, header: http.Header{"Mcp-Session-Id": {"any-session"}}}); resp.StatusCode != 401 {
		t.Fatalf("revoked token: %d", resp.StatusCode)
	}
}

func TestIdentityInContext(t *testing.T) {
	srv, iss := setup(t, nil)
	tok := iss.Mint(t, bearertest.Claims{Subject: "auth0|alice", ClientID: "client-1", Scopes: []string{"mcp:read", "mcp:write"}})
	resp := do(t, srv, req{authz: []string{"Bearer " + tok}})
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got["ok"] != true || got["sub"] != "auth0|alice" || got["client_id"] != "client-1" {
		t.Fatalf("identity: %v", got)
	}
}

func TestVerifierFunc(t *testing.T) {
	var v bearer.Verifier = bearer.VerifierFunc(func(_ context.Context, tok string) (identity.Identity, error) {
		return identity.Identity{Subject: tok}, nil
	})
	id, _ := v.VerifyAccessToken(context.Background(), "x")
	if id.Subject != "x" {
		t.Fatal(id)
	}
}

// A Verifier that cannot decide (its grant store is down) gets 503 temporarily_unavailable with
// Retry-After and no challenge, never 401: an MCP client must keep its valid token and retry, not
// start a new sign-in. Any other Verifier error stays 401.
func TestVerifierUnavailable(t *testing.T) {
	down := bearer.VerifierFunc(func(context.Context, string) (identity.Identity, error) {
		return identity.Identity{}, fmt.Errorf("access token: %w: grant lookup: connection refused", bearer.ErrUnavailable)
	})
	srv, _ := setup(t, func(o *bearer.Options) { o.Verifier = down })
	resp := do(t, srv, req{authz: []string{"Bearer abc.def.ghi"}})
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	if v := resp.Header.Values("WWW-Authenticate"); len(v) != 0 {
		t.Fatalf("a 503 carries a challenge %q: clients would discard their token", v)
	}
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body["error"] != "temporarily_unavailable" {
		t.Fatalf("body %v %v", body, err)
	}
	refused := bearer.VerifierFunc(func(context.Context, string) (identity.Identity, error) {
		return identity.Identity{}, errors.New("access token refused: expired")
	})
	srv, _ = setup(t, func(o *bearer.Options) { o.Verifier = refused })
	if resp := do(t, srv, req{authz: []string{"Bearer abc.def.ghi"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a refused token: %d, want 401", resp.StatusCode)
	}
}

// Who a tool call acts as in Kubernetes comes from the grant, never from the client: a request with
// any Impersonate-* header is refused with 400 and a message saying why, even with a valid token,
// and never reaches the MCP handler.
func TestImpersonateHeadersRefused(t *testing.T) {
	srv, iss := setup(t, nil)
	tok := iss.Mint(t, bearertest.Claims{Scopes: []string{"mcp:read", "mcp:write"}})
	for _, h := range []string{"Impersonate-User", "Impersonate-Group", "Impersonate-Uid", "Impersonate-Extra-Scopes", "impersonate-user", "IMPERSONATE-GROUP"} {
		t.Run(h, func(t *testing.T) {
			resp := do(t, srv, req{authz: []string{"Bearer " + tok}, header: http.Header{h: {"system:admin"}}})
			var got map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&got)
			desc, _ := got["error_description"].(string)
			if resp.StatusCode != http.StatusBadRequest || got["error"] != "invalid_request" || got["ok"] != nil ||
				!strings.Contains(desc, http.CanonicalHeaderKey(h)) || !strings.Contains(desc, "Impersonate-*") {
				t.Fatalf("%s: %d %v", h, resp.StatusCode, got)
			}
		})
	}
	// Headers that merely look alike pass.
	resp := do(t, srv, req{authz: []string{"Bearer " + tok}, header: http.Header{"X-Impersonate-User": {"x"}, "Impersonate": {"x"}}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("look-alike headers refused: %d", resp.StatusCode)
	}
}

// The body the check read is handed on whole — with a Content-Length or without one (chunked), up
// to the limit exactly — as a *bearer.Body that can be read again or taken whole; one byte over the
// limit is 413 either way.
func TestBodyHandedOn(t *testing.T) {
	iss := bearertest.NewIssuer("https://mcp.example.com", "https://mcp.example.com/mcp")
	m, err := bearer.New(bearer.Options{Verifier: iss, ResourceMetadataURL: prmURL, MaxBodyBytes: 100,
		ToolScopes: func(string) []string { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	tok := iss.Mint(t, bearertest.Claims{})
	var got, whole []byte
	h := m.Wrap(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		b, ok := r.Body.(*bearer.Body)
		if !ok {
			t.Fatalf("body handed on as %T", r.Body)
		}
		whole = b.RequestBody()
		got, _ = io.ReadAll(r.Body)
		if r.ContentLength != int64(len(got)) {
			t.Errorf("ContentLength %d for %d bytes", r.ContentLength, len(got))
		}
	}))
	for _, n := range []int{0, 1, 99, 100, 101, 5000} {
		body := strings.Repeat("x", n)
		for _, chunked := range []bool{false, true} {
			got, whole = nil, nil
			r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
			if chunked {
				r.ContentLength = -1
			}
			r.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			switch {
			case n > 100 && w.Code != http.StatusRequestEntityTooLarge:
				t.Errorf("%d bytes (chunked %v): %d, want 413", n, chunked, w.Code)
			case n <= 100 && (w.Code != http.StatusOK || string(got) != body || string(whole) != body):
				t.Errorf("%d bytes (chunked %v): %d, handed on %d bytes, whole %d", n, chunked, w.Code, len(got), len(whole))
			}
		}
	}
	// A Content-Length that promises more than the body holds: the read fails, nothing is handed on.
	r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader("short"))
	r.ContentLength = 50
	r.Body = io.NopCloser(io.MultiReader(strings.NewReader("short"), errorReader{}))
	r.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	got = nil
	h.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest || got != nil {
		t.Fatalf("truncated body: %d, handed on %q", w.Code, got)
	}
}

type errorReader struct{}

func (errorReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
