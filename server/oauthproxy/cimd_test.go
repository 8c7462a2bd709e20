package oauthproxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// docServer serves client metadata documents over TLS on loopback; docs maps path → (body, headers).
type docServer struct {
	*httptest.Server
	mu    sync.Mutex
	docs  map[string]func(w http.ResponseWriter)
	count map[string]int
}

func newDocServer(t *testing.T) *docServer {
	d := &docServer{docs: map[string]func(http.ResponseWriter){}, count: map[string]int{}}
	d.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		f := d.docs[r.URL.Path]
		d.count[r.URL.Path]++
		d.mu.Unlock()
		if f == nil {
			http.NotFound(w, r)
			return
		}
		f(w)
	}))
	t.Cleanup(d.Close)
	return d
}

func (d *docServer) set(path string, f func(w http.ResponseWriter)) {
	d.mu.Lock()
	d.docs[path] = f
	d.mu.Unlock()
}

func (d *docServer) hits(path string) int { d.mu.Lock(); defer d.mu.Unlock(); return d.count[path] }

func jsonDoc(body, cacheControl string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		if cacheControl != "" {
			w.Header().Set("Cache-Control", cacheControl)
		}
		fmt.Fprint(w, body)
	}
}

func (d *docServer) doc(path, extra string) string {
	id := d.URL + path
	return fmt.Sprintf(`{"client_id":%q,"client_name":"Doc Client","redirect_uris":["http://127.0.0.1:3000/cb"],"grant_types":["authorization_code","refresh_token"]%s}`, id, extra)
}

// cimdHarness enables metadata documents; allowLoopback lets the fetcher reach the loopback doc server
// (the default policy refuses it, see TestCIMD07).
func cimdHarness(t *testing.T, d *docServer, allowLoopback bool) *harness {
	pool := x509.NewCertPool()
	pool.AddCert(d.Certificate())
	allow := AllowIP
	if allowLoopback {
		allow = func(netip.Addr) bool { return true }
	}
	return newHarness(t, func(o *Options) {
		o.CIMD = &CIMD{HTTPClient: NewCIMDHTTPClient(allow, &tls.Config{RootCAs: pool}), DefaultTTL: time.Hour}
	})
}

func (h *harness) authorizeStatus(clientID, redirect string) resp {
	return h.get(nil, h.issuer+"/authorize?"+authorizeQuery(clientID, redirect).Encode())
}

// CIMD-01: a URL client_id works end to end and is advertised; CIMD-09: the consent page shows the
// client_id's host as the verified domain.
func TestCIMD01_FlowWithMetadataDocument(t *testing.T) {
	d := newDocServer(t)
	h := cimdHarness(t, d, true)
	d.set("/client.json", jsonDoc(d.doc("/client.json", ""), ""))
	id := d.URL + "/client.json"
	if h.get(nil, h.issuer+"/.well-known/oauth-authorization-server").json(t)["client_id_metadata_document_supported"] != true {
		t.Fatal("not advertised")
	}
	_, page := h.consentPage(h.browser(), authorizeQuery(id, "http://127.0.0.1:3000/cb"))
	if !strings.Contains(page.body, `id="verified-domain">`+strings.TrimPrefix(d.URL, "https://")) {
		t.Fatal("verified domain not shown")
	}
	code, _ := h.authorize(id, authorizeQuery(id, "http://127.0.0.1:3000/cb"))
	if r := h.exchange(id, code, nil); r.StatusCode != 200 {
		t.Fatalf("token: %s", r.body)
	}
}

// CIMD-02: the document's client_id must equal the URL exactly.
func TestCIMD02_ClientIDMustMatchExactly(t *testing.T) {
	d := newDocServer(t)
	h := cimdHarness(t, d, true)
	d.set("/a.json", jsonDoc(strings.Replace(d.doc("/a.json", ""), "/a.json", "/a.json/", 1), ""))
	d.set("/b.json", jsonDoc(strings.Replace(d.doc("/b.json", ""), "https://127.0.0.1", "https://127.0.0.1:443", 1), ""))
	for _, p := range []string{"/a.json", "/b.json"} {
		if r := h.authorizeStatus(d.URL+p, "http://127.0.0.1:3000/cb"); r.StatusCode != 400 || r.Header.Get("Location") != "" {
			t.Errorf("%s: %d", p, r.StatusCode)
		}
	}
}

