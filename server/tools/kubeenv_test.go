package tools_test

import (
	"context"
	"testing"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cnpg-mcp/cnpg-mcp/internal/kubetest"
)

// TestKubeEnv checks what the tool tests rely on in the shared environment: the CNPG CRDs are
// served with their CEL validation, RBAC applies to restricted identities, and pods/log reaches the
// fake kubelet through the API server.
func TestKubeEnv(t *testing.T) {
	needEnv(t)
	ctx := context.Background()
	h := &harness{t: t, ns: "default"}
	bad := &cnpgv1.DatabaseRole{ObjectMeta: metav1.ObjectMeta{Name: "pg-x", Namespace: "default"},
		Spec: cnpgv1.DatabaseRoleSpec{RoleConfiguration: cnpgv1.RoleConfiguration{Name: "x", Ensure: cnpgv1.EnsureAbsent}, ClusterRef: corev1.LocalObjectReference{Name: "pg"}}}
	if err := admin.Client.Create(ctx, bad); err == nil {
		t.Fatal("the DatabaseRole CEL rule (ensure: absent not allowed) was not enforced")
	}
	ucfg, err := env.UserConfig("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uc, err := client.New(ucfg, client.Options{Scheme: admin.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	var list cnpgv1.ClusterList
	if err := uc.List(ctx, &list, client.InNamespace("default")); err == nil {
		t.Fatal("an identity without RBAC rules could list Clusters")
	}
	h.pod("none", "envcheck", true)
	env.Kubelet().SetLog("default", "envcheck", "postgres", "a\nb\nc\n")
	n := int64(2)
	out, err := admin.Core.CoreV1().Pods("default").GetLogs("envcheck", &corev1.PodLogOptions{Container: "postgres", TailLines: &n}).DoRaw(ctx)
	if err != nil || string(out) != "b\nc\n" {
		t.Fatalf("pods/log through the fake kubelet: %q %v", out, err)
	}
	if env.Timings.Total <= 0 || kubetest.NodeName == "" {
		t.Fatal("timings not recorded")
	}
}
