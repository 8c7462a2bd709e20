//go:build e2e

package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/cnpg-mcp/cnpg-mcp/e2e/kube"
	"github.com/cnpg-mcp/cnpg-mcp/e2e/mcpauth"
)

// The tools are driven exactly as an assistant would: an MCP client holding a token the server issued
// after consent and the upstream login; every effect is then checked in Kubernetes and in PostgreSQL.
var _ = Describe("the CNPG tools through an authenticated MCP client", Ordered, Label("tools"), func() {
	const (
		ns      = "e2e-tools"
		name    = "tools-pg"
		role    = "appuser"
		db      = "appdb"
		timeout = 8 * time.Minute
	)
	var mc *client.Client

	call := func(ctx context.Context, tool string, args map[string]any) string {
		GinkgoHelper()
		res, err := mc.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: tool, Arguments: args}})
		Expect(err).NotTo(HaveOccurred(), "tool %s", tool)
		var text strings.Builder
		for _, c := range res.Content {
			if t, ok := c.(mcp.TextContent); ok {
				text.WriteString(t.Text)
			}
		}
		Expect(res.IsError).To(BeFalse(), "tool %s answered an error: %s", tool, text.String())
		fmt.Fprintf(logw, "tool %s(%v): %.300s\n", tool, args, text.String())
		return text.String()
	}
	cluster := func(ctx context.Context) (*unstructured.Unstructured, error) {
		return kc.Get(ctx, clusterGVR, ns, name)
	}
	waitHealthy := func(ctx context.Context, instances int64) {
		GinkgoHelper()
		Expect(kube.WaitFor(ctx, fmt.Sprintf("cluster %s healthy with %d instances", name, instances), timeout, func(ctx context.Context) (bool, string, error) {
			o, err := cluster(ctx)
			if err != nil {
				return false, "", err
			}
			phase, _, _ := unstructured.NestedString(o.Object, "status", "phase")
			ready, _, _ := unstructured.NestedInt64(o.Object, "status", "readyInstances")
			return phase == "Cluster in healthy state" && ready == instances, fmt.Sprintf("%s, %d ready", phase, ready), nil
		})).To(Succeed())
	}
	psql := func(ctx context.Context, args ...string) (string, error) {
		return kc.Exec(ctx, ns, name+"-1", "postgres", append([]string{"psql", "-XAt"}, args...)...)
	}

	BeforeAll(func(ctx SpecContext) {
		ensureServer(ctx)
		_, err := kc.Typed.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			Fail(err.Error())
		}
		By("getting a token as a user would: registration, consent, upstream login, code exchange")
		tok, err := mcpauth.Authorize(ctx, mcpauth.Options{
			PublicURL: publicURL, Resource: publicURL + "/mcp", Scope: "mcp:read mcp:write",
			Username: "dev@example.com", Password: "dev-password", Chromium: "/usr/lib/chromium/chromium",
		})
		Expect(err).NotTo(HaveOccurred())
		mc, err = client.NewStreamableHttpClient(publicURL+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok.AccessToken}))
		Expect(err).NotTo(HaveOccurred())
		Expect(mc.Start(ctx)).To(Succeed())
		DeferCleanup(func() { _ = mc.Close() })
		_, err = mc.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
			ProtocolVersion: "2025-06-18", ClientInfo: mcp.Implementation{Name: "cnpg-mcp-e2e", Version: "dev"},
		}})
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(3*time.Minute))

	It("creates a cluster that becomes healthy", func(ctx SpecContext) {
		call(ctx, "create_postgres_cluster", map[string]any{"name": name, "namespace": ns, "instances": 1, "storage_size": "1Gi"})
		waitHealthy(ctx, 1)
		Expect(call(ctx, "get_cluster_status", map[string]any{"name": name, "namespace": ns})).To(ContainSubstring("healthy"))
	}, SpecTimeout(timeout+time.Minute))

	It("creates a role and a database that psql connects with", func(ctx SpecContext) {
		call(ctx, "create_postgres_role", map[string]any{"cluster_name": name, "role_name": role, "login": true, "namespace": ns})
		call(ctx, "create_postgres_database", map[string]any{"cluster_name": name, "database_name": db, "owner": role, "namespace": ns})

		var password string
		Expect(kube.WaitFor(ctx, "the role's password Secret", time.Minute, func(ctx context.Context) (bool, string, error) {
			s, err := kc.Typed.CoreV1().Secrets(ns).Get(ctx, "cnpg-"+name+"-user-"+role, metav1.GetOptions{})
			if err != nil {
				return false, "", err
			}
			password = string(s.Data["password"])
			return password != "", "empty password", nil
		})).To(Succeed())

		// The operator applies DatabaseRole and Database asynchronously: connect as the role until it works.
		var out string
		Expect(kube.WaitFor(ctx, "psql as "+role+" into "+db, 3*time.Minute, func(ctx context.Context) (bool, string, error) {
			var err error
			out, err = kc.Exec(ctx, ns, name+"-1", "postgres", "env", "PGPASSWORD="+password, "psql", "-XAt",
				"host="+name+"-rw user="+role+" dbname="+db, "-c", "select current_user || '@' || current_database()")
			if err != nil {
				return false, err.Error(), nil
			}
			return true, "", nil
		})).To(Succeed())
		Expect(strings.TrimSpace(out)).To(Equal(role + "@" + db))

		owner, err := psql(ctx, "-c", "select pg_get_userbyid(datdba) from pg_database where datname = '"+db+"'")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(owner)).To(Equal(role))
	}, SpecTimeout(5*time.Minute))

	It("scales to two instances", func(ctx SpecContext) {
		call(ctx, "scale_postgres_cluster", map[string]any{"name": name, "instances": 2, "namespace": ns})
		o, err := cluster(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(unstructured.NestedInt64(o.Object, "spec", "instances")).To(BeEquivalentTo(2))
		waitHealthy(ctx, 2)
		out, err := psql(ctx, "-c", "select count(*) from pg_stat_replication")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(out)).To(Equal("1"), "the new instance streams from the primary")
	}, SpecTimeout(timeout+time.Minute))

	It("plans a backup without creating one, as the cluster has no backup target", func(ctx SpecContext) {
		o, err := cluster(ctx)
		Expect(err).NotTo(HaveOccurred())
		if _, found, _ := unstructured.NestedMap(o.Object, "spec", "backup"); found {
			Skip("the cluster has a backup target: a real backup is covered by the operator's own tests")
		}
		plan := call(ctx, "create_backup", map[string]any{"cluster_name": name, "namespace": ns, "dry_run": true})
		Expect(plan).To(ContainSubstring(name))
		list, err := kc.Dynamic.Resource(clusterGVR.GroupVersion().WithResource("backups")).Namespace(ns).List(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(list.Items).To(BeEmpty(), "a dry run must not create a Backup")
	})

	It("hibernates the cluster and wakes it", func(ctx SpecContext) {
		call(ctx, "hibernate_postgres_cluster", map[string]any{"name": name, "state": "on", "confirm": true, "namespace": ns})
		Expect(kube.WaitFor(ctx, "instances stopped", timeout, func(ctx context.Context) (bool, string, error) {
			pods, err := kc.Typed.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "cnpg.io/cluster=" + name + ",cnpg.io/podRole=instance"})
			if err != nil {
				return false, "", err
			}
			return len(pods.Items) == 0, fmt.Sprintf("%d instance pods", len(pods.Items)), nil
		})).To(Succeed())
		pvcs, err := kc.Typed.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{LabelSelector: "cnpg.io/cluster=" + name})
		Expect(err).NotTo(HaveOccurred())
		Expect(pvcs.Items).NotTo(BeEmpty(), "hibernation keeps the volumes")

		call(ctx, "hibernate_postgres_cluster", map[string]any{"name": name, "state": "off", "namespace": ns})
		waitHealthy(ctx, 2)
		out, err := psql(ctx, "-d", db, "-c", "select 1")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(out)).To(Equal("1"))
	}, SpecTimeout(2*timeout))

	It("deletes the cluster and the Secrets it created", func(ctx SpecContext) {
		call(ctx, "delete_postgres_cluster", map[string]any{"name": name, "confirm": true, "namespace": ns})
		Expect(kube.WaitFor(ctx, "cluster gone", 3*time.Minute, func(ctx context.Context) (bool, string, error) {
			_, err := cluster(ctx)
			if apierrors.IsNotFound(err) {
				return true, "", nil
			}
			return false, "still there", err
		})).To(Succeed())
		_, err := kc.Typed.CoreV1().Secrets(ns).Get(ctx, "cnpg-"+name+"-user-"+role, metav1.GetOptions{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the role's password Secret must go with the cluster: %v", err)
	}, SpecTimeout(4*time.Minute))
})
