package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	kfake "k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/cnpg-mcp/cnpg-mcp/server/identity"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools/kube"
)

// FuzzCheckName: checkName accepts exactly the RFC 1123 labels of at most 63 characters, and the name
// its error message suggests is always one it accepts.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"pg-main", "PG_Main", "-a-", "", strings.Repeat("a", 64), "a.b", "ünï", "9", "a--b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		err := checkName("name", v)
		want := len(v) >= 1 && len(v) <= 63 && len(validation.IsDNS1123Label(v)) == 0
		if (err == nil) != want {
			t.Fatalf("checkName(%q) = %v, want valid %t", v, err, want)
		}
		if s := suggestName(v); checkName("name", s) != nil {
			t.Fatalf("suggestName(%q) = %q is not valid", v, s)
		}
	})
}

// FuzzCheckQuantity: an accepted quantity is positive and survives a round trip through its canonical
// form (what the tool writes into the spec is what the user meant).
func FuzzCheckQuantity(f *testing.F) {
	for _, s := range []string{"10Gi", "0", "-1Gi", "1e3", "500m", "1.5Ti", "Gi", "9999999999999999999999Ei"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		q, err := checkQuantity("size", v)
		if err != nil {
			return
		}
		if q.Sign() <= 0 {
			t.Fatalf("accepted non-positive %q", v)
		}
		if q.CmpInt64(math.MaxInt64) >= 0 {
			t.Fatalf("accepted %q, which does not fit an int64 of bytes", v)
		}
		back, err := resource.ParseQuantity(q.String())
		if err != nil || back.Cmp(q) != 0 {
			t.Fatalf("%q → %q does not round-trip: %v", v, q.String(), err)
		}
	})
}

// FuzzCheckCron: an accepted schedule has six fields (or a descriptor), every field within its range;
// a refusal names the problem. Accepting is checked field by field against the cron grammar.
func FuzzCheckCron(f *testing.F) {
	for _, s := range []string{"0 0 2 * * *", "@daily", "@every 1h", "0 0 2 * *", "0 */5 * * * mon-fri", "60 0 0 * * *", "0 0 0 31 2 *", "0 0 0 ? * 7", "0 0 0 * * sun,sat", "0 0 0 5-1 * *", "0 0 0 1/0 * *"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if checkCron(v) != nil {
			return
		}
		s := strings.TrimSpace(v)
		if slices.Contains(cronDescriptors, s) || strings.HasPrefix(s, "@every ") {
			return
		}
		fields := strings.Fields(s)
		if len(fields) != 6 {
			t.Fatalf("accepted %q with %d fields", v, len(fields))
		}
		for i, fd := range fields {
			if fd == "" || strings.ContainsAny(fd, " \t") {
				t.Fatalf("accepted field %d %q", i, fd)
			}
		}
	})
}

// callRecord is one Kubernetes API call a tool made.
type callRecord struct {
	verb, kind, namespace, name string
}

// recordingDeps are tool dependencies whose Kubernetes client records every call: reads are served
// from an in-memory store holding one healthy cluster "pg" in namespace "team-a" (so the tools go
// deep), writes are refused after they are recorded (nothing is applied).
func recordingDeps(t testing.TB) (*Deps, func() []callRecord) {
	scheme, err := kube.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	cl := &cnpgv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "pg", Namespace: "team-a"},
		Spec:   cnpgv1.ClusterSpec{Instances: 2, StorageConfiguration: cnpgv1.StorageConfiguration{Size: "1Gi"}},
		Status: cnpgv1.ClusterStatus{CurrentPrimary: "pg-1", TargetPrimary: "pg-1", InstanceNames: []string{"pg-1", "pg-2"}, Phase: cnpgv1.PhaseHealthy}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pg-1", Namespace: "team-a", Labels: map[string]string{LabelCluster: "pg", "cnpg.io/podRole": "instance"}}}
	base := fake.NewClientBuilder().WithScheme(scheme).WithObjects(cl, pod).WithStatusSubresource(cl).Build()
	var (
		mu    sync.Mutex
		calls []callRecord
	)
	rec := func(verb string, obj client.Object, ns, name string) {
		mu.Lock()
		calls = append(calls, callRecord{verb: verb, kind: fmt.Sprintf("%T", obj), namespace: ns, name: name})
		mu.Unlock()
	}
	refused := fmt.Errorf("writes are refused in the fuzz harness")
	c := interceptor.NewClient(base, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			rec("get", obj, key.Namespace, key.Name)
			return c.Get(ctx, key, obj, opts...)
		},
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			lo := &client.ListOptions{}
			lo.ApplyOptions(opts)
			mu.Lock()
			calls = append(calls, callRecord{verb: "list", kind: fmt.Sprintf("%T", list), namespace: lo.Namespace})
			mu.Unlock()
			return c.List(ctx, list, opts...)
		},
		Create: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.CreateOption) error {
			rec("create", obj, obj.GetNamespace(), obj.GetName())
			return refused
		},
		Update: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.UpdateOption) error {
			rec("update", obj, obj.GetNamespace(), obj.GetName())
			return refused
		},
		Patch: func(_ context.Context, _ client.WithWatch, obj client.Object, _ client.Patch, _ ...client.PatchOption) error {
			rec("patch", obj, obj.GetNamespace(), obj.GetName())
			return refused
		},
		Delete: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.DeleteOption) error {
			rec("delete", obj, obj.GetNamespace(), obj.GetName())
			return refused
		},
		DeleteAllOf: func(_ context.Context, _ client.WithWatch, obj client.Object, opts ...client.DeleteAllOfOption) error {
			o := &client.DeleteAllOfOptions{}
			o.ApplyOptions(opts)
			rec("deleteallof", obj, o.Namespace, "")
			return refused
		},
		SubResourcePatch: func(_ context.Context, _ client.Client, sub string, obj client.Object, _ client.Patch, _ ...client.SubResourcePatchOption) error {
			rec("patch/"+sub, obj, obj.GetNamespace(), obj.GetName())
			return refused
		},
		SubResourceUpdate: func(_ context.Context, _ client.Client, sub string, obj client.Object, _ ...client.SubResourceUpdateOption) error {
			rec("update/"+sub, obj, obj.GetNamespace(), obj.GetName())
			return refused
		},
		SubResourceCreate: func(_ context.Context, _ client.Client, sub string, obj client.Object, _ client.Object, _ ...client.SubResourceCreateOption) error {
			rec("create/"+sub, obj, obj.GetNamespace(), obj.GetName())
			return refused
		},
	})
	// The fake clientset has no REST client for pods/proxy (the default InstanceReports would
	// dereference nil): the instance managers are unreachable here, an answer the tools handle.
	d := &Deps{Client: c, Core: kfake.NewClientset(pod), DefaultNamespace: "team-a", AllowedNamespaces: []string{"team-a"},
		Logger: slog.New(slog.DiscardHandler), Instances: unreachableInstances{}}
	return d, func() []callRecord {
		mu.Lock()
		defer mu.Unlock()
		out := calls
		calls = nil
		return out
	}
}