// CIMD-03: redirect exact match against the document, loopback port exception.
func TestCIMD03_RedirectMustMatchDocument(t *testing.T) {
	d := newDocServer(t)
	h := cimdHarness(t, d, true)
	d.set("/c.json", jsonDoc(d.doc("/c.json", ""), ""))
	id := d.URL + "/c.json"
	if r := h.authorizeStatus(id, "http://127.0.0.1:3000/other"); r.StatusCode != 400 || r.Header.Get("Location") != "" {
		t.Fatalf("other path: %d", r.StatusCode)
	}
	if r := h.authorizeStatus(id, "http://127.0.0.1:4000/cb"); r.StatusCode != 302 {
		t.Fatalf("loopback port: %d", r.StatusCode)
	}
}

// CIMD-04/05/11: invalid documents are refused.
func TestCIMD04_InvalidDocuments(t *testing.T) {
	d := newDocServer(t)
	h := cimdHarness(t, d, true)
	bad := map[string]string{
		"/no-redirects.json": fmt.Sprintf(`{"client_id":%q,"client_name":"x"}`, d.URL+"/no-redirects.json"),
		"/secret.json":       d.doc("/secret.json", `,"client_secret":"s"`),
		"/post.json":         d.doc("/post.json", `,"token_endpoint_auth_method":"client_secret_post"`),
		"/pkjwt.json":        d.doc("/pkjwt.json", `,"token_endpoint_auth_method":"private_key_jwt"`),
		"/notjson.json":      "<html>",
		"/noname.json":       strings.Replace(d.doc("/noname.json", ""), `"client_name":"Doc Client",`, "", 1),
		"/blankname.json":    strings.Replace(d.doc("/blankname.json", ""), `"Doc Client"`, `"  "`, 1),
		"/badredirect.json":  strings.Replace(d.doc("/badredirect.json", ""), "http://127.0.0.1:3000/cb", "http://evil.example/cb", 1),
	}
	for p, body := range bad {
		d.set(p, jsonDoc(body, ""))
		if r := h.authorizeStatus(d.URL+p, "http://127.0.0.1:3000/cb"); r.StatusCode != 400 || r.Header.Get("Location") != "" {
			t.Errorf("%s accepted: %d", p, r.StatusCode)
		}
	}
}

// CIMD-06: only 200, no redirects, failures not cached.
func TestCIMD06_NoRedirectsNoErrorCaching(t *testing.T) {
	d := newDocServer(t)
	h := cimdHarness(t, d, true)
	d.set("/good.json", jsonDoc(d.doc("/good.json", ""), ""))
	d.set("/moved.json", func(w http.ResponseWriter) { w.Header().Set("Location", d.URL+"/good.json"); w.WriteHeader(302) })
	if r := h.authorizeStatus(d.URL+"/moved.json", "http://127.0.0.1:3000/cb"); r.StatusCode != 400 || d.hits("/good.json") != 0 {
		t.Fatalf("redirect followed: %d", r.StatusCode)
	}
	id := d.URL + "/later.json"
	if r := h.authorizeStatus(id, "http://127.0.0.1:3000/cb"); r.StatusCode != 400 {
		t.Fatal("404 document accepted")
	}
	d.set("/later.json", jsonDoc(d.doc("/later.json", ""), ""))
	if r := h.authorizeStatus(id, "http://127.0.0.1:3000/cb"); r.StatusCode != 302 {
		t.Fatalf("error was cached: %d", r.StatusCode)
	}
}

// CIMD-07: special-use addresses refused by the default policy; size limit.
func TestCIMD07_SSRFAndSizeLimits(t *testing.T) {
	d := newDocServer(t)
	h := cimdHarness(t, d, false) // default policy: loopback refused
	d.set("/c.json", jsonDoc(d.doc("/c.json", ""), ""))
	if r := h.authorizeStatus(d.URL+"/c.json", "http://127.0.0.1:3000/cb"); r.StatusCode != 400 || d.hits("/c.json") != 0 {
		t.Fatalf("loopback fetched: %d hits=%d", r.StatusCode, d.hits("/c.json"))
	}
	for _, a := range []string{"127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "::1", "fd00::1", "fe80::1", "0.0.0.0", "::ffff:10.0.0.1", "224.0.0.1"} {
		if AllowIP(netip.MustParseAddr(a)) {
			t.Errorf("%s allowed", a)
		}
	}
	if !AllowIP(netip.MustParseAddr("1.1.1.1")) || !AllowIP(netip.MustParseAddr("2606:4700::1111")) {
		t.Error("public address refused")
	}
	h2 := cimdHarness(t, d, true)
	d.set("/big.json", jsonDoc(d.doc("/big.json", `,"x":"`+strings.Repeat("a", 6000)+`"`), ""))
	if r := h2.authorizeStatus(d.URL+"/big.json", "http://127.0.0.1:3000/cb"); r.StatusCode != 400 {
		t.Fatal("oversized document accepted")
	}
}

