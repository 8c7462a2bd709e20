package checks

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/login"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
)

// CIMDHost serves Client ID Metadata Documents at URLs the target can fetch.
type CIMDHost interface {
	// BaseURL is the https prefix documents are served under (no trailing slash).
	BaseURL() string
	// Serve publishes a response at path (status, headers, body); it replaces an earlier one.
	Serve(path string, status int, header http.Header, body []byte)
	// Hits counts the requests received for path.
	Hits(path string) int
}

// C.6 Client ID Metadata Documents.
func cimdChecks() map[string]func(*T) {
	return map[string]func(*T){
		"CIMD-01": cimd01, "CIMD-02": cimd02, "CIMD-03": cimd03, "CIMD-04": cimd04, "CIMD-05": cimd05, "CIMD-06": cimd06,
		"CIMD-07": cimd07, "CIMD-08": cimd08, "CIMD-09": cimd09, "CIMD-10": cimd10, "CIMD-11": cimd11,
	}
}

// cimd returns the host, skipping when the run has none or the AS does not advertise CIMD.
func (t *T) cimd() CIMDHost {
	h := t.env.cfg.CIMD
	if h == nil {
		t.Skipf("needs an https host the target can fetch client metadata documents from (--cimd-base-url with --cimd-listen)")
	}
	if v, _ := t.AS().Bool("client_id_metadata_document_supported"); !v && t.entry.ID != "CIMD-01" {
		t.Skipf("the authorization server does not advertise client_id_metadata_document_supported")
	}
	return h
}

// cimdClient publishes a document for a fresh client ID URL; mod may change the document.
func (t *T) cimdClient(h CIMDHost, mod func(doc map[string]any)) (*Client, string) {
	ep := t.env.redirect.NewEndpoint()
	path := "/clients/" + strings.ToLower(t.entry.ID) + "-" + oauthclient.RandomString(6) + ".json"
	id := h.BaseURL() + path
	doc := map[string]any{
		"client_id": id, "client_name": "mcp-auth-conformance " + t.entry.ID, "redirect_uris": []string{ep.URI()},
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"token_endpoint_auth_method": "none",
	}
	if mod != nil {
		mod(doc)
	}
	body, _ := json.Marshal(doc)
	h.Serve(path, http.StatusOK, http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"max-age=0"}}, body)
	reg := &oauthclient.Registration{ClientID: id, RedirectURIs: []string{ep.URI()}, TokenEndpointAuthMethod: "none"}
	reg.ClientName, _ = doc["client_name"].(string)
	reg.GrantTypes, _ = doc["grant_types"].([]string)
	if m, ok := doc["token_endpoint_auth_method"].(string); ok {
		reg.TokenEndpointAuthMethod = m
	}
	return &Client{ID: id, RedirectURI: ep.URI(), Endpoint: ep, Metadata: doc, Reg: reg, AuthMethod: "none"}, path
}

// expectCIMDRefused: the authorization request must not proceed and must not redirect.
func (t *T) expectCIMDRefused(what string, c *Client) {
	f := &Flow{Client: c}
	p := t.ProbeAuthorize(what, t.AuthParams(f), nil, c.RedirectURI)
	switch p.Kind {
	case Rejected:
	case ClientRedirect:
		t.Errorf("%s: the AS redirected to the client (%s); an invalid client must get an error page, no redirect", what, p.Describe())
	default:
		t.Errorf("%s: the AS accepted the client (%s)", what, p.Describe())
	}
}

// CIMD-01: URL client IDs work end to end and are advertised.
func cimd01(t *T) {
	h := t.cimd()
	if v, _ := t.AS().Bool("client_id_metadata_document_supported"); !v {
		t.Errorf("client_id_metadata_document_supported is not advertised (MCP 2025-11-25: SHOULD support CIMD)")
		return
	}
	c, _ := t.cimdClient(h, nil)
	g := t.Grant(Flow{Client: c, Name: "CIMD client", Subject: true})
	if ok, resp := t.AcceptedByMCP("the CIMD client's token", g.Tokens.AccessToken); !ok {
		t.Errorf("the CIMD client's token was refused: %s", resp.Describe())
	}
}

