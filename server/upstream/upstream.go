// Package upstream is the OpenID Connect client the proxy uses towards Auth0 (or any OIDC provider):
// discovery, the authorization-code exchange with its own PKCE S256 pair, state and nonce
// (golang.org/x/oauth2), id_token verification against the provider's JWKS (go-jose), refresh and
// revocation.
//
// Upstream access tokens are never forwarded to MCP clients and never parsed as a JWS when they have
// five parts (JWE): a nested JWE (RSA-OAEP-256 + A256GCM, Auth0's "JSON Web Encryption for APIs") is
// decrypted with the configured RSA key and its inner JWS verified; any other JWE (e.g. Auth0's
// dir/A256GCM token for /userinfo when no audience is requested) is treated as opaque and the user's
// identity comes from the verified id_token, or /userinfo when there is none.
package upstream

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
)

// Options configures the client.
type Options struct {
	Issuer          string // exactly as the provider writes it (Auth0: trailing slash)
	ClientID        string
	ClientSecret    string
	Audience        string // Auth0 API identifier; sent to /authorize and /oauth/token when set
	Scope           string // space-separated
	RedirectURL     string // our callback URL
	AuthInBody      bool   // client_secret_post instead of client_secret_basic
	JWKSURI         string // overrides discovery
	JWEKey          *rsa.PrivateKey
	ForwardResource bool
	// IdentityClaims makes the client read the user's claims from /userinfo when neither the
	// id_token nor a verifiable access token carried any (at sign-in and at every refresh): a server
	// that impersonates users needs them fresh.
	IdentityClaims bool
	HTTPClient     *http.Client
	Now            func() time.Time
	Logger         *slog.Logger
}

// Tokens are the upstream's tokens for one grant.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	IDToken      string
	Expiry       time.Time
	// Claims (set by Refresh) are the verified claims of the new id_token merged with those of a
	// verifiable access token (or /userinfo, see Options.IdentityClaims); nil when the answer carried
	// none, so the identity kept from before stays.
	Claims map[string]any
}

// Result of a successful code exchange.
type Result struct {
	Subject string
	Tokens  Tokens
	// Claims are the user's verified claims: the id_token's, plus those only a verified access token
	// carries (an Auth0 Action may put a custom claim in either), or /userinfo's when there is neither.
	Claims map[string]any
	// AccessTokenKind says how the access token was treated: "jws", "nested-jwe" or "opaque".
	AccessTokenKind string
}

// ErrInvalidGrant means the upstream refused the grant (revoked, expired, reused): the proxy's grant
// must end too.
var ErrInvalidGrant = errors.New("upstream refused the grant")

// ErrUnavailable means the upstream could not be reached or answered with a server error: the caller
// should retry later and keep the grant.
var ErrUnavailable = errors.New("upstream identity provider unavailable")

