package oauthproxy

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/store"
)

// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a client_id that is
// an https URL names a JSON document describing the client, fetched by the server.
//
//	CIMD-01  URL client_ids accepted and advertised          TestCIMD01_FlowWithMetadataDocument
//	CIMD-02  document client_id equals the URL exactly        TestCIMD02_ClientIDMustMatchExactly
//	CIMD-03  redirect exact match against the document        TestCIMD03_RedirectMustMatchDocument
//	CIMD-04  redirect_uris required                            TestCIMD04_InvalidDocuments
//	CIMD-05  no client_secret, no shared-secret auth methods  TestCIMD04_InvalidDocuments
//	CIMD-06  only 200, no redirects, errors not cached         TestCIMD06_NoRedirectsNoErrorCaching
//	CIMD-07  no special-use IPs, 5 KB limit, timeouts          TestCIMD07_SSRFAndSizeLimits, TestCIMD07_SSRFTranslatedAndDeprecatedRanges
//	CIMD-08  Cache-Control honoured                             TestCIMD08_CacheHeaders
//	CIMD-09  consent shows the client_id host, redirect host, localhost warning   TestPXY02_ConsentPageContent
//	CIMD-10  URL shape: https, path, no userinfo/dot segments/fragment   TestCIMD10_URLShape
//	BCP-31   plain ASCII (the host is shown as the verified publisher)   TestBCP31_ClientIDURLHomographsRefused
//	CIMD-11  private_key_jwt is not supported: documents asking for it are refused (CIMD-05 test)

// CIMD fetches and caches Client ID Metadata Documents.
type CIMD struct {
	HTTPClient *http.Client
	MaxBytes   int64         // default 5120
	DefaultTTL time.Duration // cache lifetime without Cache-Control max-age (default 1h)
	MaxTTL     time.Duration // cap (default 24h)
}