// CIMD-02: the document's client_id must equal the URL exactly.
func cimd02(t *T) {
	h := t.cimd()
	c, _ := t.cimdClient(h, func(d map[string]any) { d["client_id"] = d["client_id"].(string) + "/" })
	t.expectCIMDRefused("document client_id with an extra trailing slash", c)
	c, _ = t.cimdClient(h, func(d map[string]any) {
		u, _ := url.Parse(d["client_id"].(string))
		if u.Port() == "" {
			u.Host += ":443"
		} else {
			u.Host = u.Hostname()
		}
		d["client_id"] = u.String()
	})
	t.expectCIMDRefused("document client_id with a different port spelling", c)
}

// CIMD-03: redirect URIs match the document exactly (loopback port excepted).
func cimd03(t *T) {
	h := t.cimd()
	c, _ := t.cimdClient(h, nil)
	other := strings.TrimSuffix(c.RedirectURI, "/") + "/other"
	p := t.ProbeAuthorize("redirect_uri with another path", t.AuthParams(&Flow{Client: c, RedirectURI: ptr(other)}), nil, c.RedirectURI, other)
	if !(p.Kind == Rejected) {
		t.Errorf("a redirect_uri not in the document (%s) was not refused with an error page: %s", other, p.Describe())
	}
	port, err := t.env.redirect.AddPort()
	t.Must(err, "open another loopback port")
	alt := c.Endpoint.WithPort(port)
	p = t.ProbeAuthorize("redirect_uri on another loopback port", t.AuthParams(&Flow{Client: c, RedirectURI: ptr(alt)}), nil, c.RedirectURI, alt)
	if p.refused() || p.Kind == ServerError {
		t.Errorf("the document's loopback redirect URI on another port (%s) was refused: %s", alt, p.Describe())
	}
}

// CIMD-04: required fields; a missing client_name is reported when accepted.
func cimd04(t *T) {
	h := t.cimd()
	c, _ := t.cimdClient(h, func(d map[string]any) { delete(d, "redirect_uris") })
	t.expectCIMDRefused("document without redirect_uris", c)
	c, _ = t.cimdClient(h, func(d map[string]any) { delete(d, "client_name") })
	p := t.ProbeAuthorize("document without client_name", t.AuthParams(&Flow{Client: c}), nil, c.RedirectURI)
	if !p.refused() {
		t.Warnf("a document without client_name was accepted (MCP requires clients to supply it)")
	}
	_, path := t.cimdClient(h, nil)
	h.Serve(path, http.StatusOK, http.Header{"Content-Type": {"application/json"}}, []byte(`{"client_id": "not json`))
	t.expectCIMDRefused("a document that is not JSON", &Client{ID: h.BaseURL() + path, RedirectURI: c.RedirectURI, Endpoint: c.Endpoint})
}

// CIMD-05: no shared-secret methods, no client_secret.
func cimd05(t *T) {
	h := t.cimd()
	c, _ := t.cimdClient(h, func(d map[string]any) { d["token_endpoint_auth_method"] = "client_secret_post" })
	t.expectCIMDRefused("document with token_endpoint_auth_method client_secret_post", c)
	c, _ = t.cimdClient(h, func(d map[string]any) { d["client_secret"] = "conformance-secret" })
	t.expectCIMDRefused("document with a client_secret", c)
}