// FuzzToolArguments: every tool, through mcp-go's schema validation, with any arguments. No tool
// panics (mcp-go's recovery would turn a panic into an error: that counts as a crash here), every call
// gets a result, and no Kubernetes call ever leaves the namespace allow-list ("team-a") or carries an
// object name Kubernetes would refuse: validation happens before the API is touched.
func FuzzToolArguments(f *testing.F) {
	deps, calls := recordingDeps(f)
	all := All(deps)
	names := make([]string, len(all))
	s := server.NewMCPServer("fuzz", "1", server.WithToolCapabilities(false), server.WithInputSchemaValidation(),
		server.WithStrictInputSchemaDefault(), server.WithRecovery())
	for i, tl := range all {
		names[i] = tl.Def.Name
		s.AddTool(tl.Def, tl.Handler)
	}
	ctx := identity.NewContext(context.Background(), identity.Identity{Subject: "auth0|fuzz", ClientID: "fuzz", Scopes: []string{ScopeRead, ScopeWrite}})
	seeds := []string{`{"name":"pg"}`, `{"name":"pg","namespace":"team-a","dry_run":true}`, `{"name":"pg","namespace":"kube-system"}`,
		`{"name":"PG"}`, `{"name":"pg","instances":3,"dry_run":true}`, `{"name":"pg","instance":"pg-2","dry_run":true}`,
		`{"name":"pg","size":"2Gi","dry_run":true}`, `{"name":"pg","role":"app","login":true,"dry_run":true}`,
		`{"name":"pg","schedule":"0 0 2 * * *","dry_run":true}`, `{"name":"pg","confirm":true,"dry_run":true}`, `{}`, `{"namespace":"../x"}`}
	for i := range all {
		for _, a := range seeds {
			f.Add(uint8(i), a)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, args string) {
		name := names[int(which)%len(names)]
		msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, name, args)
		if !json.Valid([]byte(msg)) {
			return
		}
		calls()
		resp := s.HandleMessage(ctx, json.RawMessage(msg))
		switch r := resp.(type) {
		case mcp.JSONRPCResponse:
		case mcp.JSONRPCError:
			if strings.HasPrefix(r.Error.Message, "panic recovered") {
				t.Fatalf("%s(%s) panicked: %s", name, args, r.Error.Message)
			}
		default:
			t.Fatalf("%s: no response: %T", name, resp)
		}
		for _, c := range calls() {
			if c.namespace != "team-a" && !(c.namespace == "" && clusterScoped(c.kind)) {
				t.Fatalf("%s(%s): Kubernetes %s of %s in namespace %q, outside the allow-list", name, args, c.verb, c.kind, c.namespace)
			}
			if c.name != "" && len(validation.IsDNS1123Subdomain(c.name)) > 0 {
				t.Fatalf("%s(%s): Kubernetes %s of %s named %q, which Kubernetes refuses", name, args, c.verb, c.kind, c.name)
			}
		}
	})
}

func clusterScoped(kind string) bool {
	return strings.Contains(kind, "ClusterImageCatalog") || strings.Contains(kind, "Node")
}

// unreachableInstances answers every instance-manager request with an error.
type unreachableInstances struct{}

func (unreachableInstances) Status(context.Context, *corev1.Pod) ([]byte, error) {
	return nil, errors.New("instance manager unreachable (fuzz harness)")
}

func (unreachableInstances) Metrics(context.Context, *corev1.Pod, bool) ([]byte, error) {
	return nil, errors.New("instance manager unreachable (fuzz harness)")
}
