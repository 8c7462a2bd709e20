package tools_test

// The tool tests drive every tool through mcp-go's client over HTTP, through the bearer check, against
// a real kube-apiserver + etcd (internal/kubetest) shared by the whole test binary. Where a
// tool's effect depends on the operator, the test writes the status the operator would write.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cnpg-mcp/cnpg-mcp/internal/kubetest"
	"github.com/cnpg-mcp/cnpg-mcp/server/bearer"
	"github.com/cnpg-mcp/cnpg-mcp/server/bearer/bearertest"
	"github.com/cnpg-mcp/cnpg-mcp/server/mcpserver"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools/kube"
)

var (
	env      *kubetest.Env
	admin    *kube.Clients
	rbacC    client.Client // client-go scheme (RBAC objects)
	skipWhy  string
	nsSerial atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		// Fuzzing (make fuzz): the fuzz targets need no API server, and every fuzz worker process
		// would start its own etcd and kube-apiserver.
		skipWhy = "fuzzing: no kube-apiserver is started"
		return m.Run()
	}
	if !kubetest.Available() {
		if os.Getenv("CNPG_MCP_REQUIRE_ALL") == "1" {
			fmt.Fprintln(os.Stderr, "FAIL:", kubetest.ErrNoBinaries)
			return 1
		}
		skipWhy = kubetest.ErrNoBinaries.Error()
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var err error
	env, err = kubetest.Start(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubetest:", err)
		return 1
	}
	defer env.Stop()
	fmt.Fprintf(os.Stderr, "kubetest: etcd %v, kube-apiserver %v, CRDs %v, total %v\n", env.Timings.Etcd.Round(time.Millisecond), env.Timings.APIServer.Round(time.Millisecond), env.Timings.CRDs.Round(time.Millisecond), env.Timings.Total.Round(time.Millisecond))
	if admin, err = kube.New(env.Admin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if rbacC, err = client.New(env.Admin, client.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func needEnv(t testing.TB) {
	t.Helper()
	if env == nil {
		t.Skip(skipWhy)
	}
}

// harness is one MCP server (with its own namespace) and a connected client.
type harness struct {
	t      testing.TB
	ns     string
	c      *mcpclient.Client
	srv    *mcpserver.Server
	url    string
	iss    *bearertest.Issuer
	audit  *syncBuffer
	now    time.Time
	kubeC  client.Client
	scopes []string
	// the token's Kubernetes user (bearertest stands in for the grant's identity)
	kubeUser   string
	kubeGroups []string
	provider   *kube.Provider
}

type hopt struct {
	protocol    string // "" = newest (2026-07-28, stateless); else e.g. "2025-06-18"
	scopes      []string
	elicit      mcpclient.ElicitationHandler
	readOnly    bool
	allowedNS   []string
	config      *rest.Config // Kubernetes identity of the server; default admin
	noNamespace bool
	ns          string                // the harness namespace (default: a fresh name)
	instances   tools.InstanceReports // default: the real pods/proxy reader
	// impersonate: every call acts as the token's Kubernetes user (kubeUser, kubeGroups), through
	// a kube.Provider in impersonate mode over config.
	impersonate bool
	kubeUser    string
	kubeGroups  []string
	cacheSize   int // the provider's cache of impersonated clients (default kube.DefaultCacheSize)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var fixedNow = time.Date(2026, 11, 27, 3, 4, 5, 0, time.UTC)

func newHarness(t testing.TB, o hopt) *harness {
	t.Helper()
	needEnv(t)
	ctx := context.Background()
	h := &harness{t: t, audit: &syncBuffer{}, now: fixedNow, kubeC: admin.Client}
	h.ns = fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e6, nsSerial.Add(1))
	if o.ns != "" {
		h.ns = o.ns
	}
	h.kubeUser, h.kubeGroups = o.kubeUser, o.kubeGroups
	if !o.noNamespace {
		if err := admin.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.ns}}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := o.config
	if cfg == nil {
		cfg = env.Admin
	}
	clients, err := kube.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deps := &tools.Deps{Client: clients.Client, Core: clients.Core, DefaultNamespace: h.ns, AllowedNamespaces: o.allowedNS,
		ImageTemplate: "postgresql:{version}", Now: func() time.Time { return h.now }, Instances: o.instances}
	if o.impersonate {
		if h.provider, err = kube.NewProvider(clients, kube.ProviderOptions{Impersonate: true, CacheSize: o.cacheSize}); err != nil {
			t.Fatal(err)
		}
		deps.Kube = h.provider
	}
	logger := slog.New(slog.NewJSONHandler(h.audit, nil))
	h.srv, err = mcpserver.New(mcpserver.Options{Tools: tools.All(deps), ReadOnly: o.readOnly, RequireIdentity: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	h.iss = bearertest.NewIssuer("https://mcp.test", "https://mcp.test/mcp")
	bm, err := bearer.New(bearer.Options{Verifier: h.iss, ResourceMetadataURL: "https://mcp.test/.well-known/oauth-protected-resource/mcp",
		RequiredScopes: []string{tools.ScopeRead}, ToolScopes: h.srv.ToolScopes})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(bm.Wrap(h.srv.Handler()))
	t.Cleanup(hs.Close)
	h.url = hs.URL + "/mcp"
	h.scopes = o.scopes
	if h.scopes == nil {
		h.scopes = []string{tools.ScopeRead, tools.ScopeWrite}
	}
	h.c = h.connect(o)
	return h
}

func (h *harness) token() string {
	return h.iss.Mint(h.t, bearertest.Claims{Subject: "auth0|alice", ClientID: "client-alice", Scopes: h.scopes, KubeUser: h.kubeUser, KubeGroups: h.kubeGroups})
}

// as returns the harness with a client connected as another Kubernetes user (same server).
func (h *harness) as(user string, groups ...string) *harness {
	h.t.Helper()
	o := *h
	o.kubeUser, o.kubeGroups = user, groups
	o.c = o.connect(hopt{})
	return &o
}

func (h *harness) connect(o hopt) *mcpclient.Client {
	h.t.Helper()
	tr, err := transport.NewStreamableHTTP(h.url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + h.token()}))
	if err != nil {
		h.t.Fatal(err)
	}
	var copts []mcpclient.ClientOption
	if o.protocol != "" {
		copts = append(copts, mcpclient.WithProtocolVersion(o.protocol))
	}
	if o.elicit != nil {
		copts = append(copts, mcpclient.WithElicitationHandler(o.elicit))
	}
	c := mcpclient.NewClient(tr, copts...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		h.t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "cnpg-mcp-tools-test", Version: "1"}
	init.Params.ProtocolVersion = firstNonEmpty(o.protocol, mcp.LATEST_PROTOCOL_VERSION)
	if _, err := c.Initialize(ctx, init); err != nil {
		h.t.Fatalf("initialize: %v", err)
	}
	h.t.Cleanup(func() { _ = c.Close() })
	return c
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// call invokes a tool and returns the result (a transport error fails the test).
func (h *harness) call(name string, args map[string]any) *mcp.CallToolResult {
	h.t.Helper()
	res, err := h.callErr(name, args)
	if err != nil {
		h.t.Fatalf("%s: %v", name, err)
	}
	return res
}

func (h *harness) callErr(name string, args map[string]any) (*mcp.CallToolResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	return h.c.CallTool(ctx, req)
}

// ok calls a tool that must succeed and returns its structured content.
func (h *harness) ok(name string, args map[string]any) map[string]any {
	h.t.Helper()
	res := h.call(name, args)
	if res.IsError {
		h.t.Fatalf("%s(%v) failed: %s", name, args, text(res))
	}
	return structured(h.t, res)
}

// fails calls a tool that must fail and returns its message; each want must appear in it.
func (h *harness) fails(name string, args map[string]any, want ...string) string {
	h.t.Helper()
	res := h.call(name, args)
	if !res.IsError {
		h.t.Fatalf("%s(%v) succeeded, want an error containing %q: %s", name, args, want, text(res))
	}
	msg := text(res)
	for _, w := range want {
		if !strings.Contains(msg, w) {
			h.t.Fatalf("%s: error %q does not contain %q", name, msg, w)
		}
	}
	return msg
}

func text(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			parts = append(parts, t.Text)
		}
	}
	return strings.Join(parts, "\n")
}

func structured(t testing.TB, res *mcp.CallToolResult) map[string]any {
	t.Helper()
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		t.Fatalf("structuredContent is not an object: %s", b)
	}
	return m
}

