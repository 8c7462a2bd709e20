package tools_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	"github.com/mark3labs/mcp-go/mcp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
)

// upstream v5.1's 18 tools keep their names.
var upstreamTools = []string{
	"list_postgres_clusters", "get_cluster_status", "create_postgres_cluster", "scale_postgres_cluster", "delete_postgres_cluster",
	"resize_postgres_cluster", "get_cluster_resize_status", "promote_cluster_instance", "delete_cluster_instance",
	"list_postgres_roles", "get_postgres_role_status", "create_postgres_role", "update_postgres_role", "delete_postgres_role",
	"list_postgres_databases", "get_postgres_database_status", "create_postgres_database", "delete_postgres_database",
}

func listTools(t *testing.T, h *harness) []mcp.Tool {
	t.Helper()
	res, err := h.c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Tools
}

func TestToolsList(t *testing.T) {
	for _, proto := range []string{"", "2025-11-25", "2025-06-18", "2025-03-26"} {
		t.Run("protocol "+firstNonEmpty(proto, "2026-07-28"), func(t *testing.T) {
			h := newHarness(t, hopt{protocol: proto, noNamespace: true})
			list := listTools(t, h)
			all := tools.All(&tools.Deps{})
			if len(list) != len(all) {
				t.Fatalf("tools/list returned %d tools, want %d", len(list), len(all))
			}
			var names []string
			for _, tl := range list {
				names = append(names, tl.Name)
				a := tl.Annotations
				if a.ReadOnlyHint == nil || a.DestructiveHint == nil || a.IdempotentHint == nil {
					t.Errorf("%s: annotations incomplete: %+v", tl.Name, a)
				}
				if tl.Description == "" || (len(tl.InputSchema.Properties) == 0 && len(tl.RawInputSchema) == 0) {
					t.Errorf("%s: description or input schema missing", tl.Name)
				}
				mutating := !*a.ReadOnlyHint
				if mutating != (tl.InputSchema.Properties["dry_run"] != nil) {
					t.Errorf("%s: dry_run must be offered exactly by mutating tools", tl.Name)
				}
				if *a.DestructiveHint && tl.InputSchema.Properties["confirm"] == nil {
					t.Errorf("%s: destructive tool without confirm", tl.Name)
				}
			}
			for _, u := range upstreamTools {
				if !slices.Contains(names, u) {
					t.Errorf("upstream tool %s missing", u)
				}
			}
		})
	}
}

func TestReadOnlyModeRegistersNoMutatingTool(t *testing.T) {
	h := newHarness(t, hopt{readOnly: true})
	list := listTools(t, h)
	if len(list) == 0 {
		t.Fatal("no tools")
	}
	for _, tl := range list {
		if !*tl.Annotations.ReadOnlyHint {
			t.Errorf("read-only server registered %s", tl.Name)
		}
	}
	h.cluster("pg", 1, nil)
	res, err := h.callErr("delete_postgres_cluster", map[string]any{"name": "pg", "confirm": true})
	if err == nil && !res.IsError {
		t.Fatal("mutating tool callable in read-only mode")
	}
	if !h.exists(&cnpgv1.Cluster{}, "pg") {
		t.Fatal("cluster deleted in read-only mode")
	}
}

func TestListAndGetClusters(t *testing.T) {
	for _, proto := range []string{"", "2025-06-18"} {
		t.Run("protocol "+firstNonEmpty(proto, "2026-07-28"), func(t *testing.T) {
			h := newHarness(t, hopt{protocol: proto})
			if d := h.ok("list_postgres_clusters", nil); d["count"] != float64(0) {
				t.Fatalf("empty namespace: %v", d)
			}
			h.cluster("pg-a", 3, func(c *cnpgv1.Cluster) {
				c.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "ClusterIsReady", LastTransitionTime: metav1.Now()}}
			})
			h.cluster("pg-b", 1, func(c *cnpgv1.Cluster) { c.Status.Phase = "Setting up primary"; c.Status.ReadyInstances = 0 })
			d := h.ok("list_postgres_clusters", map[string]any{"detail_level": "detailed"})
			if d["count"] != float64(2) {
				t.Fatalf("list: %v", d)
			}
			res := h.call("get_cluster_status", map[string]any{"name": "pg-a", "detail_level": "detailed", "format": "json"})
			st := structured(t, res)
			if st["healthy"] != true || st["current_primary"] != "pg-a-1" || st["ready_instances"] != float64(3) || st["write_service"] != "pg-a-rw" {
				t.Fatalf("status: %v", st)
			}
			if !strings.HasPrefix(strings.TrimSpace(text(res)), "{") {
				t.Fatalf("format json: text is not JSON: %s", text(res))
			}
			if conds, _ := st["conditions"].([]any); len(conds) != 1 {
				t.Fatalf("conditions: %v", st["conditions"])
			}
			h.fails("get_cluster_status", map[string]any{"name": "missing"}, "not found (404)", "list_postgres_clusters")
			h.fails("get_cluster_status", map[string]any{"name": "Bad_Name"}, "RFC 1123", `"bad-name"`)
		})
	}
}

