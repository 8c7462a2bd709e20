// Package seal encrypts values at rest with AES-256-GCM. A sealed value is
// keyID(1 byte) || nonce(12 bytes) || ciphertext+tag; the key ID lets keys rotate: new values are sealed
// with the active key, old values open with any configured key. Callers bind each value to its record
// key through the additional data so a sealed blob cannot be moved to another record.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Key is one AES-256 key with its one-byte ID.
type Key struct {
	ID     byte
	Secret []byte // exactly 32 bytes
}

// Sealer seals with the active (first) key and opens with any key.
type Sealer struct {
	active byte
	aeads  map[byte]cipher.AEAD
}

// ErrOpen is returned when a value cannot be opened (unknown key, tampering, wrong record).
var ErrOpen = errors.New("seal: cannot open sealed value")

// New builds a Sealer; keys[0] is the active key.
func New(keys []Key) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal: at least one key is required")
	}
	s := &Sealer{active: keys[0].ID, aeads: make(map[byte]cipher.AEAD, len(keys))}
	for _, k := range keys {
		if len(k.Secret) != 32 {
			return nil, fmt.Errorf("seal: key %d must be 32 bytes, got %d", k.ID, len(k.Secret))
		}
		if _, dup := s.aeads[k.ID]; dup {
			return nil, fmt.Errorf("seal: duplicate key id %d", k.ID)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("seal: key %d: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("seal: key %d: %w", k.ID, err)
		}
		s.aeads[k.ID] = aead
	}
	return s, nil
}

// Seal encrypts plaintext bound to ad.
func (s *Sealer) Seal(plaintext, ad []byte) ([]byte, error) {
	aead := s.aeads[s.active]
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = s.active
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return aead.Seal(out, out[1:], plaintext, ad), nil
}

// Open decrypts a value produced by Seal with the same ad.
func (s *Sealer) Open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < 1 {
		return nil, ErrOpen
	}
	aead, ok := s.aeads[sealed[0]]
	if !ok || len(sealed) < 1+aead.NonceSize()+aead.Overhead() {
		return nil, ErrOpen
	}
	n := aead.NonceSize()
	pt, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