// CIMD-06: only 200 is accepted, redirects are not followed, failures are not cached.
func cimd06(t *T) {
	h := t.cimd()
	good, goodPath := t.cimdClient(h, nil)
	redirPath := "/clients/redirect-" + oauthclient.RandomString(6) + ".json"
	h.Serve(redirPath, http.StatusFound, http.Header{"Location": {h.BaseURL() + goodPath}}, nil)
	t.expectCIMDRefused("a client ID URL that redirects to a valid document", &Client{ID: h.BaseURL() + redirPath, RedirectURI: good.RedirectURI, Endpoint: good.Endpoint})

	c, path := t.cimdClient(h, nil)
	body, _ := json.Marshal(c.Metadata)
	h.Serve(path, http.StatusNotFound, nil, []byte("not found"))
	t.expectCIMDRefused("a client ID URL answering 404", c)
	h.Serve(path, http.StatusOK, http.Header{"Content-Type": {"application/json"}}, body)
	p := t.ProbeAuthorize("the same client ID once the document is fixed", t.AuthParams(&Flow{Client: c}), nil, c.RedirectURI)
	if p.refused() || p.Kind == ServerError {
		t.Errorf("after the document was fixed the client is still refused (%s): errors must not be cached", p.Describe())
	}
}

// CIMD-07: no fetches to special-use addresses; oversized documents refused.
func cimd07(t *T) {
	h := t.cimd()
	ep := t.env.redirect.NewEndpoint()
	for _, id := range []string{"https://10.0.0.1/client.json", "https://169.254.169.254/latest/meta-data/client.json", "https://[::1]/client.json"} {
		t.expectCIMDRefused("client ID at "+id, &Client{ID: id, RedirectURI: ep.URI(), Endpoint: ep})
	}
	c, path := t.cimdClient(h, func(d map[string]any) { d["padding"] = strings.Repeat("x", 50<<10) })
	t.expectCIMDRefused("a 50 KB document", c)
	t.Logf("the 50 KB document was fetched %d time(s)", h.Hits(path))
}

var consentWarningRE = regexp.MustCompile(`(?i)(warning|caution|careful|only (continue|approve)|this (device|computer)|local)`)

// consentText returns the visible text of the consent page for a flow (via the browser).
func (t *T) consentText(c *Client) string {
	t.requireConsentPage()
	s, _ := t.consentPage(Flow{Client: c})
	text, err := evalText(t, s)
	t.Must(err, "read the consent page")
	t.Screenshot(s, "consent page")
	return text
}

// consentPage runs f in the logged-in tab until the consent page shows and returns the session
// showing it. When the logged-in tab shows none (a server that remembers the user's consent, or
// keeps its own login session), the flow is repeated in a fresh browser context, so the verdict is
// about the page, not the tab; without a consent page there too the check is inconclusive.
func (t *T) consentPage(f Flow) (*browser.Session, *FlowResult) {
	f.Consent = login.StopAtConsent
	if f.Name == "" {
		f.Name = "consent page"
	}
	f.Session = t.loggedInTab()
	r := t.Browse(f)
	if r.Outcome.Stopped == "consent" {
		return f.Session, r
	}
	t.Logf("the logged-in tab showed no consent page (%v); repeating in a fresh browser context", r.Err)
	f.Session = t.newSession()
	r = t.Browse(f)
	if r.Outcome.Stopped != "consent" {
		t.Inconclusive("show the consent page for client "+f.Client.ID, fmt.Sprintf("no consent page was shown, in the logged-in tab nor in a fresh browser: %v", r.Err), "this check reads the consent page", "")
	}
	return f.Session, r
}

// CIMD-08: cache headers are respected (max-age=0 → a changed document is used).
func cimd08(t *T) {
	h := t.cimd()
	c, path := t.cimdClient(h, func(d map[string]any) { d["client_name"] = "Conformance Name Alpha" })
	if txt := t.consentText(c); !strings.Contains(txt, "Conformance Name Alpha") {
		t.Inconclusive("show the document's client_name on the consent page", "the consent page does not show it",
			"a change of the name can only be seen when the name is shown; naming the client is PXY-02's requirement", "PXY-02")
	}
	c.Metadata["client_name"] = "Conformance Name Bravo"
	body, _ := json.Marshal(c.Metadata)
	h.Serve(path, http.StatusOK, http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"max-age=0"}}, body)
	if txt := t.consentText(c); !strings.Contains(txt, "Conformance Name Bravo") {
		t.Errorf("the document changed (served with max-age=0) but the consent page still shows the old client_name")
	}
}

