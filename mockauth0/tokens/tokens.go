// Package tokens mints and reads the tokens of the mock tenant, shaped as Auth0 shapes them:
//
//   - API access tokens: RS256 JWS with kid, claims iss, sub, aud ([api, <issuer>userinfo] when openid was
//     requested, else the API), iat, exp, scope, azp (+ gty, permissions, jti/client_id per dialect);
//   - no audience: a JWE Compact {"alg":"dir","enc":"A256GCM","iss":<issuer>} that only /userinfo reads;
//   - APIs with token encryption: a nested JWT, the JWS above inside a JWE (RSA-OAEP-256 + A256GCM, cty JWT);
//   - id tokens: RS256 JWS for the client (aud = client_id) with nonce.
package tokens

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/keys"
)

// Claims are a token's claims as a JSON object.
type Claims map[string]any

// Minter signs and encrypts tokens with the tenant's keys.
type Minter struct {
	Keys   *keys.Set
	Issuer string // with trailing slash
}

// Sign produces an RS256 JWS with the current key. typ is the JOSE "typ" header ("JWT" or "at+jwt").
func (m *Minter) Sign(c Claims, typ string) (string, error) {
	k := m.Keys.Current()
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k.Private, KeyID: k.KID}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)),
	)
	if err != nil {
		return "", fmt.Errorf("create signer: %w", err)
	}
	s, err := jwt.Signed(signer).Claims(map[string]any(c)).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// EncryptNested wraps a JWS in a JWE Compact for the API's public key (RSA-OAEP-256 + A256GCM, cty JWT).
func (m *Minter) EncryptNested(jws string, pub *rsa.PublicKey, kid string) (string, error) {
	enc, err := jose.NewEncrypter(jose.A256GCM,
		jose.Recipient{Algorithm: jose.RSA_OAEP_256, Key: pub, KeyID: kid},
		(&jose.EncrypterOptions{}).WithContentType("JWT").WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("create nested-JWE encrypter: %w", err)
	}
	obj, err := enc.Encrypt([]byte(jws))
	if err != nil {
		return "", fmt.Errorf("encrypt nested JWT: %w", err)
	}
	return obj.CompactSerialize()
}

// Opaque produces the token Auth0 issues when no audience is requested: a "dir"/A256GCM JWE whose
// protected header carries the issuer, readable only by this tenant.
func (m *Minter) Opaque(c Claims) (string, error) {
	enc, err := jose.NewEncrypter(jose.A256GCM,
		jose.Recipient{Algorithm: jose.DIRECT, Key: m.Keys.UserinfoKey()},
		(&jose.EncrypterOptions{}).WithHeader("iss", m.Issuer))
	if err != nil {
		return "", fmt.Errorf("create opaque-token encrypter: %w", err)
	}
	body, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode opaque token: %w", err)
	}
	obj, err := enc.Encrypt(body)
	if err != nil {
		return "", fmt.Errorf("encrypt opaque token: %w", err)
	}
	return obj.CompactSerialize()
}

// ErrInvalid is returned for a token this tenant did not issue, cannot read, or that has expired.
var ErrInvalid = errors.New("invalid token")

// OpenOpaque decrypts a token minted by Opaque and checks its expiry.
func (m *Minter) OpenOpaque(tok string, now time.Time) (Claims, error) {
	obj, err := jose.ParseEncryptedCompact(tok, []jose.KeyAlgorithm{jose.DIRECT}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	body, err := obj.Decrypt(m.Keys.UserinfoKey())
	if err != nil {
		return nil, fmt.Errorf("%w: cannot decrypt", ErrInvalid)
	}
	var c Claims
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("%w: bad payload", ErrInvalid)
	}
	if err := checkTimes(c, now); err != nil {
		return nil, err
	}
	return c, nil
}

// Verify checks a JWS signed by one of the tenant's published keys, its issuer and expiry.
func (m *Minter) Verify(tok string, now time.Time) (Claims, error) {
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(parsed.Headers) != 1 {
		return nil, fmt.Errorf("%w: expected one signature", ErrInvalid)
	}
	k, ok := m.Keys.Lookup(parsed.Headers[0].KeyID)
	if !ok {
		return nil, fmt.Errorf("%w: unknown kid", ErrInvalid)
	}
	var c Claims
	if err := parsed.Claims(&k.Private.PublicKey, &c); err != nil {
		return nil, fmt.Errorf("%w: bad signature", ErrInvalid)
	}
	if iss, _ := c["iss"].(string); iss != m.Issuer {
		return nil, fmt.Errorf("%w: wrong issuer", ErrInvalid)
	}
	if err := checkTimes(c, now); err != nil {
		return nil, err
	}
	return c, nil
}

func checkTimes(c Claims, now time.Time) error {
	exp, ok := c["exp"].(float64)
	if !ok {
		return fmt.Errorf("%w: no exp", ErrInvalid)
	}
	if now.Unix() >= int64(exp) {
		return fmt.Errorf("%w: expired", ErrInvalid)
	}
	return nil
}

// Kind classifies a compact token by its shape: "jws" (3 parts), "jwe" (5 parts) or "opaque".
func Kind(tok string) string {
	switch strings.Count(tok, ".") {
	case 2:
		return "jws"
	case 4:
		return "jwe"
	default:
		return "opaque"
	}
}

// Audiences returns the aud claim as a list (Auth0 uses a string or an array).
func (c Claims) Audiences() []string {
	switch v := c["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, a := range v {
			if s, ok := a.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// String returns a string claim or "".
func (c Claims) String(name string) string {
	s, _ := c[name].(string)
	return s
}
