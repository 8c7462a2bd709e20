package oauthclient

import (
	"fmt"
	"strings"
)

// Challenge is one auth-scheme challenge of a WWW-Authenticate header (RFC 9110 §11.6.1).
type Challenge struct {
	Scheme string
	// Params maps lower-cased parameter names to their (unquoted) values; Dups lists names that
	// appeared more than once (RFC 6750 §3: each attribute MUST NOT appear more than once).
	Params map[string]string
	Dups   []string
}

// Param returns a parameter value.
func (c Challenge) Param(name string) (string, bool) {
	v, ok := c.Params[strings.ToLower(name)]
	return v, ok
}

// ParseWWWAuthenticate parses every challenge in the given header values. It is strict: a
// malformed header is an error (a client would fail on it too).
func ParseWWWAuthenticate(values []string) ([]Challenge, error) {
	var out []Challenge
	for _, v := range values {
		cs, err := parseChallenges(v)
		if err != nil {
			return out, fmt.Errorf("WWW-Authenticate %q: %w", v, err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

// BearerChallenge returns the first Bearer challenge (scheme compared case-insensitively).
func BearerChallenge(values []string) (Challenge, bool, error) {
	cs, err := ParseWWWAuthenticate(values)
	for _, c := range cs {
		if strings.EqualFold(c.Scheme, "Bearer") {
			return c, true, err
		}
	}
	return Challenge{}, false, err
}

type lexer struct {
	s string
	i int
}

func (l *lexer) ws() {
	for l.i < len(l.s) && (l.s[l.i] == ' ' || l.s[l.i] == '\t') {
		l.i++
	}
}

func isTChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func (l *lexer) token() string {
	start := l.i
	for l.i < len(l.s) && isTChar(l.s[l.i]) {
		l.i++
	}
	return l.s[start:l.i]
}

func (l *lexer) quoted() (string, error) {
	if l.i >= len(l.s) || l.s[l.i] != '"' {
		return "", fmt.Errorf("expected a quoted string at offset %d", l.i)
	}
	l.i++
	var b strings.Builder
	for l.i < len(l.s) {
		c := l.s[l.i]
		switch c {
		case '\\':
			if l.i+1 >= len(l.s) {
				return "", fmt.Errorf("dangling escape")
			}
			b.WriteByte(l.s[l.i+1])
			l.i += 2
		case '"':
			l.i++
			return b.String(), nil
		default:
			b.WriteByte(c)
			l.i++
		}
	}
	return "", fmt.Errorf("unterminated quoted string")
}

func parseChallenges(s string) ([]Challenge, error) {
	l := &lexer{s: s}
	var out []Challenge
	for {
		l.ws()
		for l.i < len(l.s) && l.s[l.i] == ',' {
			l.i++
			l.ws()
		}
		if l.i >= len(l.s) {
			return out, nil
		}
		scheme := l.token()
		if scheme == "" {
			return out, fmt.Errorf("expected an auth scheme at offset %d", l.i)
		}
		c := Challenge{Scheme: scheme, Params: map[string]string{}}
		l.ws()
		// Parameters: name=value pairs separated by commas, until a bare token (the next
		// challenge's scheme) or the end.
		for l.i < len(l.s) {
			save := l.i
			name := l.token()
			l.ws()
			if name == "" || l.i >= len(l.s) || l.s[l.i] != '=' {
				l.i = save
				break
			}
			l.i++ // '='
			l.ws()
			var val string
			if l.i < len(l.s) && l.s[l.i] == '"' {
				v, err := l.quoted()
				if err != nil {
					return out, err
				}
				val = v
			} else {
				val = l.token()
			}
			key := strings.ToLower(name)
			if _, dup := c.Params[key]; dup {
				c.Dups = append(c.Dups, key)
			}
			c.Params[key] = val
			l.ws()
			if l.i < len(l.s) && l.s[l.i] == ',' {
				l.i++
				l.ws()
				continue
			}
			break
		}
		out = append(out, c)
		if l.i < len(l.s) && l.s[l.i] != ',' && !isTChar(l.s[l.i]) {
			return out, fmt.Errorf("unexpected %q at offset %d", l.s[l.i], l.i)
		}
	}
}
