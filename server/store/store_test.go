package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/store"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/bolt"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/seal"
	bbolt "go.etcd.io/bbolt"
)

// PXY-14: upstream tokens are sealed at rest; refresh tokens and codes are stored by hash only.
func TestPXY14_SecretsNeverStoredInClear(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	st, _, now := newTestStore(t, path)
	ctx := context.Background()
	secrets := []string{"UPSTREAM-AT-SECRET", "UPSTREAM-RT-SECRET", "UPSTREAM-IDT-SECRET", "OUR-CODE-SECRET", "OUR-RT-SECRET", "CSRF-SECRET", "STATE-SECRET"}
	g := store.Grant{ID: "g1", ClientID: "c", Subject: "auth0|u", ExpiresAt: now.Add(time.Hour),
		Upstream: store.UpstreamTokens{AccessToken: secrets[0], RefreshToken: secrets[1], IDToken: secrets[2]}}
	must(t, st.CreateGrant(ctx, g))
	must(t, st.PutCode(ctx, secrets[3], store.Code{GrantID: "g1", ExpiresAt: now.Add(time.Minute)}))
	must(t, st.PutRefreshToken(ctx, secrets[4], store.RefreshToken{GrantID: "g1", ExpiresAt: now.Add(time.Hour), IdleUntil: now.Add(time.Hour)}))
	must(t, st.PutCSRF(ctx, secrets[5], store.CSRF{TxnID: "t", ExpiresAt: now.Add(time.Minute)}))
	must(t, st.PutUpstreamSession(ctx, secrets[6], store.UpstreamSession{ExpiresAt: now.Add(time.Minute)}))

	got, err := st.GetGrant(ctx, "g1")
	if err != nil || got.Upstream.RefreshToken != secrets[1] {
		t.Fatalf("GetGrant: %+v %v", got, err)
	}
	if _, _, err := st.GetCode(ctx, secrets[3]); err != nil {
		t.Fatal(err)
	}
	must(t, st.Close())
	raw := dump(t, path)
	for _, s := range secrets {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("%s stored in clear", s)
		}
	}
}

// A sealed blob moved to another grant does not open (record key is the additional data).
func TestSealedBlobBoundToGrant(t *testing.T) {
	st, kv, now := newTestStore(t, filepath.Join(t.TempDir(), "s.db"))
	defer st.Close()
	ctx := context.Background()
	must(t, st.CreateGrant(ctx, store.Grant{ID: "g1", ExpiresAt: now.Add(time.Hour), Upstream: store.UpstreamTokens{RefreshToken: "x"}}))
	e, _ := kv.Get(ctx, store.BucketGrants, "g1", now)
	must(t, kv.Create(ctx, store.BucketGrants, "g2", bytes.Replace(e.Value, []byte(`"id":"g1"`), []byte(`"id":"g2"`), 1), time.Time{}, now))
	if _, err := st.GetGrant(ctx, "g2"); err == nil {
		t.Fatal("sealed tokens opened under another grant id")
	}
	// A revoked grant is never resurrected by an update racing with the revocation.
	must(t, st.RevokeGrant(ctx, "g1"))
	if err := st.UpdateGrant(ctx, store.Grant{ID: "g1", ExpiresAt: now.Add(time.Hour)}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateGrant after revoke: %v", err)
	}
	if ok, _ := st.GrantActive(ctx, "g1"); ok {
		t.Fatal("revoked grant active")
	}
}

// newTestStore opens a bolt store at path with one sealing key and a fixed clock.
func newTestStore(t *testing.T, path string) (store.Store, *bolt.KV, time.Time) {
	t.Helper()
	kv, err := bolt.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.New([]seal.Key{{ID: 1, Secret: bytes.Repeat([]byte{7}, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	return store.New(kv, sealer, func() time.Time { return now }), kv, now
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func dump(t *testing.T, path string) []byte {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []byte
	_ = db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error { out = append(append(out, k...), v...); return nil })
		})
	})
	return out
}

// An update that changes the upstream tokens seals them again; one that does not keeps the blob.
func TestUpdateGrantReseals(t *testing.T) {
	st, _, now := newTestStore(t, filepath.Join(t.TempDir(), "s.db"))
	defer st.Close()
	ctx := context.Background()
	must(t, st.CreateGrant(ctx, store.Grant{ID: "g", ExpiresAt: now.Add(time.Hour), Upstream: store.UpstreamTokens{RefreshToken: "r1"}}))
	g, err := st.GetGrant(ctx, "g")
	must(t, err)
	before := g.Sealed
	g.ExpiresAt = now.Add(2 * time.Hour)
	must(t, st.UpdateGrant(ctx, g))
	g, err = st.GetGrant(ctx, "g")
	must(t, err)
	if !bytes.Equal(g.Sealed, before) {
		t.Fatal("unchanged upstream tokens sealed again")
	}
	g.Upstream.RefreshToken = "r2"
	must(t, st.UpdateGrant(ctx, g))
	g, err = st.GetGrant(ctx, "g")
	must(t, err)
	if g.Upstream.RefreshToken != "r2" || bytes.Equal(g.Sealed, before) {
		t.Fatal("changed upstream tokens not stored")
	}
}

