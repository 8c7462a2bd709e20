package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

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
