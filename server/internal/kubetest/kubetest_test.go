package kubetest

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestEnv starts the environment once and checks what the tool tests rely on: CRDs served with
// their schema validation, RBAC enforced for restricted identities, pods/log through the fake kubelet.
func TestEnv(t *testing.T) {
	if !Available() {
		if os.Getenv("CNPG_MCP_REQUIRE_ALL") == "1" {
			t.Fatal(ErrNoBinaries)
		}
		t.Skip(ErrNoBinaries)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	t.Logf("kubetest timings: etcd %v, kube-apiserver %v, CRDs+node %v, total %v", env.Timings.Etcd, env.Timings.APIServer, env.Timings.CRDs, env.Timings.Total)

	c, err := client.New(env.Admin, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cl := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
		"metadata": map[string]any{"name": "pg", "namespace": "default"},
		"spec":     map[string]any{"instances": 1, "storage": map[string]any{"size": "1Gi"}},
	}}
	if err := c.Create(ctx, cl); err != nil {
		t.Fatalf("create Cluster: %v", err)
	}
	bad := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "postgresql.cnpg.io/v1", "kind": "DatabaseRole",
		"metadata": map[string]any{"name": "pg-x", "namespace": "default"},
		"spec":     map[string]any{"name": "x", "cluster": map[string]any{"name": "pg"}, "ensure": "absent"},
	}}
	if err := c.Create(ctx, bad); err == nil {
		t.Fatal("the DatabaseRole CEL rule (ensure: absent not allowed) was not enforced")
	}

	// A restricted identity has no rights.
	ucfg, err := env.UserConfig("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uc, _ := client.New(ucfg, client.Options{})
	if err := uc.Get(ctx, client.ObjectKey{Namespace: "default", Name: "pg"}, cl); err == nil {
		t.Fatal("restricted identity could read a Cluster")
	}

	// pods/log through the API server to the fake kubelet.
	cs := kubernetes.NewForConfigOrDie(env.Admin)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: NodeName, Containers: []corev1.Container{{Name: "postgres", Image: "x"}}}}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.Kubelet().SetLog("default", "p", "postgres", "a\nb\nc\n")
	n := int64(2)
	out, err := cs.CoreV1().Pods("default").GetLogs("p", &corev1.PodLogOptions{Container: "postgres", TailLines: &n}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("pods/log: %v", err)
	}
	if string(out) != "b\nc\n" {
		t.Fatalf("log tail = %q", out)
	}
}
