package tools_test

import (
	"context"
	"testing"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
)

func TestPromoteInstance(t *testing.T) {
	h := newHarness(t, hopt{})
	h.cluster("pg", 3, func(c *cnpgv1.Cluster) {
		c.Status.InstancesStatus = map[cnpgv1.PodStatus][]string{cnpgv1.PodHealthy: {"pg-1", "pg-2"}, cnpgv1.PodReplicating: {"pg-3"}}
	})
	for _, n := range []string{"pg-1", "pg-2", "pg-3"} {
		h.pod("pg", n, false)
	}
	h.fails("promote_cluster_instance", map[string]any{"name": "pg", "instance": "pg-1"}, "already the primary")
	h.fails("promote_cluster_instance", map[string]any{"name": "pg", "instance": "pg-9"}, "not an instance")
	h.fails("promote_cluster_instance", map[string]any{"name": "pg", "instance": "pg-3"}, "not reported healthy", "force")

	d := h.ok("promote_cluster_instance", map[string]any{"name": "pg", "instance": "pg-2", "dry_run": true})
	if d["subresource"] != "status" || h.getCluster("pg").Status.TargetPrimary != "pg-1" {
		t.Fatalf("dry run: %v", d)
	}
	h.ok("promote_cluster_instance", map[string]any{"name": "pg", "instance": "pg-2"})
	cl := h.getCluster("pg")
	if cl.Status.TargetPrimary != "pg-2" || cl.Status.TargetPrimaryTimestamp == "" || cl.Status.Phase != cnpgv1.PhaseSwitchover {
		t.Fatalf("status after promote: %+v", cl.Status)
	}
	if len(cl.Annotations) != 0 {
		t.Fatalf("promote must not use annotations (there is no switchover annotation): %v", cl.Annotations)
	}
	h.fails("promote_cluster_instance", map[string]any{"name": "pg", "instance": "pg-3", "force": true}, "in progress")
	// The operator completes the switchover; force promotes an instance not reported healthy.
	cl.Status.CurrentPrimary, cl.Status.Phase = "pg-2", cnpgv1.PhaseHealthy
	h.operatorStatus(cl)
	h.ok("promote_cluster_instance", map[string]any{"name": "pg", "instance": "pg-3", "force": true})
	if h.getCluster("pg").Status.TargetPrimary != "pg-3" {
		t.Fatal("forced promote did not set targetPrimary")
	}
}

func TestDeleteInstance(t *testing.T) {
	h := newHarness(t, hopt{})
	h.cluster("pg", 2, nil)
	h.pod("pg", "pg-1", false)
	h.pod("pg", "pg-2", false)
	ctx := context.Background()
	for _, n := range []string{"pg-2", "pg-2-wal"} {
		pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: h.ns, Labels: map[string]string{tools.LabelCluster: "pg", tools.LabelInstance: "pg-2"}},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
		if err := admin.Client.Create(ctx, pvc); err != nil {
			t.Fatal(err)
		}
	}
	h.fails("delete_cluster_instance", map[string]any{"name": "pg", "instance": "pg-1", "confirm": true}, "primary", "promote_cluster_instance")
	h.fails("delete_cluster_instance", map[string]any{"name": "pg", "instance": "pg-2"}, "confirm: true")
	h.fails("delete_cluster_instance", map[string]any{"name": "pg", "instance": "pg-7", "confirm": true}, "no instance")
	d := h.ok("delete_cluster_instance", map[string]any{"name": "pg", "instance": "pg-2", "dry_run": true})
	if !h.exists(&corev1.Pod{}, "pg-2") || len(d["pvcs_deleted"].([]any)) != 2 {
		t.Fatalf("dry run: %v", d)
	}
	h.ok("delete_cluster_instance", map[string]any{"name": "pg", "instance": "pg-2", "confirm_deletion": true})
	// PVCs are held by the pvc-protection finalizer (no controller here): deletion requested is enough.
	if h.exists(&corev1.Pod{}, "pg-2") || h.exists(&corev1.PersistentVolumeClaim{}, "pg-2") || h.exists(&corev1.PersistentVolumeClaim{}, "pg-2-wal") {
		t.Fatal("instance pod or PVCs not deleted")
	}
	if !h.exists(&corev1.Pod{}, "pg-1") {
		t.Fatal("primary pod deleted")
	}
}

func TestResize(t *testing.T) {
	h := newHarness(t, hopt{})
	h.cluster("pg", 2, nil)
	ctx := context.Background()
	for i, n := range []string{"pg-1", "pg-2"} {
		pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: h.ns, Labels: map[string]string{tools.LabelCluster: "pg", tools.LabelInstance: n, "cnpg.io/pvcRole": "PG_DATA"}},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}}}}
		if err := admin.Client.Create(ctx, pvc); err != nil {
			t.Fatal(err)
		}
		// The storage driver: pg-1 already expanded, pg-2 still at 1Gi.
		capacity := map[int]string{0: "2Gi", 1: "1Gi"}[i]
		pvc.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(capacity)}}
		if err := admin.Client.Status().Update(ctx, pvc); err != nil {
			t.Fatal(err)
		}
	}
	h.ok("resize_postgres_cluster", map[string]any{"name": "pg", "storage_size": "2Gi"})
	if got := h.getCluster("pg").Spec.StorageConfiguration.Size; got != "2Gi" {
		t.Fatalf("grow: size %s", got)
	}
	d := h.ok("get_cluster_resize_status", map[string]any{"name": "pg"})
	if d["state"] != "in progress" || d["pending"] != float64(1) || d["requested_size"] != "2Gi" {
		t.Fatalf("resize status: %v", d)
	}
	if d := h.ok("resize_postgres_cluster", map[string]any{"name": "pg", "storage_size": "2048Mi"}); d["action"] != "none" {
		t.Fatalf("same size: %v", d)
	}
	h.fails("resize_postgres_cluster", map[string]any{"name": "pg", "storage_size": "1Gi"}, "extra_instances")
	h.fails("resize_postgres_cluster", map[string]any{"name": "pg", "storage_size": "1Gi", "extra_instances": 1}, "confirm")
	d = h.ok("resize_postgres_cluster", map[string]any{"name": "pg", "storage_size": "1Gi", "extra_instances": 1, "dry_run": true})
	if len(d["patches"].([]any)) != 3 || h.getCluster("pg").Spec.StorageConfiguration.Size != "2Gi" {
		t.Fatalf("shrink dry run: %v", d)
	}
	h.ok("resize_postgres_cluster", map[string]any{"name": "pg", "storage_size": "1Gi", "extra_instances": 1, "confirm_shrink": true})
	cl := h.getCluster("pg")
	if cl.Spec.StorageConfiguration.Size != "1Gi" || cl.Spec.Instances != 3 {
		t.Fatalf("shrink: %+v", cl.Spec)
	}
	if _, still := cl.Annotations[tools.AnnotationValidation]; still {
		t.Fatalf("validation annotation not restored: %v", cl.Annotations)
	}
	h.fails("resize_postgres_cluster", map[string]any{"name": "pg", "storage_size": "-1Gi"}, "positive Kubernetes quantity")
}