// PXY-14 (sealed-blob swapping): the sealed upstream tokens are bound to the record key, not to the
// id written inside the record, so a grant record copied whole under another grant's key does not
// open there either (a writer to the store would otherwise give grant g2 — and the access tokens
// minted from it — g1's upstream tokens and subject).
func TestPXY14_GrantRecordMovedWholeDoesNotOpen(t *testing.T) {
	st, kv, now := newTestStore(t, filepath.Join(t.TempDir(), "s.db"))
	defer st.Close()
	ctx := context.Background()
	must(t, st.CreateGrant(ctx, store.Grant{ID: "g1", Subject: "auth0|victim", ExpiresAt: now.Add(time.Hour), Upstream: store.UpstreamTokens{RefreshToken: "victim-rt"}}))
	must(t, st.CreateGrant(ctx, store.Grant{ID: "g2", Subject: "auth0|attacker", ExpiresAt: now.Add(time.Hour), Upstream: store.UpstreamTokens{RefreshToken: "attacker-rt"}}))
	e, _ := kv.Get(ctx, store.BucketGrants, "g1", now)
	must(t, kv.Replace(ctx, store.BucketGrants, "g2", e.Value, e.ExpiresAt, now))
	if g, err := st.GetGrant(ctx, "g2"); err == nil {
		t.Fatalf("grant g1's record opened under key g2: id %s, subject %s, upstream refresh token %s", g.ID, g.Subject, g.Upstream.RefreshToken)
	}
}

// The user's upstream identity is sealed with the grant, under its own additional data bound to the
// record key: never in clear, not openable under another grant or as the upstream tokens' blob, and
// GrantIdentity (the per-request read of an impersonating server) says ErrNotFound once revoked.
func TestUpstreamIdentitySealedWithGrant(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	st, kv, now := newTestStore(t, path)
	ctx := context.Background()
	id := &store.UpstreamIdentity{Claims: map[string]any{"email": "ALICE-IDENTITY@example.com", "https://x/groups": []any{"SECRET-GROUP"}}, At: now}
	must(t, st.CreateGrant(ctx, store.Grant{ID: "g1", ExpiresAt: now.Add(time.Hour), Upstream: store.UpstreamTokens{RefreshToken: "r"}, Identity: id}))
	must(t, st.CreateGrant(ctx, store.Grant{ID: "g2", ExpiresAt: now.Add(time.Hour), Upstream: store.UpstreamTokens{RefreshToken: "r2"}}))
	got, err := st.GrantIdentity(ctx, "g1")
	must(t, err)
	if got.Claims["email"] != "ALICE-IDENTITY@example.com" || !got.At.Equal(now) {
		t.Fatalf("GrantIdentity: %+v", got)
	}
	if g, err := st.GetGrant(ctx, "g1"); err != nil || g.Identity == nil || g.Identity.Claims["email"] != "ALICE-IDENTITY@example.com" {
		t.Fatalf("GetGrant identity: %+v %v", g.Identity, err)
	}
	if none, err := st.GrantIdentity(ctx, "g2"); err != nil || none.Claims != nil {
		t.Fatalf("a grant without an identity: %+v %v", none, err)
	}
	// An update that does not touch the identity keeps the sealed blob.
	g1, err := st.GetGrant(ctx, "g1")
	must(t, err)
	before := g1.SealedIdentity
	g1.ExpiresAt = now.Add(2 * time.Hour)
	must(t, st.UpdateGrant(ctx, g1))
	if g, _ := st.GetGrant(ctx, "g1"); !bytes.Equal(g.SealedIdentity, before) || g.Identity == nil {
		t.Fatal("an update without identity change resealed or lost the identity")
	}

	e1, _ := kv.Get(ctx, store.BucketGrants, "g1", now)
	e2, _ := kv.Get(ctx, store.BucketGrants, "g2", now)
	var r1, r2 map[string]any
	must(t, json.Unmarshal(e1.Value, &r1))
	must(t, json.Unmarshal(e2.Value, &r2))
	// g1's identity blob copied into g2's record does not open there.
	r2["sealed_identity"] = r1["sealed_identity"]
	moved, _ := json.Marshal(r2)
	must(t, kv.Replace(ctx, store.BucketGrants, "g2", moved, e2.ExpiresAt, now))
	if got, err := st.GrantIdentity(ctx, "g2"); err == nil {
		t.Fatalf("g1's identity opened under g2: %+v", got)
	}
	// Nor does it open as the upstream tokens' blob of its own grant (distinct additional data).
	r1["sealed"] = r1["sealed_identity"]
	swapped, _ := json.Marshal(r1)
	must(t, kv.Replace(ctx, store.BucketGrants, "g1", swapped, e1.ExpiresAt, now))
	if _, err := st.GetGrant(ctx, "g1"); err == nil {
		t.Fatal("the identity blob opened as upstream tokens")
	}
	must(t, st.RevokeGrant(ctx, "g1"))
	if _, err := st.GrantIdentity(ctx, "g1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GrantIdentity of a revoked grant: %v", err)
	}
	must(t, st.Close())
	raw := dump(t, path)
	for _, s := range []string{"ALICE-IDENTITY", "SECRET-GROUP"} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("%s stored in clear", s)
		}
	}
}
