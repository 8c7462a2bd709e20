package seal

import (
	"bytes"
	"testing"
)

func key(id byte, fill byte) Key { return Key{ID: id, Secret: bytes.Repeat([]byte{fill}, 32)} }

func TestSealOpenRotationAndBinding(t *testing.T) {
	old, err := New([]Key{key(1, 'a')})
	if err != nil {
		t.Fatal(err)
	}
	blob, err := old.Seal([]byte("upstream-refresh-token"), []byte("grants/g1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, []byte("upstream-refresh-token")) {
		t.Fatal("plaintext visible in sealed value")
	}
	rotated, err := New([]Key{key(2, 'b'), key(1, 'a')})
	if err != nil {
		t.Fatal(err)
	}
	pt, err := rotated.Open(blob, []byte("grants/g1"))
	if err != nil || string(pt) != "upstream-refresh-token" {
		t.Fatalf("open after rotation: %q %v", pt, err)
	}
	nb, _ := rotated.Seal(pt, []byte("grants/g1"))
	if nb[0] != 2 {
		t.Fatalf("new values must use the active key, got id %d", nb[0])
	}
	cases := map[string]func() ([]byte, error){
		"other record": func() ([]byte, error) { return rotated.Open(blob, []byte("grants/g2")) },
		"tampered": func() ([]byte, error) {
			b := bytes.Clone(blob)
			b[len(b)-1] ^= 1
			return rotated.Open(b, []byte("grants/g1"))
		},
		"unknown key":       func() ([]byte, error) { s, _ := New([]Key{key(3, 'c')}); return s.Open(blob, []byte("grants/g1")) },
		"truncated":         func() ([]byte, error) { return rotated.Open(blob[:5], []byte("grants/g1")) },
		"empty":             func() ([]byte, error) { return rotated.Open(nil, nil) },
		"wrong key same id": func() ([]byte, error) { s, _ := New([]Key{key(1, 'z')}); return s.Open(blob, []byte("grants/g1")) },
	}
	for name, f := range cases {
		if _, err := f(); err != ErrOpen {
			t.Errorf("%s: want ErrOpen, got %v", name, err)
		}
	}
}

func TestNewRejectsBadKeys(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Error("no keys accepted")
	}
	if _, err := New([]Key{{ID: 1, Secret: []byte("short")}}); err == nil {
		t.Error("short key accepted")
	}
	if _, err := New([]Key{key(1, 'a'), key(1, 'b')}); err == nil {
		t.Error("duplicate id accepted")
	}
}
