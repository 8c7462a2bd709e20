package checks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
)

// C.1 Protected Resource Metadata (RFC 9728).
func prmChecks() map[string]func(*T) {
	return map[string]func(*T){
		"PRM-01": prm01,
		"PRM-02": prm02,
		"PRM-03": prm03,
		"PRM-04": prm04,
		"PRM-05": prm05,
		"PRM-06": prm06,
		"PRM-07": prm07,
		"PRM-08": prm08,
		"PRM-09": prm09,
		"PRM-10": prm10,
		"PRM-11": prm11,
	}
}

// fetchPRM finds the PRM the way a client does (challenge first, then the well-known URLs) and
// returns it with how it was found; it stops the check when there is none.
func (t *T) fetchPRM() (*oauthclient.ProtectedResourceMetadata, string) {
	target := t.env.cfg.Target
	resp, err := t.client.CallMCP(t.Label("unauthenticated MCP request"), target, oauthclient.MCPCall{})
	t.Must(err, "unauthenticated MCP request")
	var tried []string
	if ch, ok, _ := oauthclient.BearerChallenge(resp.Header.Values("WWW-Authenticate")); ok {
		if u, ok := ch.Param("resource_metadata"); ok && u != "" {
			m, r, err := t.client.FetchPRM(t.Label("fetch the PRM named by the challenge"), u)
			if err == nil {
				return m, "the WWW-Authenticate challenge"
			}
			tried = append(tried, describeFetch(u, r, err))
		}
	}
	urls, err := oauthclient.PRMURLs(target)
	t.Must(err, "build the well-known PRM URLs")
	for _, u := range urls {
		m, r, err := t.client.FetchPRM(t.Label("fetch the well-known PRM"), u)
		if err == nil {
			return m, "the well-known URL " + u
		}
		tried = append(tried, describeFetch(u, r, err))
	}
	t.Inconclusive("find the protected-resource metadata", strings.Join(tried, "; "), "", "PRM-01")
	return nil, ""
}

func describeFetch(u string, r *oauthclient.Response, err error) string {
	if r != nil {
		return u + ": " + r.Describe()
	}
	return u + ": " + err.Error()
}

// PRM-01: the MCP server serves RFC 9728 metadata, found from the 401 or the well-known URLs.
func prm01(t *T) {
	m, how := t.fetchPRM()
	t.Logf("PRM found through %s at %s", how, m.URL)
	resp, err := t.client.Get(t.Label("fetch the PRM again to check its media type"), m.URL, http.Header{"Accept": {"application/json"}})
	t.Must(err, "fetch the PRM")
	if mt := resp.MediaType(); mt != "application/json" {
		t.Errorf("the PRM at %s is served as %q, not application/json", m.URL, mt)
	}
	if resp.JSON == nil {
		t.Errorf("the PRM at %s is not a JSON object", m.URL)
	}
}

// PRM-02: authorization_servers lists at least one absolute https issuer without query/fragment.
func prm02(t *T) {
	m, _ := t.fetchPRM()
	if _, ok := m.Raw["authorization_servers"]; !ok || len(m.AuthorizationServers) == 0 {
		t.Fatalf("the PRM at %s has no authorization_servers", m.URL)
	}
	for _, as := range m.AuthorizationServers {
		if p := checkEndpointURL(as); p != "" {
			t.Errorf("authorization_servers entry: %s", p)
		}
		if u, err := url.Parse(as); err == nil && u.RawQuery != "" {
			t.Errorf("authorization_servers entry %q has a query", as)
		}
	}
}

