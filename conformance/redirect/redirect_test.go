package redirect_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/redirect"
)

func TestEndpoints(t *testing.T) {
	ln, err := redirect.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, b := ln.NewEndpoint(), ln.NewEndpoint()
	if a.URI() == b.URI() || !strings.HasPrefix(a.URI(), "http://127.0.0.1:") {
		t.Fatalf("endpoints %s %s", a.URI(), b.URI())
	}
	port, err := ln.AddPort()
	if err != nil {
		t.Fatal(err)
	}
	// A response on another port still reaches the endpoint (loopback port variation).
	resp, err := http.Get(a.WithPort(port) + "?code=c1&state=s1&iss=https%3A%2F%2Fas&iss=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, err := a.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Code() != "c1" || r.State() != "s1" || r.Count("iss") != 2 || !r.Has("iss") || r.Has("error") {
		t.Fatalf("response %+v", r.Query)
	}
	if b.Received() {
		t.Fatal("a response for one endpoint reached another")
	}
	// The landing page reports a fragment back (tokens in fragments are caught).
	resp, err = http.Post(a.URI()+"?__fragment=1", "text/plain", strings.NewReader("#access_token=leak"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := a.Hits(); len(h) != 1 || h[0].Fragment != "access_token=leak" {
		t.Fatalf("hits %+v", h)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := b.Wait(short); err == nil {
		t.Fatal("Wait must fail when nothing arrives")
	}
	if resp, err := http.Get(strings.Replace(a.URI(), "/cb/", "/cb/x", 1)); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path: %v %v", err, resp)
	}
}
