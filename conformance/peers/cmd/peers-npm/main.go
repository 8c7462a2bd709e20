// Command peers-npm installs the npm packages of every peer under conformance/peers into
// $CACHE_DIR/peers (npm ci of each lockfile, once per lockfile; installed ones are reused), so that
// `make test` installs them while the Go builds run instead of when the peers tier starts.
//
//	go run ./conformance/peers/cmd/peers-npm [--root .] [--cache DIR]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/peers"
)

func main() {
	root := flag.String("root", ".", "repository root")
	cache := flag.String("cache", "", "`directory` of the installs (default $CACHE_DIR/peers, as make conformance-peers)")
	flag.Parse()
	if *cache == "" {
		dir := os.Getenv("CACHE_DIR")
		if dir == "" {
			d, err := os.UserCacheDir()
			if err != nil {
				fmt.Fprintln(os.Stderr, "peers-npm:", err)
				os.Exit(1)
			}
			dir = filepath.Join(d, "cnpg-mcp")
		}
		*cache = filepath.Join(dir, "peers")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := peers.Options{Root: *root, Cache: *cache, Log: os.Stderr}
	var wg sync.WaitGroup
	errs := make([]error, len(peers.All()))
	for i, p := range peers.All() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			installed, err := peers.Install(ctx, p, o)
			switch {
			case err != nil:
				errs[i] = err
			case installed:
				fmt.Fprintf(os.Stderr, "peers-npm: %s installed in %s\n", p.Name, time.Since(start).Round(time.Second))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "peers-npm:", err)
		os.Exit(1)
	}
}