// PRM-03: resource is the canonical MCP URL, byte for byte, and matches the well-known URL.
func prm03(t *T) {
	m, _ := t.fetchPRM()
	target := t.env.cfg.Target
	const hint = " (RFC 9728 §3.3: identical; clients compare byte for byte and refuse the metadata — if --target is not the canonical URL, pass the canonical one)"
	switch {
	case m.Resource == "":
		t.Fatalf("the PRM at %s has no resource", m.URL)
	case m.Resource == target:
	case strings.TrimSuffix(m.Resource, "/") == strings.TrimSuffix(target, "/"):
		t.Errorf("resource %q differs from the MCP endpoint %q by a trailing slash"+hint, m.Resource, target)
	case strings.EqualFold(m.Resource, target):
		t.Errorf("resource %q differs from the MCP endpoint %q by letter case"+hint, m.Resource, target)
	default:
		t.Errorf("resource %q is not the MCP endpoint %q"+hint, m.Resource, target)
	}
	// RFC 9728 §3.3: the resource must be the one the well-known URL was built from.
	const wk = "/.well-known/oauth-protected-resource"
	u, err := url.Parse(m.URL)
	if err == nil && strings.HasPrefix(u.Path, wk) {
		derived := u.Scheme + "://" + u.Host + strings.TrimPrefix(u.Path, wk)
		if u.RawQuery != "" {
			derived += "?" + u.RawQuery
		}
		if derived != m.Resource && derived+"/" != m.Resource {
			t.Errorf("the PRM at %s names resource %q, but that URL stands for %q (RFC 9728 §3.3)", m.URL, m.Resource, derived)
		}
	}
}

// PRM-04: at least one discovery mechanism works; a resource_metadata in the challenge is an
// absolute URL that resolves (in MCP 2025-06-18 the challenge itself is required).
func prm04(t *T) {
	resp, err := t.client.CallMCP(t.Label("unauthenticated MCP request"), t.env.cfg.Target, oauthclient.MCPCall{})
	t.Must(err, "unauthenticated MCP request")
	ch, ok, perr := oauthclient.BearerChallenge(resp.Header.Values("WWW-Authenticate"))
	if perr != nil {
		t.Errorf("malformed WWW-Authenticate: %v", perr)
	}
	rm, hasRM := ch.Param("resource_metadata")
	if ok && hasRM {
		u, err := url.Parse(rm)
		if err != nil || !u.IsAbs() {
			t.Errorf("resource_metadata %q is not an absolute URL (clients such as Claude need an absolute URL)", rm)
		} else if _, r, err := t.client.FetchPRM(t.Label("fetch resource_metadata"), rm); err != nil {
			t.Errorf("resource_metadata %s does not resolve to a PRM document: %s", rm, describeFetch(rm, r, err))
		}
		return
	}
	if t.env.cfg.SpecVersion == "2025-06-18" {
		t.Errorf("the 401 carries no resource_metadata in WWW-Authenticate; MCP 2025-06-18 requires it (%s)", resp.Describe())
		return
	}
	urls, err := oauthclient.PRMURLs(t.env.cfg.Target)
	t.Must(err, "well-known URLs")
	for _, u := range urls {
		if _, _, err := t.client.FetchPRM(t.Label("fetch the well-known PRM"), u); err == nil {
			t.Logf("no resource_metadata in the challenge; the well-known URL %s works", u)
			return
		}
	}
	t.Errorf("no PRM discovery mechanism works: no resource_metadata in the 401 and nothing at %s", strings.Join(urls, ", "))
}

// PRM-05: scopes_supported and resource_name are present (RECOMMENDED: warn).
func prm05(t *T) {
	m, _ := t.fetchPRM()
	if _, ok := m.Raw["scopes_supported"]; !ok {
		msg := "the PRM has no scopes_supported (RECOMMENDED: clients pick scopes from it)"
		for k := range m.Raw {
			if shadowOf(k, prmMembers) == "scopes_supported" {
				msg += fmt.Sprintf("; it has %q, which clients ignore (see PRM-11)", k)
			}
		}
		t.Warnf("%s", msg)
	}
	if _, ok := m.Raw["resource_name"]; !ok {
		t.Warnf("the PRM has no resource_name (RECOMMENDED: shown to users)")
	}
}

// PRM-06: bearer_methods_supported, if present, is exactly ["header"].
func prm06(t *T) {
	m, _ := t.fetchPRM()
	if _, ok := m.Raw["bearer_methods_supported"]; !ok {
		t.Logf("bearer_methods_supported is absent (fine)")
		return
	}
	if !slices.Equal(m.BearerMethodsSupported, []string{"header"}) {
		t.Errorf("bearer_methods_supported is %v; MCP allows tokens only in the Authorization header, so it must be [\"header\"]", m.BearerMethodsSupported)
	}
}

