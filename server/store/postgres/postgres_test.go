package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/store"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/postgres/pgtest"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/storetest"
	"github.com/jackc/pgx/v5"
)

func TestKVContract(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, srv.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var n atomic.Int32
	storetest.Run(t, func(t *testing.T) store.KV {
		db := fmt.Sprintf("t%d", n.Add(1))
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
			t.Fatal(err)
		}
		kv, err := Open(ctx, srv.DSN(db))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { kv.Close() })
		return kv
	})
}

func TestOpenBadDSNDoesNotEchoPassword(t *testing.T) {
	_, err := Open(context.Background(), "postgres://u:s3cretpw@%zz/db")
	if err == nil {
		t.Fatal("bad DSN accepted")
	}
	if got := err.Error(); strings.Contains(got, "s3cretpw") {
		t.Fatalf("error echoes the password: %s", got)
	}
}

// RT-03, TOK-04 (refresh reuse detection, single use across replicas): MarkUsed answers "first use"
// (zero UsedAt) to exactly one caller, and that caller's mark is in place. A caller whose UPDATE
// finds the token already used reads it again to report the earlier use; if the winner undoes its
// mark in between (Unmark: the upstream was unreachable), the loser must not report a first use it
// never recorded: it would rotate the refresh token while the old one stays usable, and a thief and
// the client could then both refresh without either reuse being detected.
func TestRT03_MarkUsedRacingUnmark(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	kv, err := Open(ctx, srv.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	now := time.Unix(1_800_000_000, 0)
	b := store.BucketRefresh
	if err := kv.Create(ctx, b, "rt", []byte("v"), now.Add(time.Hour), now); err != nil {
		t.Fatal(err)
	}
	winner := now.Add(time.Second)
	if e, err := kv.MarkUsed(ctx, b, "rt", winner); err != nil || !e.UsedAt.IsZero() {
		t.Fatalf("first MarkUsed: %+v %v", e, err)
	}
	raced := 0
	kv.afterMarkMiss = func() {
		if raced++; raced == 1 {
			if err := kv.Unmark(ctx, b, "rt", winner); err != nil {
				t.Error(err)
			}
		}
	}
	loser := now.Add(2 * time.Second)
	e, err := kv.MarkUsed(ctx, b, "rt", loser)
	kv.afterMarkMiss = nil
	if err != nil {
		t.Fatal(err)
	}
	if raced == 0 {
		t.Fatal("the race was not exercised")
	}
	after, err := kv.Get(ctx, b, "rt", loser)
	if err != nil {
		t.Fatal(err)
	}
	if e.UsedAt.IsZero() && after.UsedAt.IsZero() {
		t.Fatal("MarkUsed reported a first use but left the record unmarked")
	}
	if e.UsedAt.IsZero() && !after.UsedAt.Equal(loser) {
		t.Fatalf("first use reported, but the record carries another mark: %v", after.UsedAt)
	}
}