// AllowIP is the default egress policy for metadata fetches: public unicast addresses only.
func AllowIP(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range specialUse {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

var specialUse = func() []netip.Prefix {
	var out []netip.Prefix
	// IANA special-purpose ranges that are not globally reachable, plus deprecated ones that still
	// lead inside some networks: IPv4-compatible ::/96, IPv4-translated ::ffff:0:0:0/96 (SIIT, like
	// NAT64's 64:ff9b::/96), site-local fec0::/10, 6to4 relay anycast 192.88.99.0/24.
	for _, s := range []string{"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "198.18.0.0/15", "198.51.100.0/24",
		"203.0.113.0/24", "240.0.0.0/4", "::/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
		"2002::/16", "3fff::/20", "5f00::/16", "fc00::/7", "fec0::/10"} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// NewCIMDHTTPClient returns the SSRF-safe client: every connection's resolved address is checked by
// allow at dial time (so DNS rebinding cannot bypass it), no proxy, no redirects, a 5 s overall limit.
// tlsConfig may be nil (system roots).
func NewCIMDHTTPClient(allow func(netip.Addr) bool, tlsConfig *tls.Config) *http.Client {
	if allow == nil {
		allow = AllowIP
	}
	d := &net.Dialer{Timeout: 3 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !allow(ap.Addr()) {
			return fmt.Errorf("client metadata fetch to %s refused: not a public address", address)
		}
		return nil
	}}
	tr := &http.Transport{
		Proxy: nil, DialContext: d.DialContext, TLSClientConfig: tlsConfig,
		TLSHandshakeTimeout: 3 * time.Second, ResponseHeaderTimeout: 3 * time.Second,
		MaxResponseHeaderBytes: 8 << 10, DisableKeepAlives: true,
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// isMetadataClientID says whether a client_id is a URL to fetch.
func isMetadataClientID(id string) bool { return strings.HasPrefix(id, "https://") }

// validateClientIDURL checks the client_id URL shape (CIMD-10) before any fetch.
func validateClientIDURL(id string) error {
	if len(id) > 2000 || strings.Contains(id, "#") {
		return errors.New("client_id URL must not have a fragment")
	}
	u, err := url.Parse(id)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Opaque != "" {
		return errors.New("client_id URL must be an absolute https URL")
	}
	if u.User != nil {
		return errors.New("client_id URL must not contain user info")
	}
	if err := plainASCII(id, u); err != nil {
		return fmt.Errorf("client_id URL %w", err)
	}
	if u.EscapedPath() == "" || u.EscapedPath() == "/" {
		return errors.New("client_id URL must have a path")
	}
	if hasDotSegment(u.EscapedPath()) {
		return errors.New("client_id URL must not contain . or .. segments")
	}
	return nil
}

// fetch retrieves and validates a document; ttl 0 means "do not cache".
func (p *Proxy) fetchClientMetadata(ctx context.Context, id string) (store.Client, time.Duration, error) {
	c := p.o.CIMD
	max := c.MaxBytes
	if max <= 0 {
		max = 5120
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return store.Client{}, 0, errors.New("client_id URL cannot be fetched")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.HTTPClient.Do(req)
	if err != nil {
		return store.Client{}, 0, fmt.Errorf("client metadata document could not be fetched: %v", unwrapAll(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return store.Client{}, 0, fmt.Errorf("client metadata document answered HTTP %d (only 200 is accepted; redirects are not followed)", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return store.Client{}, 0, errors.New("client metadata document could not be read")
	}
	if int64(len(body)) > max {
		return store.Client{}, 0, fmt.Errorf("client metadata document is larger than %d bytes", max)
	}
	var doc struct {
		ClientID                string          `json:"client_id"`
		ClientName              string          `json:"client_name"`
		RedirectURIs            []string        `json:"redirect_uris"`
		GrantTypes              []string        `json:"grant_types"`
		ResponseTypes           []string        `json:"response_types"`
		TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
		ApplicationType         string          `json:"application_type"`
		Scope                   string          `json:"scope"`
		ClientSecret            json.RawMessage `json:"client_secret"`
		ClientURI               string          `json:"client_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return store.Client{}, 0, errors.New("client metadata document is not a JSON object")
	}
	if doc.ClientID != id {
		return store.Client{}, 0, errors.New("client metadata document's client_id is not exactly its URL")
	}
	if doc.ClientSecret != nil {
		return store.Client{}, 0, errors.New("client metadata document must not contain client_secret")
	}
	if strings.TrimSpace(doc.ClientName) == "" {
		// MCP: metadata-document clients must supply client_name; the consent page shows it (CIMD-04).
		return store.Client{}, 0, errors.New("client metadata document has no client_name")
	}
	if m := doc.TokenEndpointAuthMethod; m != "" && m != "none" {
		return store.Client{}, 0, fmt.Errorf("token_endpoint_auth_method %q is not supported for metadata-document clients (use none)", m)
	}
	cl, _, err := p.clientFromMetadata(doc.RedirectURIs, doc.ClientName, doc.GrantTypes, doc.ResponseTypes, doc.ApplicationType, doc.Scope)
	if err != nil {
		return store.Client{}, 0, fmt.Errorf("client metadata document: %w", err)
	}
	cl.ID = id
	cl.Metadata = true
	cl.IssuedAt = p.now()
	return cl, cacheTTL(resp.Header.Get("Cache-Control"), c.DefaultTTL, c.MaxTTL), nil
}

func cacheTTL(cc string, def, max time.Duration) time.Duration {
	if def <= 0 {
		def = time.Hour
	}
	if max <= 0 {
		max = 24 * time.Hour
	}
	ttl := def
	for _, d := range strings.Split(cc, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		switch {
		case d == "no-store" || d == "no-cache":
			return 0
		case strings.HasPrefix(d, "max-age="):
			n, err := strconv.Atoi(strings.TrimPrefix(d, "max-age="))
			if err == nil && n >= 0 {
				ttl = time.Duration(n) * time.Second
			}
		}
	}
	if ttl > max {
		ttl = max
	}
	return ttl
}

func unwrapAll(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// errUnknownClient is returned when the client_id is neither registered nor a valid metadata URL.
var errUnknownClient = errors.New("unknown client")

// lookupClient finds a registered client or resolves a metadata-document client (cached per its
// cache headers; failures are not cached).
func (p *Proxy) lookupClient(ctx context.Context, id string) (store.Client, error) {
	if id == "" || len(id) > 2000 {
		return store.Client{}, errUnknownClient
	}
	if p.o.CIMD != nil && isMetadataClientID(id) {
		if err := validateClientIDURL(id); err != nil {
			return store.Client{}, fmt.Errorf("%w: %v", errUnknownClient, err)
		}
		if c, err := p.o.Store.GetClient(ctx, id); err == nil && c.Metadata {
			return c, nil
		}
		c, ttl, err := p.fetchClientMetadata(ctx, id)
		if err != nil {
			p.log.Warn("client metadata document refused", "client_id", id, "reason", err.Error())
			return store.Client{}, fmt.Errorf("%w: %v", errUnknownClient, err)
		}
		if ttl > 0 {
			if err := p.o.Store.PutClientMetadata(ctx, c, p.now().Add(ttl)); err != nil {
				p.log.Warn("client metadata cache", "err", err)
			}
		}
		return c, nil
	}
	c, err := p.o.Store.GetClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.Metadata) {
		return store.Client{}, errUnknownClient
	}
	return c, err
}
