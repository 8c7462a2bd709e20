// Package beside runs the containers that sit beside the kind cluster on its Docker network, through
// ory/dockertest: the mock Auth0 tenant.
//
// URLs: the mock listens on port P inside its container and is published on the host at 127.0.0.1:P. Its
// issuer is http://mockauth0.localhost:P/ — a browser on the host resolves any *.localhost name to loopback
// (so it reaches 127.0.0.1:P), and pods resolve it through a hostAliases entry to the container's address on
// the "kind" network (so they reach the container directly). Both see the same issuer string.
package beside

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
)

// MockHost is the name the issuer uses; see the package comment.
const MockHost = "mockauth0.localhost"

// Mock is a running mock Auth0 container.
type Mock struct {
	// Issuer is the tenant's issuer, for the server's oidc.issuer and the browser.
	Issuer string
	// HostURL reaches the mock from the host process (admin API): http://127.0.0.1:P/.
	HostURL string
	// NetworkIP is the container's address on the kind network, for the pods' hostAliases.
	NetworkIP string

	pool     *dockertest.Pool
	resource *dockertest.Resource
}

// MockOptions of the mock container.
type MockOptions struct {
	Image   string // repository:tag of the mockauth0 image (built by `make images`)
	Network string // "kind"
	Name    string // container name
}

// StartMock runs the mock image on the kind network with the admin API on.
func StartMock(ctx context.Context, o MockOptions) (*Mock, error) {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	if err := pool.Client.Ping(); err != nil {
		return nil, fmt.Errorf("docker engine not reachable: %w", err)
	}
	nets, err := pool.NetworksByName(o.Network)
	if err != nil || len(nets) == 0 {
		return nil, fmt.Errorf("docker network %q not found (is the kind cluster up?): %v", o.Network, err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := strconv.Itoa(port)
	issuer := "http://" + MockHost + ":" + p + "/"
	repo, tag, _ := strings.Cut(o.Image, ":")
	_ = pool.RemoveContainerByName(o.Name)
	res, err := pool.RunWithOptions(&dockertest.RunOptions{
		Name:         o.Name,
		Repository:   repo,
		Tag:          tag,
		Cmd:          []string{"--addr", "0.0.0.0:" + p, "--issuer", issuer, "--admin"},
		Networks:     []*dockertest.Network{&nets[0]},
		ExposedPorts: []string{p + "/tcp"},
		PortBindings: map[docker.Port][]docker.PortBinding{docker.Port(p + "/tcp"): {{HostIP: "127.0.0.1", HostPort: p}}},
	}, func(hc *docker.HostConfig) {
		hc.AutoRemove = false
		hc.RestartPolicy = docker.RestartPolicy{Name: "no"}
	})
	if err != nil {
		return nil, fmt.Errorf("start mock Auth0 container from %s: %w", o.Image, err)
	}
	m := &Mock{Issuer: issuer, HostURL: "http://127.0.0.1:" + p + "/", pool: pool, resource: res}
	if n, ok := res.Container.NetworkSettings.Networks[o.Network]; ok {
		m.NetworkIP = n.IPAddress
	}
	if m.NetworkIP == "" {
		_ = m.Close()
		return nil, fmt.Errorf("mock container has no address on network %q", o.Network)
	}
	pool.MaxWait = 60 * time.Second
	if err := pool.Retry(func() error {
		if ctx.Err() != nil {
			return nil
		}
		resp, err := http.Get(m.HostURL + ".well-known/openid-configuration")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}); err != nil {
		_ = m.Close()
		return nil, fmt.Errorf("mock Auth0 did not become ready: %w", err)
	}
	return m, ctx.Err()
}

// Logs returns the container's output.
func (m *Mock) Logs(ctx context.Context) string {
	var out strings.Builder
	_ = m.pool.Client.Logs(docker.LogsOptions{Context: ctx, Container: m.resource.Container.ID, OutputStream: &out, ErrorStream: &out, Stdout: true, Stderr: true})
	return out.String()
}

// Close removes the container.
func (m *Mock) Close() error { return m.pool.Purge(m.resource) }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
