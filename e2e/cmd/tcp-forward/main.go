// Command tcp-forward accepts TCP connections on --listen and pipes each one to --to.
//
// The e2e suite runs it as a sidecar of the server pod: the mock Auth0 beside the cluster has the issuer
// http://127.0.0.1:P/ (loopback, so the server accepts plain http, and the host's browser reaches it on its
// published port); inside the pod, 127.0.0.1:P is this forwarder, which reaches the mock on the kind network.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "listen `address`")
	to := flag.String("to", "", "destination `host:port`")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *to == "" {
		fmt.Fprintln(os.Stderr, "tcp-forward: --to is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, *listen, *to); err != nil {
		log.Error("tcp-forward", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, listen, to string) error {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	log.Info("forwarding", "listen", l.Addr().String(), "to", to)
	go func() { <-ctx.Done(); l.Close() }()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			forward(log, c, to)
		}()
	}
}

func forward(log *slog.Logger, c net.Conn, to string) {
	defer c.Close()
	u, err := net.DialTimeout("tcp", to, 10*time.Second)
	if err != nil {
		log.Warn("dial", "to", to, "err", err)
		return
	}
	defer u.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(u, c)
	go pipe(c, u)
	<-done
	<-done
}
