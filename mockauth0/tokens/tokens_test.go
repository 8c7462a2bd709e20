package tokens

import (
	"strings"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/keys"
)

func minter(t *testing.T) *Minter {
	t.Helper()
	ks, err := keys.New("t.example", 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &Minter{Keys: ks, Issuer: "https://t.example/"}
}

func TestOpaqueRoundTripOnlyWithTenantKey(t *testing.T) {
	m, other := minter(t), minter(t)
	now := time.Now()
	tok, err := m.Opaque(Claims{"sub": "auth0|1", "exp": now.Add(time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	if Kind(tok) != "jwe" {
		t.Fatalf("kind %s", Kind(tok))
	}
	c, err := m.OpenOpaque(tok, now)
	if err != nil || c.String("sub") != "auth0|1" {
		t.Fatalf("open: %v %v", c, err)
	}
	if _, err := other.OpenOpaque(tok, now); err == nil {
		t.Fatal("another tenant decrypted the token")
	}
	if _, err := m.OpenOpaque(tok, now.Add(2*time.Minute)); err == nil {
		t.Fatal("expired token accepted")
	}
}

func TestVerifyRejects(t *testing.T) {
	m, other := minter(t), minter(t)
	now := time.Now()
	good, _ := m.Sign(Claims{"iss": m.Issuer, "exp": now.Add(time.Minute).Unix()}, "JWT")
	foreign, _ := other.Sign(Claims{"iss": m.Issuer, "exp": now.Add(time.Minute).Unix()}, "JWT")
	wrongIss, _ := m.Sign(Claims{"iss": "https://evil/", "exp": now.Add(time.Minute).Unix()}, "JWT")
	noExp, _ := m.Sign(Claims{"iss": m.Issuer}, "JWT")
	if _, err := m.Verify(good, now); err != nil {
		t.Fatalf("good token: %v", err)
	}
	for name, tok := range map[string]string{
		"other key": foreign, "wrong iss": wrongIss, "no exp": noExp, "garbage": "a.b.c",
		"alg none": "eyJhbGciOiJub25lIn0." + strings.Split(good, ".")[1] + ".",
	} {
		if _, err := m.Verify(tok, now); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := m.Verify(good, now.Add(time.Hour)); err == nil {
		t.Error("expired accepted")
	}
	// After rotation, the previous key still verifies until revoked.
	old := m.Keys.Current().KID
	if _, err := m.Keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(good, now); err != nil {
		t.Fatalf("token of the previous key: %v", err)
	}
	if err := m.Keys.Revoke(old); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(good, now); err == nil {
		t.Fatal("token of a revoked key accepted")
	}
	if err := m.Keys.Revoke(m.Keys.Current().KID); err == nil {
		t.Fatal("current key revoked")
	}
}