// CIMD-08: Cache-Control honoured: max-age=0 refetches, a positive max-age caches.
func TestCIMD08_CacheHeaders(t *testing.T) {
	d := newDocServer(t)
	h := cimdHarness(t, d, true)
	d.set("/nocache.json", jsonDoc(d.doc("/nocache.json", ""), "max-age=0"))
	d.set("/cached.json", jsonDoc(d.doc("/cached.json", ""), "max-age=300"))
	for i := 0; i < 2; i++ {
		h.authorizeStatus(d.URL+"/nocache.json", "http://127.0.0.1:3000/cb")
		h.authorizeStatus(d.URL+"/cached.json", "http://127.0.0.1:3000/cb")
	}
	if d.hits("/nocache.json") != 2 || d.hits("/cached.json") != 1 {
		t.Fatalf("hits nocache=%d cached=%d", d.hits("/nocache.json"), d.hits("/cached.json"))
	}
	h.clock.Advance(301 * time.Second)
	h.authorizeStatus(d.URL+"/cached.json", "http://127.0.0.1:3000/cb")
	if d.hits("/cached.json") != 2 {
		t.Fatal("expired cache entry not refetched")
	}
}

// CIMD-10: URL shape checked before any fetch.
func TestCIMD10_URLShape(t *testing.T) {
	d := newDocServer(t)
	h := cimdHarness(t, d, true)
	host := strings.TrimPrefix(d.URL, "https://")
	for _, id := range []string{"https://u@" + host + "/x.json", "https://" + host + "/a/../b.json", "https://" + host + "/", "https://" + host, "https://" + host + "/x.json#f"} {
		if r := h.authorizeStatus(id, "http://127.0.0.1:3000/cb"); r.StatusCode != 400 {
			t.Errorf("%s: %d", id, r.StatusCode)
		}
	}
	if n := d.hits("/b.json") + d.hits("/x.json") + d.hits("/"); n != 0 {
		t.Fatalf("%d fetches of malformed client ids", n)
	}
}

// BCP-31, CIMD-09, CIMD-10: the consent page presents the client_id URL's host as the "verified"
// publisher of the client, so a look-alike host (raw or percent-encoded Unicode) would lend a
// phishing client a trusted name. URL client_ids must be plain ASCII and are refused before any fetch.
func TestBCP31_ClientIDURLHomographsRefused(t *testing.T) {
	for _, id := range []string{"https://g\u043e\u043egle.com/client.json", "https://g%D0%BE%D0%BEgle.com/client.json", "https://claude.ai/\u202enosj.tneilc"} {
		if err := validateClientIDURL(id); err == nil {
			t.Errorf("%q accepted as a client_id URL", id)
		}
	}
	if err := validateClientIDURL("https://xn--ggle-55da.com/client.json"); err != nil {
		t.Errorf("punycode host refused: %v", err)
	}
	d := newDocServer(t)
	h := cimdHarness(t, d, true)
	id := d.URL + "/\u00f6.json"
	d.set("/\u00f6.json", jsonDoc(d.doc("/\u00f6.json", ""), ""))
	if r := h.authorizeStatus(id, "http://127.0.0.1:3000/cb"); r.StatusCode != 400 || d.hits("/\u00f6.json") != 0 {
		t.Fatalf("non-ASCII client_id URL: %d, %d fetches", r.StatusCode, d.hits("/\u00f6.json"))
	}
}

// CIMD-07 (SSRF): besides the ranges above, the egress policy refuses addresses that translate to
// IPv4 or are not globally reachable although Go calls them global unicast: IPv4-translated
// (::ffff:0:a.b.c.d, stateless SIIT translators map it to a.b.c.d, like the NAT64 prefix already
// refused), IPv4-compatible (::a.b.c.d, deprecated), site-local fec0::/10 (deprecated, still routed
// inside some networks), the deprecated 6to4 relay anycast 192.88.99.0/24, and the 2024
// documentation (3fff::/20) and segment-routing (5f00::/16) prefixes.
func TestCIMD07_SSRFTranslatedAndDeprecatedRanges(t *testing.T) {
	for _, a := range []string{"::ffff:0:10.0.0.1", "::ffff:0:127.0.0.1", "::ffff:0:169.254.169.254", "::10.0.0.1", "::127.0.0.1", "fec0::1", "192.88.99.1", "3fff::1", "5f00::1"} {
		if AllowIP(netip.MustParseAddr(a)) {
			t.Errorf("%s allowed", a)
		}
	}
	for _, a := range []string{"1.1.1.1", "2606:4700::1111", "2a00:1450:4001::200e"} {
		if !AllowIP(netip.MustParseAddr(a)) {
			t.Errorf("public address %s refused", a)
		}
	}
}
