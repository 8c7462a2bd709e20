package evidence

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// secretParams are form, query and JSON fields whose values are secrets.
var secretParams = map[string]bool{
	"access_token": true, "refresh_token": true, "id_token": true, "code": true, "code_verifier": true,
	"client_secret": true, "password": true, "token": true, "assertion": true, "client_assertion": true,
	"csrf_token": true, "subject_token": true, "actor_token": true, "registration_access_token": true,
}

// tokenFields are the secret fields that hold tokens worth decoding.
var tokenFields = map[string]bool{"access_token": true, "refresh_token": true, "id_token": true, "token": true}

// Elide replaces a secret with its length and a short hash.
func Elide(v string) string {
	if v == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(v))
	return fmt.Sprintf("‹elided %d chars sha256:%s›", len(v), hex.EncodeToString(sum[:4]))
}

// RedactValues returns a copy of v with secret values elided.
func RedactValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		for _, s := range vs {
			if secretParams[strings.ToLower(k)] {
				s = Elide(s)
			}
			out.Add(k, s)
		}
	}
	return out
}

// RedactURL elides secret query parameters and the fragment's secret parameters.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if u.RawQuery != "" {
		u.RawQuery = RedactValues(u.Query()).Encode()
	}
	if u.Fragment != "" {
		if fv, err := url.ParseQuery(u.Fragment); err == nil {
			u.Fragment = RedactValues(fv).Encode()
		}
	}
	if u.User != nil {
		if _, hasPw := u.User.Password(); hasPw {
			u.User = url.UserPassword(u.User.Username(), "‹elided›")
		}
	}
	return u.String()
}

// RedactHeader returns a copy of h with credentials and cookie values elided.
func RedactHeader(h http.Header) map[string][]string {
	out := map[string][]string{}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			out[k] = append(out[k], redactHeaderValue(k, v))
		}
	}
	return out
}

func redactHeaderValue(name, v string) string {
	switch strings.ToLower(name) {
	case "authorization":
		scheme, cred, ok := strings.Cut(v, " ")
		if !ok {
			return Elide(v)
		}
		return scheme + " " + Elide(strings.TrimSpace(cred))
	case "cookie":
		parts := strings.Split(v, ";")
		for i, p := range parts {
			name, val, _ := strings.Cut(strings.TrimSpace(p), "=")
			parts[i] = name + "=" + Elide(val)
		}
		return strings.Join(parts, "; ")
	case "set-cookie":
		first, rest, _ := strings.Cut(v, ";")
		name, val, _ := strings.Cut(first, "=")
		if rest != "" {
			rest = ";" + rest
		}
		return name + "=" + Elide(val) + rest
	case "location", "content-location":
		return RedactURL(v)
	}
	return v
}

// RedactBody elides secrets in a form-encoded or JSON body and decodes any tokens it carries.
func RedactBody(contentType string, body []byte) (string, []Token) {
	const max = 16 << 10
	ct := strings.ToLower(contentType)
	switch {
	case strings.Contains(ct, "json") || (len(body) > 0 && (body[0] == '{' || body[0] == '[')):
		var v any
		if err := json.Unmarshal(body, &v); err == nil {
			var toks []Token
			v = redactJSON(v, "", &toks)
			b, _ := json.MarshalIndent(v, "", "  ")
			return clipBody(string(b), max), toks
		}
	case strings.Contains(ct, "x-www-form-urlencoded"):
		if vals, err := url.ParseQuery(string(body)); err == nil {
			var toks []Token
			for k, vs := range vals {
				if tokenFields[strings.ToLower(k)] {
					for _, s := range vs {
						toks = append(toks, DecodeToken(k, s))
					}
				}
			}
			return clipBody(RedactValues(vals).Encode(), max), toks
		}
	}
	return clipBody(string(body), max), nil
}

func redactJSON(v any, key string, toks *[]Token) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = redactJSON(e, k, toks)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = redactJSON(e, key, toks)
		}
		return x
	case string:
		if secretParams[strings.ToLower(key)] {
			if tokenFields[strings.ToLower(key)] {
				*toks = append(*toks, DecodeToken(key, x))
			}
			return Elide(x)
		}
		return x
	}
	return v
}

func clipBody(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("… (%d bytes more)", len(s)-n)
}