// --- fixtures written with the admin client (what users or the operator would write) ---

func (h *harness) cluster(name string, instances int, mut func(*cnpgv1.Cluster)) *cnpgv1.Cluster {
	h.t.Helper()
	ctx := context.Background()
	cl := &cnpgv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: cnpgv1.ClusterSpec{Instances: instances, StorageConfiguration: cnpgv1.StorageConfiguration{Size: "1Gi"}}}
	if err := admin.Client.Create(ctx, cl); err != nil {
		h.t.Fatal(err)
	}
	var names []string
	for i := 1; i <= instances; i++ {
		names = append(names, fmt.Sprintf("%s-%d", name, i))
	}
	cl.Status = cnpgv1.ClusterStatus{Phase: cnpgv1.PhaseHealthy, Instances: instances, ReadyInstances: instances, InstanceNames: names,
		CurrentPrimary: names[0], TargetPrimary: names[0], WriteService: name + "-rw", ReadService: name + "-r",
		InstancesStatus: map[cnpgv1.PodStatus][]string{cnpgv1.PodHealthy: names}}
	if mut != nil {
		mut(cl)
	}
	h.operatorStatus(cl)
	return cl
}

// operatorStatus writes cl.Status through the status subresource, as the operator does.
func (h *harness) operatorStatus(cl *cnpgv1.Cluster) {
	h.t.Helper()
	st := cl.Status
	var cur cnpgv1.Cluster
	if err := admin.Client.Get(context.Background(), client.ObjectKeyFromObject(cl), &cur); err != nil {
		h.t.Fatal(err)
	}
	cur.Status = st
	if err := admin.Client.Status().Update(context.Background(), &cur); err != nil {
		h.t.Fatal(err)
	}
	*cl = cur
}

