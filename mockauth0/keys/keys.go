// Package keys holds the tenant's signing keys (RS256, published at /.well-known/jwks.json with an x5c
// chain as Auth0 does) and the symmetric key that encrypts the opaque /userinfo access tokens.
package keys

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is defined as a SHA-1 thumbprint (RFC 7517 §4.8)
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// SigningKey is one RSA key with its key ID and self-signed certificate.
type SigningKey struct {
	KID     string
	Private *rsa.PrivateKey
	Cert    *x509.Certificate
}

// Set is the tenant's key material. The current signing key signs; earlier keys stay published until
// revoked so tokens signed before a rotation still verify (Auth0's "previous key").
type Set struct {
	mu       sync.RWMutex
	signing  []*SigningKey // [0] is current
	userinfo []byte        // 32-byte A256GCM key for "dir" JWEs
	bits     int
	subject  string
}

// New generates a key set. bits is the RSA size (2048 unless tests need speed or more).
func New(subject string, bits int) (*Set, error) {
	if bits == 0 {
		bits = 2048
	}
	s := &Set{bits: bits, subject: subject, userinfo: make([]byte, 32)}
	if _, err := rand.Read(s.userinfo); err != nil {
		return nil, fmt.Errorf("generate userinfo token key: %w", err)
	}
	k, err := newSigningKey(subject, bits)
	if err != nil {
		return nil, err
	}
	s.signing = []*SigningKey{k}
	return s, nil
}

func newSigningKey(subject string, bits int) (*SigningKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, fmt.Errorf("generate RSA signing key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, fmt.Errorf("generate certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: subject},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, fmt.Errorf("self-sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	kidBytes := make([]byte, 16)
	if _, err := rand.Read(kidBytes); err != nil {
		return nil, fmt.Errorf("generate kid: %w", err)
	}
	return &SigningKey{KID: base64.RawURLEncoding.EncodeToString(kidBytes), Private: priv, Cert: cert}, nil
}

// Current returns the key that signs new tokens.
func (s *Set) Current() *SigningKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.signing[0]
}

// Lookup finds a published key by ID.
func (s *Set) Lookup(kid string) (*SigningKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, k := range s.signing {
		if k.KID == kid {
			return k, true
		}
	}
	return nil, false
}

// Rotate makes a new current key; the old ones stay published. It returns the new key ID.
func (s *Set) Rotate() (string, error) {
	k, err := newSigningKey(s.subject, s.bits)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.signing = append([]*SigningKey{k}, s.signing...)
	s.mu.Unlock()
	return k.KID, nil
}

// Revoke unpublishes a previous key; the current key cannot be revoked.
func (s *Set) Revoke(kid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.signing[0].KID == kid {
		return fmt.Errorf("key %s is the current signing key: rotate first", kid)
	}
	for i, k := range s.signing {
		if k.KID == kid {
			s.signing = append(s.signing[:i], s.signing[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("no published key %s", kid)
}

// KIDs lists the published key IDs, current first.
func (s *Set) KIDs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, len(s.signing))
	for i, k := range s.signing {
		out[i] = k.KID
	}
	return out
}

// JWKS is the public key set as served at /.well-known/jwks.json.
func (s *Set) JWKS() jose.JSONWebKeySet {
	s.mu.RLock()
	defer s.mu.RUnlock()
	set := jose.JSONWebKeySet{}
	for _, k := range s.signing {
		thumb := sha1.Sum(k.Cert.Raw) //nolint:gosec // see import
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key: &k.Private.PublicKey, KeyID: k.KID, Algorithm: string(jose.RS256), Use: "sig",
			Certificates:              []*x509.Certificate{k.Cert},
			CertificateThumbprintSHA1: thumb[:],
		})
	}
	return set
}

// UserinfoKey is the symmetric key of the opaque (JWE "dir") tokens only this tenant can read.
func (s *Set) UserinfoKey() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.userinfo
}