// CIMD-09: consent shows the redirect-URI host (MUST), the client ID host and a localhost warning (SHOULD).
func cimd09(t *T) {
	h := t.cimd()
	c, _ := t.cimdClient(h, nil)
	txt := t.consentText(c)
	ru, _ := url.Parse(c.RedirectURI)
	if !strings.Contains(txt, ru.Hostname()) {
		t.Errorf("the consent page does not show the redirect URI's host %s", ru.Hostname())
	}
	cu, _ := url.Parse(c.ID)
	if !strings.Contains(txt, cu.Hostname()) {
		t.Warnf("the consent page does not show the client ID's host %s", cu.Hostname())
	}
	if !consentWarningRE.MatchString(txt) {
		t.Warnf("the consent page shows no warning for a client whose only redirect URI is on localhost")
	}
}

// CIMD-10: malformed client ID URLs are not fetched.
func cimd10(t *T) {
	h := t.cimd()
	base, _ := url.Parse(h.BaseURL())
	ep := t.env.redirect.NewEndpoint()
	bad := []string{
		base.Scheme + "://user@" + base.Host + base.Path + "/clients/userinfo.json",
		h.BaseURL() + "/clients/a/../dots.json",
		h.BaseURL() + "/clients/frag.json#x",
		"http://" + base.Host + base.Path + "/clients/plain-http.json",
		base.Scheme + "://" + base.Host,
	}
	for _, id := range bad {
		u, _ := url.Parse(id)
		path := ""
		if u != nil {
			path = u.Path
		}
		before := h.Hits(path)
		t.expectCIMDRefused("client ID "+id, &Client{ID: id, RedirectURI: ep.URI(), Endpoint: ep})
		if path != "" && h.Hits(path) > before {
			t.Errorf("the AS fetched %s, a client ID URL it must refuse without fetching", id)
		}
	}
}

// assertionKey is a key the suite signs client assertions with.
type assertionKey struct {
	alg    string
	method jwt.SigningMethod
	key    any
	jwk    jose.JSONWebKey
}

// assertionKeys makes a key for each algorithm to try: those the server advertises in
// token_endpoint_auth_signing_alg_values_supported that the suite can sign with, else ES256 and
// RS256 (the common ones).
func (t *T) assertionKeys() ([]assertionKey, bool) {
	adv, _ := t.AS().Raw["token_endpoint_auth_signing_alg_values_supported"].([]any)
	var algs []string
	for _, a := range adv {
		if s, _ := a.(string); s != "" {
			algs = append(algs, s)
		}
	}
	advertised := len(algs) > 0
	if !advertised {
		algs = []string{"ES256", "RS256"}
	}
	var rsaKey *rsa.PrivateKey
	var out []assertionKey
	for _, alg := range algs {
		var k assertionKey
		switch alg {
		case "ES256":
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			t.Must(err, "generate a P-256 key")
			k = assertionKey{alg: alg, method: jwt.SigningMethodES256, key: key}
		case "RS256", "PS256":
			if rsaKey == nil {
				var err error
				rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
				t.Must(err, "generate an RSA key")
			}
			m := jwt.SigningMethod(jwt.SigningMethodRS256)
			if alg == "PS256" {
				m = jwt.SigningMethodPS256
			}
			k = assertionKey{alg: alg, method: m, key: rsaKey}
		default:
			t.Logf("the server advertises %s for client assertions; the suite does not sign with it", alg)
			continue
		}
		var pub any
		switch key := k.key.(type) {
		case *ecdsa.PrivateKey:
			pub = key.Public()
		case *rsa.PrivateKey:
			pub = key.Public()
		}
		k.jwk = jose.JSONWebKey{Key: pub, KeyID: "conformance-" + strings.ToLower(alg), Algorithm: alg, Use: "sig"}
		out = append(out, k)
	}
	return out, advertised
}

