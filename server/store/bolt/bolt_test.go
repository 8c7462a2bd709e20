package bolt

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/store"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/storetest"
)

func TestKVContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.KV {
		kv, err := Open(filepath.Join(t.TempDir(), "s.db"), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { kv.Close() })
		return kv
	})
}

func TestSecondOpenerGetsClearError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.db")
	kv, err := Open(p, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	if _, err := Open(p, 100*time.Millisecond); err == nil {
		t.Fatal("second opener succeeded")
	} else if want := "locked by another process"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}
