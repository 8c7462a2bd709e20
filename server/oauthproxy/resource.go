package oauthproxy

import (
	"net/url"
	"strings"
)

// checkResource validates an RFC 8707 resource parameter against our canonical resource URL
// (RES-01/03/04/05/08; tests TestRES…): absolute, no fragment, no user info; scheme and host compared
// case-insensitively; the path must match, a single trailing slash tolerated. When our resource URL
// has a query (multi-tenant URLs) the query must match exactly; when it has none, a query the client
// added is ignored (ChatGPT appends ?kb_name=…, CLI-10) and the token is still for our URL. An empty
// value means "the default", our resource.
func (p *Proxy) checkResource(raw string) bool {
	if raw == "" {
		return true
	}
	if strings.Contains(raw, "#") {
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.Opaque != "" {
		return false
	}
	want, err := url.Parse(p.o.Resource)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Scheme, want.Scheme) &&
		strings.EqualFold(u.Host, want.Host) &&
		strings.TrimSuffix(u.EscapedPath(), "/") == strings.TrimSuffix(want.EscapedPath(), "/") &&
		(want.RawQuery == "" || u.RawQuery == want.RawQuery)
}