// CIMD-11: private_key_jwt clients authenticate with a valid, single-use assertion. The suite signs
// with every algorithm the server advertises (ES256 and RS256 when it advertises none), so the
// replay is tried with an assertion the server can verify.
func cimd11(t *T) {
	h := t.cimd()
	if !contains(t.AS().TokenEndpointAuthMethodsSupported, "private_key_jwt") {
		t.Skipf("the authorization server does not offer private_key_jwt (token_endpoint_auth_methods_supported %v); CIMD-05 checks that secret-based methods are refused", t.AS().TokenEndpointAuthMethodsSupported)
	}
	keys, advertised := t.assertionKeys()
	if len(keys) == 0 {
		t.Inconclusive("sign a client assertion", "the server advertises only algorithms the suite cannot sign with", "the suite signs ES256, RS256 and PS256", "")
	}
	var jwks []any
	for _, k := range keys {
		jwks = append(jwks, k.jwk)
	}
	c, _ := t.cimdClient(h, func(d map[string]any) {
		d["token_endpoint_auth_method"] = "private_key_jwt"
		d["jwks"] = map[string]any{"keys": jwks}
	})
	as := t.AS()
	const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	assertion := func(k assertionKey, jti string) string {
		tok := jwt.NewWithClaims(k.method, jwt.MapClaims{"iss": c.ID, "sub": c.ID, "aud": as.TokenEndpoint,
			"exp": time.Now().Add(2 * time.Minute).Unix(), "iat": time.Now().Unix(), "jti": jti})
		tok.Header["kid"] = k.jwk.KeyID
		s, err := tok.SignedString(k.key)
		t.Must(err, "sign the assertion")
		return s
	}
	r := t.Authorize(Flow{Client: c, Name: "private_key_jwt client"})
	resp := t.Token("redeem without a client assertion", r.CodeExchange().Form())
	switch {
	case resp.Status == http.StatusOK:
		t.Errorf("a private_key_jwt client redeemed a code without a client assertion: %s", resp.Describe())
	case resp.ErrorCode() != "invalid_client":
		t.Errorf("a private_key_jwt client without an assertion got %s; want invalid_client", resp.Describe())
	case resp.Status == http.StatusBadRequest:
		t.Warnf("a private_key_jwt client without an assertion got 400 invalid_client (allowed without an Authorization header, RFC 6749 §5.2; 401 is the interop choice)")
	}
	var good *assertionKey
	var goodJTI string
	var refused []string
	for i := range keys {
		k := keys[i]
		r := t.Authorize(Flow{Client: c, Name: "private_key_jwt client, " + k.alg})
		x := r.CodeExchange()
		jti := oauthclient.RandomString(12)
		x.Extra = url.Values{"client_assertion_type": {assertionType}, "client_assertion": {assertion(k, jti)}}
		resp := t.Token("redeem with a client assertion signed "+k.alg, x.Form())
		if resp.Status == http.StatusOK {
			t.Logf("a client assertion signed %s was accepted", k.alg)
			if good == nil {
				good, goodJTI = &keys[i], jti
			}
			continue
		}
		refused = append(refused, fmt.Sprintf("%s: %s", k.alg, resp.Describe()))
		if advertised {
			t.Errorf("a valid client assertion signed %s, which token_endpoint_auth_signing_alg_values_supported advertises, was refused: %s", k.alg, resp.Describe())
		}
	}
	if good == nil {
		if advertised {
			return
		}
		t.Inconclusive("redeem a code with a valid client assertion", strings.Join(refused, "; "),
			"the server advertises no token_endpoint_auth_signing_alg_values_supported and refused every algorithm the suite tried, so the replay test cannot be reached", "")
	}
	jti := goodJTI
	r = t.Authorize(Flow{Client: c, Name: "private_key_jwt client, replayed jti"})
	x := r.CodeExchange()
	x.Extra = url.Values{"client_assertion_type": {assertionType}, "client_assertion": {assertion(*good, jti)}}
	resp = t.Token("redeem with a replayed assertion jti", x.Form())
	if resp.Status == http.StatusOK {
		t.Errorf("a client assertion with a replayed jti (%s, signed %s) was accepted (RFC 7523 §3: jti single-use)", jti, good.alg)
	}
}
