package oauthproxy

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/cnpg-mcp/cnpg-mcp/server/config"
)

// Redirect-URI rules at registration (DCR-04/05/06/09, BCP-05) and matching at authorization
// (AZ-03, BCP-03/04, CLI-07, PXY-09). Tests: TestDCR04…, TestDCR05…, TestDCR06…, TestDCR09…,
// TestAZ03_ExactRedirectMatching, TestCLI07_LoopbackPortVariation.
//
// Registration: absolute; plain ASCII (no look-alike or bidi characters, even percent-encoded in the
// host: TestBCP31_RedirectURIHomographsRefused); no fragment (not even an empty '#'); no user info; no
// dot segments; none of the response parameters (code, state, iss, error) in the query, so `iss`
// appears exactly once in our responses; never javascript:, data:, file:, vbscript:, about:, blob:; http only on a loopback host
// (127.0.0.0/8, [::1], localhost) and never for application_type web; web needs https on a
// non-loopback host. Private-use schemes (cursor://, vscode://) are accepted for native clients
// without the reverse-domain check (DCR-07 SHOULD): Cursor and VS Code do not use a dotted scheme.
//
// Matching: simple string comparison with the registered value; the only exception is the port of a
// loopback redirect URI (RFC 8252 §7.3), where everything else must still match byte for byte. No
// wildcard or pattern mode exists, and no client is ever synthesized.

var forbiddenSchemes = map[string]bool{"javascript": true, "data": true, "file": true, "vbscript": true, "about": true, "blob": true}

func validateRedirectURI(raw, appType string) error {
	if raw == "" || len(raw) > 2000 {
		return errors.New("redirect URI empty or too long")
	}
	if strings.Contains(raw, "#") {
		return errors.New("redirect URI must not contain a fragment")
	}
	for _, r := range raw {
		if r <= ' ' || r == 0x7f {
			return errors.New("redirect URI contains spaces or control characters")
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return errors.New("redirect URI must be an absolute URI")
	}
	if err := plainASCII(raw, u); err != nil {
		return fmt.Errorf("redirect URI %w", err)
	}
	scheme := strings.ToLower(u.Scheme)
	if forbiddenSchemes[scheme] {
		return fmt.Errorf("redirect URI scheme %s: is not allowed", scheme)
	}
	if u.User != nil {
		return errors.New("redirect URI must not contain user info")
	}
	if hasDotSegment(u.EscapedPath()) || hasDotSegment(u.Opaque) {
		return errors.New("redirect URI must not contain . or .. path segments")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return errors.New("redirect URI has a malformed query")
	}
	for _, k := range []string{"code", "state", "iss", "error", "error_description"} {
		if q.Has(k) {
			return fmt.Errorf("redirect URI must not carry the response parameter %q", k)
		}
	}
	loop := config.IsLoopbackHost(u.Hostname())
	switch scheme {
	case "http":
		if !loop || u.Host == "" {
			return errors.New("http redirect URIs are allowed only on a loopback host (127.0.0.1, [::1], localhost); use https")
		}
		if appType == "web" {
			return errors.New("application_type web requires https redirect URIs on a non-loopback host")
		}
	case "https":
		if u.Host == "" {
			return errors.New("https redirect URI needs a host")
		}
		if appType == "web" && loop {
			return errors.New("application_type web requires a non-loopback host")
		}
	default:
		if appType == "web" {
			return errors.New("application_type web requires https redirect URIs")
		}
		if u.Opaque == "" && u.Host == "" && u.Path == "" {
			return errors.New("redirect URI has no path")
		}
	}
	return nil
}

// plainASCII refuses what would make a URI shown to the user read as another one (BCP-31): the
// consent page names the redirect host and the client_id host, so look-alike letters (IDN homographs
// such as a Cyrillic "о") or bidi overrides would show one destination and send the browser to
// another. URIs are ASCII (RFC 3986): international host names go in punycode, other characters
// percent-encoded — except in the host, which url.Parse decodes back to Unicode.
func plainASCII(raw string, u *url.URL) error {
	for i := 0; i < len(raw); i++ {
		if raw[i] >= 0x80 {
			return errors.New("must be plain ASCII: write international host names in punycode (xn--…) and percent-encode other characters")
		}
	}
	for i := 0; i < len(u.Host); i++ {
		if u.Host[i] >= 0x80 {
			return errors.New("host must be plain ASCII: write international host names in punycode (xn--…), not percent-encoded")
		}
	}
	return nil
}

func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		s := strings.ToLower(seg)
		s = strings.ReplaceAll(s, "%2e", ".")
		if s == "." || s == ".." {
			return true
		}
	}
	return false
}

// matchRedirectURI returns the redirect URI to use if got matches a registered one.
func matchRedirectURI(registered []string, got string) (string, bool) {
	if strings.Contains(got, "#") {
		return "", false
	}
	for _, r := range registered {
		if r == got {
			return got, true
		}
	}
	for _, r := range registered {
		if loopbackPortVariant(r, got) {
			return got, true
		}
	}
	return "", false
}

// loopbackPortVariant: both are http(s) URIs on the same loopback host literal and equal as raw
// strings once the port is removed from the authority.
func loopbackPortVariant(reg, got string) bool {
	ru, err1 := url.Parse(reg)
	gu, err2 := url.Parse(got)
	if err1 != nil || err2 != nil || gu.User != nil || ru.User != nil {
		return false
	}
	if (ru.Scheme != "http" && ru.Scheme != "https") || ru.Scheme != gu.Scheme {
		return false
	}
	if !config.IsLoopbackHost(ru.Hostname()) || ru.Hostname() != gu.Hostname() {
		return false
	}
	a, ok1 := stripPort(reg)
	b, ok2 := stripPort(got)
	return ok1 && ok2 && a == b
}

// stripPort removes ":port" from the authority of a raw http(s) URI string.
func stripPort(raw string) (string, bool) {
	i := strings.Index(raw, "://")
	if i < 0 {
		return "", false
	}
	rest := raw[i+3:]
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	auth := rest[:end]
	if strings.Contains(auth, "@") {
		return "", false
	}
	host := auth
	if c := strings.LastIndexByte(auth, ':'); c >= 0 && c > strings.LastIndexByte(auth, ']') {
		port := auth[c+1:]
		for _, d := range port {
			if d < '0' || d > '9' {
				return "", false
			}
		}
		host = auth[:c]
	}
	return raw[:i+3] + host + rest[end:], true
}

// autoRedirectErrors says whether authorization errors may go straight to the redirect URI (AZ-10,
// BCP-07): only for loopback redirect URIs, which cannot be an attacker's web site. For any other
// redirect URI the user first sees our page naming the error and the destination, with a link.
func autoRedirectErrors(redirectURI string) bool {
	u, err := url.Parse(redirectURI)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && config.IsLoopbackHost(u.Hostname())
}