func TestCreateCluster(t *testing.T) {
	h := newHarness(t, hopt{})
	d := h.ok("create_postgres_cluster", map[string]any{"name": "pg", "instances": 3, "storage_size": "5Gi", "postgres_version": "17", "dry_run": true})
	obj := d["object"].(map[string]any)
	if d["dry_run"] != true || obj["kind"] != "Cluster" || obj["spec"].(map[string]any)["imageName"] != "postgresql:17" {
		t.Fatalf("dry run: %v", d)
	}
	if h.exists(&cnpgv1.Cluster{}, "pg") {
		t.Fatal("dry run created the cluster")
	}
	h.ok("create_postgres_cluster", map[string]any{"name": "pg", "instances": 3, "storage_size": "5Gi", "storage_class": "fast"})
	cl := h.getCluster("pg")
	if cl.Spec.Instances != 3 || cl.Spec.StorageConfiguration.Size != "5Gi" || *cl.Spec.StorageConfiguration.StorageClass != "fast" || cl.Labels[tools.LabelManagedBy] != tools.ManagedByValue {
		t.Fatalf("created: %+v", cl.Spec)
	}
	h.fails("create_postgres_cluster", map[string]any{"name": "pg"}, "already exists (409)")
	h.fails("create_postgres_cluster", map[string]any{"name": "pg2", "storage_size": "ten gigs"}, "Kubernetes quantity", "10Gi")
	h.fails("create_postgres_cluster", map[string]any{"name": "My.Cluster"}, "RFC 1123")
	h.fails("create_postgres_cluster", map[string]any{"name": "pg2", "postgres_version": "latest"}, "major version")
	// Schema validation: unknown arguments and out-of-range values are refused before the handler.
	h.fails("create_postgres_cluster", map[string]any{"name": "pg2", "replicas": 3})
	h.fails("create_postgres_cluster", map[string]any{"name": "pg2", "instances": 11})
	h.fails("create_postgres_cluster", map[string]any{"instances": 1})
}

func TestCreateClusterWait(t *testing.T) {
	h := newHarness(t, hopt{})
	go func() {
		// The operator: after a moment, report the new cluster healthy.
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			time.Sleep(300 * time.Millisecond)
			var cl cnpgv1.Cluster
			if err := admin.Client.Get(context.Background(), clientKey(h.ns, "pg"), &cl); err != nil {
				continue
			}
			cl.Status = cnpgv1.ClusterStatus{Phase: cnpgv1.PhaseHealthy, ReadyInstances: 1, Instances: 1, CurrentPrimary: "pg-1", TargetPrimary: "pg-1"}
			if admin.Client.Status().Update(context.Background(), &cl) == nil {
				return
			}
		}
	}()
	d := h.ok("create_postgres_cluster", map[string]any{"name": "pg", "instances": 1, "wait": true, "timeout": 30})
	if d["healthy"] != true {
		t.Fatalf("wait: %v", d)
	}
}

func TestScaleCluster(t *testing.T) {
	h := newHarness(t, hopt{})
	h.cluster("pg", 3, func(c *cnpgv1.Cluster) {})
	// Another writer changes the spec after our client would have read it: a merge patch of
	// spec.instances must not undo it (a full-object update would).
	cl := h.getCluster("pg")
	cl.Spec.Description = "set by someone else"
	if err := admin.Client.Update(context.Background(), cl); err != nil {
		t.Fatal(err)
	}
	d := h.ok("scale_postgres_cluster", map[string]any{"name": "pg", "instances": 5, "dry_run": true})
	if d["patch_type"] != "application/merge-patch+json" || h.getCluster("pg").Spec.Instances != 3 {
		t.Fatalf("dry run: %v", d)
	}
	d = h.ok("scale_postgres_cluster", map[string]any{"name": "pg", "instances": 5})
	got := h.getCluster("pg")
	if got.Spec.Instances != 5 || got.Spec.Description != "set by someone else" || d["from"] != float64(3) {
		t.Fatalf("scale: %v %+v", d, got.Spec)
	}
	h.fails("scale_postgres_cluster", map[string]any{"name": "nope", "instances": 2}, "not found")
}

func TestDeleteCluster(t *testing.T) {
	h := newHarness(t, hopt{})
	h.cluster("pg", 1, nil)
	ctx := context.Background()
	mine := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cnpg-pg-user-app", Namespace: h.ns, Labels: map[string]string{tools.LabelManagedBy: tools.ManagedByValue, tools.LabelCluster: "pg"}}}
	theirs := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pg-backup-creds", Namespace: h.ns, Labels: map[string]string{tools.LabelCluster: "pg"}}}
	for _, s := range []*corev1.Secret{mine, theirs} {
		if err := admin.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	h.fails("delete_postgres_cluster", map[string]any{"name": "pg"}, "confirm: true", "nothing was changed")
	d := h.ok("delete_postgres_cluster", map[string]any{"name": "pg", "dry_run": true})
	if !h.exists(&cnpgv1.Cluster{}, "pg") || d["dry_run"] != true {
		t.Fatal("dry run deleted the cluster")
	}
	h.ok("delete_postgres_cluster", map[string]any{"name": "pg", "confirm_deletion": true})
	if h.exists(&cnpgv1.Cluster{}, "pg") || h.exists(&corev1.Secret{}, mine.Name) {
		t.Fatal("cluster or its role secret still there")
	}
	if !h.exists(&corev1.Secret{}, theirs.Name) {
		t.Fatal("deleted a Secret this server did not create")
	}
	h.fails("delete_postgres_cluster", map[string]any{"name": "pg", "confirm": true}, "not found")
}
