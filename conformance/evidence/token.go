package evidence

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// Token kinds.
const (
	KindJWS    = "JWS"
	KindJWE    = "JWE"
	KindOpaque = "opaque"
)

// Token is a decoded token with its signature (and value) elided.
type Token struct {
	Field  string         `json:"field"`
	Kind   string         `json:"kind"`
	Value  string         `json:"value"` // Elide(raw)
	Header map[string]any `json:"header,omitempty"`
	Claims map[string]any `json:"claims,omitempty"`
}

// DecodeToken classifies a token: a compact JWS (3 parts) shows header and claims, a compact JWE
// (5 parts) its protected header, anything else is opaque.
func DecodeToken(field, raw string) Token {
	t := Token{Field: field, Kind: KindOpaque, Value: Elide(raw)}
	parts := strings.Split(raw, ".")
	switch len(parts) {
	case 3:
		h, err1 := decodeSegment(parts[0])
		c, err2 := decodeSegment(parts[1])
		if err1 == nil && err2 == nil {
			t.Kind, t.Header, t.Claims = KindJWS, h, c
		}
	case 5:
		if h, err := decodeSegment(parts[0]); err == nil {
			t.Kind, t.Header = KindJWE, h
		}
	}
	return t
}

func decodeSegment(s string) (map[string]any, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}