// PRM-07: offline_access is not advertised in the PRM or the challenge.
func prm07(t *T) {
	m, _ := t.fetchPRM()
	if slices.Contains(m.ScopesSupported, "offline_access") {
		t.Errorf("the PRM's scopes_supported contains offline_access (it is an authorization-server scope, not a resource scope)")
	}
	resp, err := t.client.CallMCP(t.Label("unauthenticated MCP request"), t.env.cfg.Target, oauthclient.MCPCall{})
	t.Must(err, "unauthenticated MCP request")
	if ch, ok, _ := oauthclient.BearerChallenge(resp.Header.Values("WWW-Authenticate")); ok {
		if s, _ := ch.Param("scope"); slices.Contains(strings.Fields(s), "offline_access") {
			t.Errorf("the 401 challenge's scope contains offline_access")
		}
	}
}

// PRM-08: the PRM is readable cross-origin (MAY: warn when not).
func prm08(t *T) {
	m, _ := t.fetchPRM()
	pre, err := t.client.Options(t.Label("CORS preflight for the PRM"), m.URL, testOrigin, http.MethodGet, "")
	t.Must(err, "preflight")
	get, err := t.client.Get(t.Label("cross-origin GET of the PRM"), m.URL, http.Header{"Origin": {testOrigin}})
	t.Must(err, "cross-origin GET")
	if !corsAllowed(get, testOrigin) {
		t.Warnf("the PRM is not readable cross-origin (no Access-Control-Allow-Origin on GET; preflight %s); browser-based MCP clients cannot discover the server", pre.Describe())
	}
}

// PRM-09: every authorization server's metadata names itself as issuer, byte for byte.
func prm09(t *T) {
	m, _ := t.fetchPRM()
	if len(m.AuthorizationServers) == 0 {
		t.Inconclusive("read the authorization servers from the protected-resource metadata", "the PRM lists no authorization_servers", "", "PRM-02")
	}
	for _, issuer := range m.AuthorizationServers {
		as, probes, err := t.client.DiscoverAS(t.Label("discover %s", issuer), issuer)
		if err != nil {
			var parts []string
			for _, p := range probes {
				parts = append(parts, describeFetch(p.URL, p.Resp, p.Err))
			}
			t.Errorf("no metadata for authorization server %s: %s", issuer, strings.Join(parts, "; "))
			continue
		}
		if as.Issuer != issuer {
			t.Errorf("metadata at %s has issuer %q but the PRM names %q; clients must reject it (RFC 8414 §3.3)", as.URL, as.Issuer, issuer)
		}
	}
}

// PRM-10: well-known variants that are not served answer 404/405, not an HTML fallback or a
// different document.
func prm10(t *T) {
	m, _ := t.fetchPRM()
	urls, err := oauthclient.PRMURLs(t.env.cfg.Target)
	t.Must(err, "well-known URLs")
	u, _ := url.Parse(t.env.cfg.Target)
	urls = append(urls, u.Scheme+"://"+u.Host+"/.well-known/oauth-protected-resource/conformance-no-such-resource")
	good, _ := json.Marshal(m.Raw)
	for _, v := range urls {
		if v == m.URL {
			continue
		}
		resp, err := t.client.Get(t.Label("probe a PRM variant"), v, http.Header{"Accept": {"application/json"}})
		t.Must(err, "probe "+v)
		switch {
		case resp.Status == http.StatusNotFound || resp.Status == http.StatusMethodNotAllowed:
		case resp.Status == http.StatusOK && resp.JSON != nil:
			got, _ := json.Marshal(resp.JSON)
			if strings.HasSuffix(v, "conformance-no-such-resource") {
				t.Errorf("%s (a resource that does not exist) is served with a PRM document", v)
			} else if !bytes.Equal(got, good) {
				t.Errorf("%s serves a different PRM document than %s", v, m.URL)
			}
		case resp.Status == http.StatusOK:
			t.Errorf("%s answers 200 with %q instead of 404 (a catch-all page confuses clients)", v, resp.MediaType())
		case resp.Status >= 500:
			t.Errorf("%s answers %s", v, resp.Describe())
		default:
			t.Logf("%s answers %s", v, resp.Describe())
		}
	}
}

// PRM-11: no member shadows a registered one under another spelling (scopes for scopes_supported).
func prm11(t *T) {
	m, _ := t.fetchPRM()
	t.gradeShadows("the PRM", m.Raw, prmMembers)
}