func (h *harness) getCluster(name string) *cnpgv1.Cluster {
	h.t.Helper()
	var cl cnpgv1.Cluster
	if err := admin.Client.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: name}, &cl); err != nil {
		h.t.Fatal(err)
	}
	return &cl
}

// pod creates an instance pod; onNode schedules it on the fake kubelet's node (pods/log works, but
// deletion then waits for a kubelet that never confirms).
func (h *harness) pod(cluster, name string, onNode bool) *corev1.Pod {
	h.t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns, Labels: map[string]string{
		tools.LabelCluster: cluster, tools.LabelInstance: name, "cnpg.io/podRole": "instance"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "postgres", Image: "postgresql:17"}}}}
	if onNode {
		p.Spec.NodeName = kubetest.NodeName
	}
	if err := admin.Client.Create(context.Background(), p); err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) exists(obj client.Object, name string) bool {
	h.t.Helper()
	err := admin.Client.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: name}, obj)
	if err == nil {
		return obj.GetDeletionTimestamp() == nil
	}
	if client.IgnoreNotFound(err) != nil {
		h.t.Fatal(err)
	}
	return false
}

func (h *harness) auditLines() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(h.audit.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "tool call" {
			out = append(out, m)
		}
	}
	return out
}

// elicitor answers elicitations with a fixed action and records the messages.
type elicitor struct {
	action   mcp.ElicitationResponseAction
	confirm  bool
	mu       sync.Mutex
	messages []string
}

func (e *elicitor) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	e.mu.Lock()
	e.messages = append(e.messages, req.Params.Message)
	e.mu.Unlock()
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: e.action, Content: map[string]any{"confirm": e.confirm}}}, nil
}

var _ io.Writer = (*syncBuffer)(nil)

func clientKey(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }

type clientObject = client.Object

// legacyPing sends the ping RPC of the initialize-based protocol versions through the client's
// transport. mcp-go's Client.Ping is deprecated (2026-07-28 removed ping; on such a connection it
// sends nothing), and these tests mean the request on the wire.
func legacyPing(ctx context.Context, c *mcpclient.Client) error {
	resp, err := c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: mcp.JSONRPC_VERSION,
		ID: mcp.NewRequestId(int64(1 << 20)), Method: string(mcp.MethodPing)})
	if err != nil {
		return err
	}
	if resp.Error != nil {
		return fmt.Errorf("ping: JSON-RPC error %d: %s", resp.Error.Code, resp.Error.Message)
	}
	return nil
}
