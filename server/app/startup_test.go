package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// An unreachable upstream at start-up is a clear error, not a panic, and the store is closed again
// (a second New on the same bolt file would otherwise block on the file lock).
func TestNewWithUnreachableUpstream(t *testing.T) {
	s := newStack(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/"
	ln.Close() // nothing listens there any more
	for i := 0; i < 2; i++ {
		cfg := s.cfg
		cfg.Issuer = dead
		cfg.PublicURL = "http://127.0.0.1:1"
		cfg.Defaults()
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		a, err := New(context.Background(), &cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AllowMissingKubernetes: true})
		if err == nil || a != nil {
			t.Fatalf("New with a dead upstream: app %v, err %v", a, err)
		}
		if !strings.Contains(err.Error(), strings.TrimSuffix(dead, "/")) {
			t.Errorf("the error should name the upstream it could not reach: %v", err)
		}
	}
}