// Metadata is the part of the OpenID provider document we use.
type Metadata struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	UserinfoEndpoint      string `json:"userinfo_endpoint"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
}

// Client talks to the upstream provider. It discovers the provider's metadata (Discover) before
// it can do anything else; until then every call returns ErrUnavailable, and a call tries the
// discovery again (at most every 5 s), so a provider unreachable at start-up is picked up later.
type Client struct {
	o Options
	d atomic.Pointer[discovered]

	mu      sync.Mutex
	lastTry time.Time
	lastErr error
}

// discovered is what discovery yields; it never changes once set.
type discovered struct {
	meta  Metadata
	oauth oauth2.Config
	jwks  *keySet
}

// New returns a client that has not contacted the provider yet.
func New(o Options) *Client {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Client{o: o}
}

// Discover fetches the provider's metadata and returns a ready client. The document's issuer must
// equal Options.Issuer byte for byte.
func Discover(ctx context.Context, o Options) (*Client, error) {
	c := New(o)
	if err := c.Discover(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Discover fetches the provider's metadata (once it succeeded it does nothing). A provider that
// cannot be reached is ErrUnavailable; a document that contradicts the configuration is another
// error (a configuration fault: retrying will not help).
func (c *Client) Discover(ctx context.Context) error {
	if c.d.Load() != nil {
		return nil
	}
	o := c.o
	u := strings.TrimSuffix(o.Issuer, "/") + "/.well-known/openid-configuration"
	var m Metadata
	if err := getJSON(ctx, o.HTTPClient, u, &m); err != nil {
		return fmt.Errorf("%w: discovery at %s failed (check `issuer` and that the provider is reachable): %v", ErrUnavailable, u, err)
	}
	if m.Issuer != o.Issuer {
		return fmt.Errorf("upstream discovery: the provider says its issuer is %q but `issuer` is configured as %q; they must match exactly (Auth0 issuers end with /)", m.Issuer, o.Issuer)
	}
	if m.AuthorizationEndpoint == "" || m.TokenEndpoint == "" {
		return fmt.Errorf("upstream discovery at %s: authorization_endpoint or token_endpoint missing", u)
	}
	if o.JWKSURI != "" {
		m.JWKSURI = o.JWKSURI
	}
	if m.JWKSURI == "" {
		return fmt.Errorf("upstream discovery at %s: no jwks_uri (set `jwks_uri`)", u)
	}
	d := &discovered{meta: m, jwks: &keySet{url: m.JWKSURI, hc: o.HTTPClient, now: o.Now}}
	d.oauth = oauth2.Config{
		ClientID:     o.ClientID,
		ClientSecret: o.ClientSecret,
		RedirectURL:  o.RedirectURL,
		Scopes:       strings.Fields(o.Scope),
		Endpoint:     oauth2.Endpoint{AuthURL: m.AuthorizationEndpoint, TokenURL: m.TokenEndpoint, AuthStyle: oauth2.AuthStyleInHeader},
	}
	if o.AuthInBody {
		d.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	c.d.CompareAndSwap(nil, d)
	return nil
}

// ready returns the discovered provider, discovering it now if it was not yet (at most every 5 s).
func (c *Client) ready(ctx context.Context) (*discovered, error) {
	if d := c.d.Load(); d != nil {
		return d, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := c.d.Load(); d != nil {
		return d, nil
	}
	if !c.lastTry.IsZero() && time.Since(c.lastTry) < 5*time.Second {
		return nil, c.lastErr
	}
	c.lastTry = time.Now()
	if err := c.Discover(ctx); err != nil {
		if !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		c.lastErr = err
		return nil, err
	}
	return c.d.Load(), nil
}

// Ready reports whether the provider has been discovered (trying now if not).
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.ready(ctx)
	return err
}

// Metadata returns the discovered provider metadata (zero before discovery).
func (c *Client) Metadata() Metadata {
	if d := c.d.Load(); d != nil {
		return d.meta
	}
	return Metadata{}
}

func (c *Client) ctx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c.o.HTTPClient)
}

// AuthCodeURL is where the browser goes to log in upstream: our own S256 challenge of verifier, our
// own state and nonce, Auth0's audience, and the client's resource only when ForwardResource is set.
func (c *Client) AuthCodeURL(state, nonce, verifier, resource string) string {
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", nonce)}
	if c.o.Audience != "" {
		opts = append(opts, oauth2.SetAuthURLParam("audience", c.o.Audience))
	}
	if c.o.ForwardResource && resource != "" {
		opts = append(opts, oauth2.SetAuthURLParam("resource", resource))
	}
	d := c.d.Load()
	if d == nil {
		return "" // callers check Ready first
	}
	return d.oauth.AuthCodeURL(state, opts...)
}

// Exchange redeems the upstream code and establishes the user's identity.
func (c *Client) Exchange(ctx context.Context, code, verifier, nonce string) (Result, error) {
	d, err := c.ready(ctx)
	if err != nil {
		return Result{}, err
	}
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}
	if c.o.Audience != "" {
		opts = append(opts, oauth2.SetAuthURLParam("audience", c.o.Audience))
	}
	tok, err := d.oauth.Exchange(c.ctx(ctx), code, opts...)
	if err != nil {
		return Result{}, classify("code exchange", err)
	}
	res := Result{Tokens: c.tokensOf(tok)}
	if res.Tokens.IDToken != "" {
		sub, claims, err := c.verifyIDToken(ctx, d, res.Tokens.IDToken, nonce, true)
		if err != nil {
			return Result{}, err
		}
		res.Subject, res.Claims = sub, claims
	}
	kind, atClaims, err := c.inspectAccessToken(ctx, d, res.Tokens.AccessToken)
	if err != nil {
		return Result{}, err
	}
	res.AccessTokenKind = kind
	atSub, _ := atClaims["sub"].(string)
	switch {
	case res.Subject == "" && atSub != "":
		res.Subject = atSub
	case res.Subject != "" && atSub != "" && atSub != res.Subject:
		return Result{}, errors.New("upstream access token and id_token name different subjects")
	}
	res.Claims = merge(res.Claims, atClaims)
	if res.Subject == "" || (c.o.IdentityClaims && res.Claims == nil) {
		info, err := c.userinfo(ctx, d, res.Tokens.AccessToken)
		if err != nil {
			return Result{}, err
		}
		sub, _ := info["sub"].(string)
		if res.Subject != "" && sub != res.Subject {
			return Result{}, errors.New("upstream userinfo names another subject than the tokens")
		}
		res.Subject, res.Claims = sub, info
	}
	return res, nil
}

// merge adds to a the claims of b it does not have (a wins); nil when both are empty.
func merge(a, b map[string]any) map[string]any {
	if len(b) == 0 {
		return a
	}
	if a == nil {
		a = make(map[string]any, len(b))
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			a[k] = v
		}
	}
	return a
}

// Refresh uses the upstream refresh token. A missing refresh token in the answer keeps the old one;
// a new id_token must name the same subject.
func (c *Client) Refresh(ctx context.Context, t Tokens, subject string) (Tokens, error) {
	if t.RefreshToken == "" {
		return Tokens{}, fmt.Errorf("%w: no upstream refresh token", ErrInvalidGrant)
	}
	d, err := c.ready(ctx)
	if err != nil {
		return Tokens{}, err
	}
	src := d.oauth.TokenSource(c.ctx(ctx), &oauth2.Token{RefreshToken: t.RefreshToken, Expiry: time.Unix(1, 0)})
	tok, err := src.Token()
	if err != nil {
		return Tokens{}, classify("refresh", err)
	}
	nt := c.tokensOf(tok)
	if nt.RefreshToken == "" {
		nt.RefreshToken = t.RefreshToken
	}
	if nt.IDToken != "" {
		sub, claims, err := c.verifyIDToken(ctx, d, nt.IDToken, "", false)
		if err != nil {
			return Tokens{}, err
		}
		if sub != subject {
			return Tokens{}, fmt.Errorf("%w: refreshed id_token names another subject", ErrInvalidGrant)
		}
		nt.Claims = claims
	} else {
		nt.IDToken = t.IDToken
	}
	if c.o.IdentityClaims {
		// The refreshed access token's claims too (a custom claim may be only there); a token that
		// does not verify is no reason to fail the refresh here: it is treated as carrying nothing.
		if _, atClaims, err := c.inspectAccessToken(ctx, d, nt.AccessToken); err == nil {
			if sub, _ := atClaims["sub"].(string); sub == subject {
				nt.Claims = merge(nt.Claims, atClaims)
			}
		}
		if nt.Claims == nil {
			info, err := c.userinfo(ctx, d, nt.AccessToken)
			if err != nil {
				return Tokens{}, err
			}
			if sub, _ := info["sub"].(string); sub != subject {
				return Tokens{}, fmt.Errorf("%w: userinfo after the refresh names another subject", ErrInvalidGrant)
			}
			nt.Claims = info
		}
	}
	return nt, nil
}

// Revoke revokes an upstream token (the refresh token, which ends the upstream grant) at the
// provider's revocation endpoint (Auth0: /oauth/revoke). Without an endpoint it does nothing.
func (c *Client) Revoke(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	d, err := c.ready(ctx)
	if err != nil {
		return err
	}
	if d.meta.RevocationEndpoint == "" {
		return nil
	}
	body := "token=" + url.QueryEscape(token) + "&token_type_hint=refresh_token&client_id=" + url.QueryEscape(c.o.ClientID)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.meta.RevocationEndpoint, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.o.AuthInBody {
		body += "&client_secret=" + url.QueryEscape(c.o.ClientSecret)
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, d.meta.RevocationEndpoint, strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req.SetBasicAuth(url.QueryEscape(c.o.ClientID), url.QueryEscape(c.o.ClientSecret))
	}
	resp, err := c.o.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: revoke: %v", ErrUnavailable, redact(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("upstream revocation endpoint answered HTTP %d", resp.StatusCode)
	}
	return nil
}

// CredentialsError means the provider's token endpoint refused our client: a wrong client secret,
// client ID or authentication method (Auth0 answers 401 access_denied "Unauthorized"), or an
// application that may not use the authorization-code grant.
type CredentialsError struct {
	Status int
	Code   string // the OAuth error code (invalid_client, access_denied, unauthorized_client)
}

func (e *CredentialsError) Error() string {
	if e.Code == "unauthorized_client" {
		return fmt.Sprintf("the upstream token endpoint does not allow the authorization_code grant for this client (HTTP %d %s)", e.Status, e.Code)
	}
	return fmt.Sprintf("the upstream token endpoint refused the client credentials (HTTP %d %s)", e.Status, e.Code)
}

// StartupCodePrefix starts the made-up authorization code CheckCredentials sends (recognizable in
// the provider's logs as "Failed Exchange").
const StartupCodePrefix = "cnpg-mcp-startup-check-"

// CheckCredentials verifies the client credentials without a user: it asks the token endpoint to
// redeem a made-up authorization code. A provider authenticates the client before it looks at the
// code, so invalid_grant means the credentials were accepted (nil); 401 or invalid_client means
// they were not, and unauthorized_client that the application may not use the code grant
// (*CredentialsError); a transport failure or a 5xx is ErrUnavailable. Any other answer is returned
// as an error that is neither (the check is inconclusive).
func (c *Client) CheckCredentials(ctx context.Context) error {
	d, err := c.ready(ctx)
	if err != nil {
		return err
	}
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.GenerateVerifier())}
	if c.o.Audience != "" {
		opts = append(opts, oauth2.SetAuthURLParam("audience", c.o.Audience))
	}
	_, err = d.oauth.Exchange(c.ctx(ctx), StartupCodePrefix+oauth2.GenerateVerifier()[:22], opts...)
	var re *oauth2.RetrieveError
	switch {
	case err == nil:
		return errors.New("the upstream token endpoint accepted a made-up authorization code")
	case !errors.As(err, &re):
		return fmt.Errorf("%w: token endpoint: %v", ErrUnavailable, redact(err))
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	switch code := safeCode(re.ErrorCode); {
	case code == "invalid_grant":
		return nil
	case status == http.StatusUnauthorized || code == "invalid_client" || code == "unauthorized_client":
		return &CredentialsError{Status: status, Code: code}
	case status >= 500 || status == http.StatusTooManyRequests:
		return fmt.Errorf("%w: token endpoint answered HTTP %d", ErrUnavailable, status)
	default:
		return fmt.Errorf("the upstream token endpoint gave an unexpected answer to the credential check (HTTP %d %s)", status, code)
	}
}

// tokensOf converts an oauth2 token; the expiry is recomputed from expires_in on our clock (oauth2
// uses the wall clock).
func (c *Client) tokensOf(tok *oauth2.Token) Tokens {
	t := Tokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}
	if tok.ExpiresIn > 0 {
		t.Expiry = c.o.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	if s, ok := tok.Extra("id_token").(string); ok {
		t.IDToken = s
	}
	return t
}

// classify turns an oauth2 error into ErrInvalidGrant or ErrUnavailable without the response body.
func classify(op string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		// Auth0 answers a revoked/expired/reused grant with 403 invalid_grant. Other 4xx answers
		// (e.g. 401 for wrong client credentials) are configuration problems: the user's grant stays.
		// A 5xx is an outage whatever its body says (an error page of a proxy in front of the
		// provider, say): never a verdict on the grant (FuzzRefresh).
		if status < 500 && (re.ErrorCode == "invalid_grant" || (status == http.StatusForbidden && re.ErrorCode == "")) {
			return fmt.Errorf("%w: %s: %s (HTTP %d)", ErrInvalidGrant, op, safeCode(re.ErrorCode), status)
		}
		return fmt.Errorf("%w: %s: HTTP %d", ErrUnavailable, op, status)
	}
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, op, redact(err))
}

// safeCode keeps an OAuth error code only if it has the RFC 6749 character set (no echo of input).
func safeCode(s string) string {
	if len(s) > 64 {
		return "error"
	}
	for _, r := range s {
		if !(r == '_' || (r >= 'a' && r <= 'z')) {
			return "error"
		}
	}
	return s
}

// redact drops URLs (which may carry query secrets) from transport errors.
func redact(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return "transport error"
}

// --- identity ---------------------------------------------------------------------------------

var sigAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.ES256, jose.ES384}

type idClaims struct {
	jwt.Claims
	Nonce string `json:"nonce"`
	Azp   string `json:"azp"`
}

// verifyIDToken checks signature (JWKS), iss, aud (our client_id), exp and, at login, nonce, and
// returns the subject and all the token's claims.
func (c *Client) verifyIDToken(ctx context.Context, d *discovered, raw, nonce string, requireNonce bool) (string, map[string]any, error) {
	if strings.Count(raw, ".") != 2 {
		return "", nil, errors.New("upstream id_token is not a JWS")
	}
	tok, err := jwt.ParseSigned(raw, sigAlgs)
	if err != nil {
		return "", nil, fmt.Errorf("upstream id_token: %w", err)
	}
	var cl idClaims
	var all map[string]any
	if err := d.jwks.claims(ctx, tok, &cl, &all); err != nil {
		return "", nil, fmt.Errorf("upstream id_token: %w", err)
	}
	if err := cl.ValidateWithLeeway(jwt.Expected{Issuer: d.meta.Issuer, AnyAudience: jwt.Audience{c.o.ClientID}, Time: c.o.Now()}, time.Minute); err != nil {
		return "", nil, fmt.Errorf("upstream id_token: %w", err)
	}
	if cl.Expiry == nil {
		return "", nil, errors.New("upstream id_token has no exp")
	}
	if len(cl.Audience) > 1 && cl.Azp != c.o.ClientID {
		return "", nil, errors.New("upstream id_token: azp is not our client")
	}
	if requireNonce && (nonce == "" || cl.Nonce != nonce) {
		return "", nil, errors.New("upstream id_token: nonce mismatch")
	}
	if cl.Subject == "" {
		return "", nil, errors.New("upstream id_token has no sub")
	}
	return cl.Subject, all, nil
}

// inspectAccessToken classifies the upstream access token and, when it can be verified, returns
// its claims. A five-part token is never parsed as a JWS.
func (c *Client) inspectAccessToken(ctx context.Context, d *discovered, raw string) (kind string, claims map[string]any, err error) {
	switch strings.Count(raw, ".") {
	case 4:
		if c.o.JWEKey == nil {
			return "opaque", nil, nil
		}
		// go-jose's jwt package refuses asymmetric key algorithms for JWTs, so the JWE layer is opened
		// with the jose package (RSA-OAEP-256 / A256GCM only) and the inner JWS parsed on its own.
		enc, err := jose.ParseEncryptedCompact(raw, []jose.KeyAlgorithm{jose.RSA_OAEP_256}, []jose.ContentEncryption{jose.A256GCM})
		if err != nil {
			// Not a JWE for an RSA key (e.g. Auth0's dir/A256GCM userinfo token): opaque.
			c.o.Logger.Debug("upstream access token is a JWE that is not RSA-OAEP-256/A256GCM: treated as opaque", "reason", err.Error())
			return "opaque", nil, nil
		}
		payload, err := enc.Decrypt(c.o.JWEKey)
		if err != nil {
			c.o.Logger.Debug("upstream access token JWE does not open with upstream_jwe_private_key_file: treated as opaque", "reason", err.Error())
			return "opaque", nil, nil
		}
		if cty, _ := enc.Header.ExtraHeaders[jose.HeaderContentType].(string); !strings.EqualFold(cty, "JWT") {
			return "", nil, errors.New("upstream access token: decrypted JWE does not contain a JWT (cty)")
		}
		inner, err := jwt.ParseSigned(string(payload), sigAlgs)
		if err != nil {
			return "", nil, fmt.Errorf("upstream nested-JWE access token: inner JWS: %w", err)
		}
		cl, err := c.verifyAccessJWS(ctx, d, inner)
		if err != nil {
			return "", nil, fmt.Errorf("upstream nested-JWE access token: %w", err)
		}
		return "nested-jwe", cl, nil
	case 2:
		tok, err := jwt.ParseSigned(raw, sigAlgs)
		if err != nil || c.o.Audience == "" {
			return "opaque", nil, nil
		}
		s, err := c.verifyAccessJWS(ctx, d, tok)
		if err != nil {
			return "", nil, fmt.Errorf("upstream access token: %w", err)
		}
		return "jws", s, nil
	default:
		return "opaque", nil, nil
	}
}

func (c *Client) verifyAccessJWS(ctx context.Context, d *discovered, tok *jwt.JSONWebToken) (map[string]any, error) {
	var cl jwt.Claims
	var all map[string]any
	if err := d.jwks.claims(ctx, tok, &cl, &all); err != nil {
		return nil, err
	}
	exp := jwt.Expected{Issuer: d.meta.Issuer, Time: c.o.Now()}
	if c.o.Audience != "" {
		exp.AnyAudience = jwt.Audience{c.o.Audience}
	}
	if err := cl.ValidateWithLeeway(exp, time.Minute); err != nil {
		return nil, err
	}
	if all == nil {
		all = map[string]any{}
	}
	all["sub"] = cl.Subject
	return all, nil
}

// userinfo returns the claims /userinfo gives for the access token (sub is always set).
func (c *Client) userinfo(ctx context.Context, d *discovered, at string) (map[string]any, error) {
	if d.meta.UserinfoEndpoint == "" {
		return nil, errors.New("upstream returned neither an id_token nor a verifiable access token, and has no userinfo endpoint (add openid to `scope`)")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.meta.UserinfoEndpoint, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+at)
	resp, err := c.o.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: userinfo: %v", ErrUnavailable, redact(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return nil, fmt.Errorf("%w: userinfo answered HTTP %d", ErrUnavailable, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("upstream userinfo answered HTTP %d", resp.StatusCode)
	}
	var u map[string]any
	if err := readJSON(resp.Body, &u); err != nil {
		return nil, fmt.Errorf("upstream userinfo: not a JSON object: %w", err)
	}
	if sub, _ := u["sub"].(string); sub == "" {
		return nil, errors.New("upstream userinfo: no sub")
	}
	return u, nil
}

// --- JWKS ---------------------------------------------------------------------------------------

type keySet struct {
	url     string
	hc      *http.Client
	now     func() time.Time
	mu      sync.Mutex
	keys    jose.JSONWebKeySet
	fetched time.Time
}

// claims verifies tok against the key named by its kid, refetching the set once (at most every 10 s)
// when the kid is unknown (key rotation).
func (k *keySet) claims(ctx context.Context, tok *jwt.JSONWebToken, dst ...any) error {
	kid := ""
	if len(tok.Headers) > 0 {
		kid = tok.Headers[0].KeyID
	}
	for attempt := 0; attempt < 2; attempt++ {
		k.mu.Lock()
		if k.fetched.IsZero() || (attempt == 1 && k.now().Sub(k.fetched) > 10*time.Second) {
			var set jose.JSONWebKeySet
			if err := getJSON(ctx, k.hc, k.url, &set); err != nil {
				k.mu.Unlock()
				return fmt.Errorf("%w: fetch JWKS: %v", ErrUnavailable, err)
			}
			k.keys, k.fetched = set, k.now()
		}
		var cands []jose.JSONWebKey
		if kid != "" {
			cands = k.keys.Key(kid)
		} else {
			cands = k.keys.Keys
		}
		k.mu.Unlock()
		for _, key := range cands {
			if key.Use != "" && key.Use != "sig" {
				continue
			}
			if err := tok.Claims(key.Key, dst...); err == nil {
				return nil
			}
		}
	}
	return errors.New("signature not verifiable with the provider's JWKS")
}

func getJSON(ctx context.Context, hc *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return readJSON(resp.Body, v)
}

// maxJSONBytes bounds what the client reads of an upstream JSON answer (discovery, JWKS, userinfo).
const maxJSONBytes = 1 << 20

// readJSON decodes exactly one JSON document from r: an answer larger than maxJSONBytes, or with
// anything after the document (`{"sub":"a"}{"sub":"b"}`, which a streaming decoder would read as
// its first value), is an error, not a partly read identity.
func readJSON(r io.Reader, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, maxJSONBytes+1))
	if err != nil {
		return err
	}
	if len(b) > maxJSONBytes {
		return fmt.Errorf("the answer is larger than %d bytes", maxJSONBytes)
	}
	// json's errors quote at most one character of the input, so no token reaches the message
	return json.Unmarshal(b, v)
}
