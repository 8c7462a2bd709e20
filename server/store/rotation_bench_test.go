package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/store"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/bolt"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/postgres"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/postgres/pgtest"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/storetest"
)

// BenchmarkRotation is the refresh path's store work, on both backends, one worker and 16:
//
//	rotate        GetGrant + RotateRefreshToken with new sealed upstream tokens (one transaction:
//	              the old token's use, the successor, the grant) — the work main did in four steps
//	              (UseRefreshToken, GetGrant, UpdateGrant, PutRefreshToken)
//	claim+rotate  the same with the claim taken before the upstream call (two transactions)
//
// go test ./server/store -run XXX -bench Rotation -benchtime 2000x
func BenchmarkRotation(b *testing.B) {
	clock := storetest.NewClock()
	backends := map[string]func(b *testing.B) store.KV{
		"bolt": func(b *testing.B) store.KV {
			kv, err := bolt.Open(filepath.Join(b.TempDir(), "s.db"), time.Second)
			if err != nil {
				b.Fatal(err)
			}
			return kv
		},
		"postgres": func(b *testing.B) store.KV {
			srv := pgtest.Start(b)
			kv, err := postgres.Open(context.Background(), srv.DSN("postgres"))
			if err != nil {
				b.Fatal(err)
			}
			return kv
		},
	}
	for _, name := range []string{"bolt", "postgres"} {
		for _, par := range []int{1, 16} {
			for _, claim := range []bool{false, true} {
				op := "rotate"
				if claim {
					op = "claim+rotate"
				}
				b.Run(fmt.Sprintf("%s/conc=%d/%s", name, par, op), func(b *testing.B) {
					st := store.New(backends[name](b), storetest.Sealer(b), clock.Now)
					defer st.Close()
					benchRotation(b, st, clock.Now(), par, claim)
				})
			}
		}
	}
}

func benchRotation(b *testing.B, st store.Store, now time.Time, par int, claim bool) {
	ctx := context.Background()
	type chain struct{ grant, rt string }
	chains := make(chan *chain, par*2)
	for i := 0; i < par*2; i++ {
		g := store.Grant{ID: fmt.Sprintf("g%d", i), ClientID: "c", Subject: "auth0|u", ExpiresAt: now.Add(time.Hour),
			Upstream: store.UpstreamTokens{AccessToken: strings.Repeat("a", 900), RefreshToken: "v1.r", IDToken: strings.Repeat("i", 900), Expiry: now.Add(time.Hour)}}
		if err := st.CreateGrant(ctx, g); err != nil {
			b.Fatal(err)
		}
		rt := fmt.Sprintf("rt-%d-0", i)
		if err := st.PutRefreshToken(ctx, rt, store.RefreshToken{GrantID: g.ID, ClientID: "c", ExpiresAt: now.Add(time.Hour), IdleUntil: now.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
		chains <- &chain{grant: g.ID, rt: rt}
	}
	replay := []byte(strings.Repeat("r", 700)) // about the size of a sealed answer
	var seq atomic.Int64
	b.SetParallelism(max(1, par/2)) // GOMAXPROCS=2 here
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c := <-chains
			g, err := st.GetGrant(ctx, c.grant)
			if err != nil {
				b.Error(err)
				return
			}
			n := seq.Add(1)
			rot := store.Rotation{Token: c.rt, RotationID: fmt.Sprint(n), GrantID: c.grant, FromVersion: g.UpstreamVersion,
				Upstream: &store.UpstreamTokens{AccessToken: g.Upstream.AccessToken, RefreshToken: fmt.Sprintf("v1.r%d", n), IDToken: g.Upstream.IDToken, Expiry: now.Add(time.Hour)},
				Next:     fmt.Sprintf("rt-%s-%d", c.grant, n), NextRecord: store.RefreshToken{GrantID: c.grant, ClientID: "c", ExpiresAt: now.Add(time.Hour), IdleUntil: now.Add(time.Hour)},
				Replay: replay, ReplayUntil: now.Add(time.Minute)}
			if claim {
				rot.ClaimID = rot.RotationID
				if _, err := st.ClaimRefreshToken(ctx, c.rt, rot.ClaimID, now.Add(20*time.Second)); err != nil {
					b.Error(err)
					return
				}
			}
			if err := st.RotateRefreshToken(ctx, rot); err != nil {
				b.Error(err)
				return
			}
			c.rt = rot.Next
			chains <- c
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rotations/s")
}
