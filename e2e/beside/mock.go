// Package beside runs the containers that sit beside the kind cluster on its Docker network, through
// ory/dockertest: the mock Auth0 tenant.
//
// URLs: the mock listens on port P in its container, published on the host at 127.0.0.1:P, and its issuer
// is http://127.0.0.1:P/ — loopback, so the server accepts it over plain http (it refuses http for any
// other host), and the browser on the host reaches it directly. Inside the server pod, 127.0.0.1:P is a
// tcp-forward sidecar (Sidecar) that pipes to the mock's address on the kind network. One issuer string
// everywhere, as OAuth requires.
package beside

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"

	mockconfig "github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
)

// Mock is a running mock Auth0 container.
type Mock struct {
	// Issuer is the tenant's issuer, for the server's oidc.issuer, the browser and the admin API:
	// http://127.0.0.1:P/.
	Issuer string
	// Port is P.
	Port int
	// NetworkIP is the container's address on the kind network (the sidecar's destination).
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
	issuer := "http://127.0.0.1:" + p + "/"
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
	m := &Mock{Issuer: issuer, Port: port, pool: pool, resource: res}
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
		resp, err := http.Get(m.Issuer + ".well-known/openid-configuration")
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

// AttachMock finds the mock container StartMock ran under name (another test process started it, on
// the network given) and returns a handle to it. Close on that handle removes the container: only the
// process that started it should call it.
func AttachMock(ctx context.Context, name, network string) (*Mock, error) {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	res, ok := pool.ContainerByName(name)
	if !ok {
		return nil, fmt.Errorf("mock Auth0 container %q not found: the first test process starts it", name)
	}
	m := &Mock{pool: pool, resource: res}
	for p, bindings := range res.Container.NetworkSettings.Ports {
		for _, b := range bindings {
			if b.HostIP == "127.0.0.1" {
				m.Port, _ = strconv.Atoi(p.Port())
			}
		}
	}
	if n, ok := res.Container.NetworkSettings.Networks[network]; ok {
		m.NetworkIP = n.IPAddress
	}
	if m.Port == 0 || m.NetworkIP == "" {
		return nil, fmt.Errorf("mock Auth0 container %q: no port on 127.0.0.1 or no address on network %q", name, network)
	}
	m.Issuer = "http://127.0.0.1:" + strconv.Itoa(m.Port) + "/"
	return m, ctx.Err()
}

// Sidecar is the chart's initContainers entry that makes 127.0.0.1:P inside the server pod reach the
// mock: a tcp-forward native sidecar (restartPolicy Always), so it listens before the server starts and
// discovers its upstream; image built by `make images`, as locked down as the server.
func (m *Mock) Sidecar(image string) map[string]any {
	return map[string]any{
		"name":            "mockauth0-forward",
		"image":           image,
		"imagePullPolicy": "Never",
		"restartPolicy":   "Always",
		"args":            []any{"--listen", fmt.Sprintf("127.0.0.1:%d", m.Port), "--to", fmt.Sprintf("%s:%d", m.NetworkIP, m.Port)},
		"resources":       map[string]any{"requests": map[string]any{"cpu": "5m", "memory": "8Mi"}, "limits": map[string]any{"memory": "32Mi"}},
		"securityContext": map[string]any{
			"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "privileged": false,
			"capabilities": map[string]any{"drop": []any{"ALL"}},
		},
	}
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

// CreateUser adds a user to the mock tenant's database connection through the Management API, with the
// mock's machine-to-machine application (mockauth0/config.DefaultSetupClientID).
func (m *Mock) CreateUser(ctx context.Context, email, password string) error {
	tok, err := m.managementToken(ctx)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]any{"email": email, "password": password, "connection": "Username-Password-Authentication"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Issuer+"api/v2/users", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("create user %s: %w", email, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusConflict {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("create user %s: %s: %s", email, resp.Status, b)
	}
	return nil
}

// AddCallback adds a callback URL to the application clientID (as an operator would in the dashboard).
func (m *Mock) AddCallback(ctx context.Context, clientID, callback string) error {
	tok, err := m.managementToken(ctx)
	if err != nil {
		return err
	}
	var app struct {
		Callbacks []string `json:"callbacks"`
	}
	if err := m.mgmt(ctx, tok, http.MethodGet, "clients/"+url.PathEscape(clientID), nil, &app); err != nil {
		return err
	}
	for _, c := range app.Callbacks {
		if c == callback {
			return nil
		}
	}
	return m.mgmt(ctx, tok, http.MethodPatch, "clients/"+url.PathEscape(clientID), map[string]any{"callbacks": append(app.Callbacks, callback)}, nil)
}

func (m *Mock) mgmt(ctx context.Context, tok, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, m.Issuer+"api/v2/"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

func (m *Mock) managementToken(ctx context.Context) (string, error) {
	form := url.Values{
		"grant_type": {"client_credentials"}, "client_id": {mockconfig.DefaultSetupClientID},
		"client_secret": {mockconfig.DefaultSetupSecret}, "audience": {m.Issuer + "api/v2/"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Issuer+"oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("management token: %w", err)
	}
	defer resp.Body.Close()
	var t struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil || t.AccessToken == "" {
		return "", fmt.Errorf("management token: %s (%v)", resp.Status, err)
	}
	return t.AccessToken, nil
}
