package app

import (
	"context"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/server/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// PXY-17: two replicas on one PostgreSQL behind one public URL. The flow starts on replica A, the
// consent, callback and code exchange happen on B, refresh on A; tokens minted by one validate on the
// other; a retry of a rotated token on the other replica gets the kept answer; a reuse on one is seen
// by the other at once.
func TestPXY17_TwoInstancesOnPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE cnpgmcp"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	s := newStack(t, nil)
	var target atomic.Pointer[url.URL]
	front := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target.Load())
		r.Out.Host = r.In.Host
	}})
	t.Cleanup(front.Close)
	replica := func() *instance {
		return s.start(func(c *config.Config) {
			c.PublicURL = front.URL
			c.Storage = config.Storage{Driver: "postgres", DSN: pg.DSN("cnpgmcp")}
		})
	}
	a, b := replica(), replica()
	to := func(in *instance) { u, _ := url.Parse("http://" + in.Addr().String()); target.Store(u) }
	to(a)
	viaFront := &instance{App: a.App, base: front.URL}

	id := s.register(viaFront)
	s.beforeApprove = func() { to(b) }
	loc := s.login(viaFront, viaFront, id, nil)
	if loc.Query().Get("code") == "" {
		t.Fatalf("no code: %s", loc)
	}
	m := s.exchange(viaFront, id, loc.Query().Get("code")) // on B
	at := m["access_token"].(string)
	for name, in := range map[string]*instance{"A": a, "B": b} {
		if _, err := in.Tokens.Verify(t.Context(), at); err != nil {
			t.Fatalf("token refused by replica %s: %v", name, err)
		}
	}
	to(a)
	st, r := s.refresh(viaFront, id, m["refresh_token"].(string))
	if st != 200 {
		t.Fatalf("refresh on A of a token issued by B: %d %v", st, r)
	}
	// A retry of the rotated token on B, inside the reuse window and before the new token was used,
	// gets A's answer again (shared state; the answer was kept sealed by A).
	to(b)
	if st, again := s.refresh(viaFront, id, m["refresh_token"].(string)); st != 200 || again["refresh_token"] != r["refresh_token"] || again["access_token"] != r["access_token"] {
		t.Fatalf("retry on the other replica: %d, same answer %v", st, again["refresh_token"] == r["refresh_token"])
	}
	// Once the new token is used (on A), reuse of the old one on B is detected and kills A's tokens.
	to(a)
	st, r = s.refresh(viaFront, id, r["refresh_token"].(string))
	if st != 200 {
		t.Fatalf("refresh with the new token on A: %d %v", st, r)
	}
	to(b)
	if st, _ := s.refresh(viaFront, id, m["refresh_token"].(string)); st != 400 {
		t.Fatalf("reuse on the other replica: %d", st)
	}
	if _, err := a.Tokens.Verify(t.Context(), r["access_token"].(string)); err == nil {
		t.Fatal("replica A still accepts tokens of a family revoked on B")
	}
}
