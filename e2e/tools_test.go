//go:build e2e

package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/cnpg-mcp/cnpg-mcp/e2e/kube"
	"github.com/cnpg-mcp/cnpg-mcp/e2e/mcpauth"
)

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func cnpgGVR(resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "postgresql.cnpg.io", Version: "v1", Resource: resource}
}

// The tools are driven exactly as an assistant would: an MCP client holding a token the server issued
// after consent and the upstream login. Each of the 38 tools (restore and recoverability in backups_test.go) is called against the real operator, and its
// effect is checked in Kubernetes and, where it has one, in PostgreSQL. Tools whose effect needs what a
// kind cluster lacks (a backup object store, an expandable StorageClass) run as dry runs, and the test
// checks that nothing changed.
//
// The checks are split into two tracks, each on its own cluster in its own namespace, so that `make
// e2e` runs them side by side (and beside the other specs); both create a one-instance cluster and
// scale it to two:
//   - grow: roles and databases, the maintenance window (one instance), then scale, switchover and
//     restarts on two instances, dropping the database and the role, deletion;
//   - pair: scale, fencing, backup plans, poolers, permissions, the resize plan, logs and diagnosis with
//     a replica, destroying a replica, hibernation, deletion.
//
// (About 4 minutes each under `make e2e`, beside the backups spec, the longest.)
//
// Every tool either track calls is recorded in the run's shared directory; the last spec ("called
// every tool the server lists") checks that together they called all of them.
type toolTrack struct {
	key, ns, name string
	grow          bool
}

var (
	growTrack = toolTrack{key: "grow", ns: "e2e-tools", name: "tools-pg", grow: true}
	pairTrack = toolTrack{key: "pair", ns: "e2e-tools-2", name: "tools-pair"}
)

var _ = Describe("the CNPG tools through an authenticated MCP client: roles, maintenance, switchover, restarts", Ordered, Label("tools"), SpecPriority(100), func() {
	toolSpecs(growTrack)
})

var _ = Describe("the CNPG tools through an authenticated MCP client: fencing, backup plans, poolers, replicas, hibernation", Ordered, Label("tools"), SpecPriority(70), func() {
	toolSpecs(pairTrack)
})

// toolsRecord is what a track leaves in the shared directory: what the server listed, what it called.
type toolsRecord struct {
	Listed []string        `json:"listed"`
	Called map[string]bool `json:"called"`
}

func toolsRecordPath(t toolTrack) string { return filepath.Join(shared.Dir, "tools-"+t.key+".json") }

var _ = Describe("the CNPG tools through an authenticated MCP client: all of them", Label("tools"), Serial, SpecPriority(-100), func() {
	It("called every tool the server lists", func() {
		called := map[string]bool{}
		var listed []string
		for _, t := range []toolTrack{growTrack, pairTrack} {
			b, err := os.ReadFile(toolsRecordPath(t))
			Expect(err).NotTo(HaveOccurred(), "the %s track of the tools spec did not run", t.key)
			var r toolsRecord
			Expect(json.Unmarshal(b, &r)).To(Succeed())
			for k := range r.Called {
				called[k] = true
			}
			listed = r.Listed
		}
		var missing []string
		for _, t := range listed {
			if !called[t] && !backupSpecTools[t] {
				missing = append(missing, t)
			}
		}
		Expect(listed).To(HaveLen(38))
		Expect(missing).To(BeEmpty(), "tools no spec called")
	})
})

func toolSpecs(track toolTrack) {
	const (
		role    = "appuser"
		db      = "appdb"
		timeout = 8 * time.Minute
	)
	ns, name := track.ns, track.name
	var (
		mc     *client.Client
		called = map[string]bool{}
	)

	callResult := func(ctx context.Context, tool string, args map[string]any) (*mcp.CallToolResult, string) {
		GinkgoHelper()
		called[tool] = true
		res, err := mc.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: tool, Arguments: args}})
		Expect(err).NotTo(HaveOccurred(), "tool %s", tool)
		var text strings.Builder
		for _, c := range res.Content {
			if t, ok := c.(mcp.TextContent); ok {
				text.WriteString(t.Text)
			}
		}
		fmt.Fprintf(logw, "tool %s(%v): error=%t %.300s\n", tool, args, res.IsError, text.String())
		return res, text.String()
	}
	call := func(ctx context.Context, tool string, args map[string]any) string {
		GinkgoHelper()
		res, text := callResult(ctx, tool, args)
		Expect(res.IsError).To(BeFalse(), "tool %s answered an error: %s", tool, text)
		return text
	}
	// structured returns the tool's structuredContent as a JSON object.
	structured := func(ctx context.Context, tool string, args map[string]any) map[string]any {
		GinkgoHelper()
		res, text := callResult(ctx, tool, args)
		Expect(res.IsError).To(BeFalse(), "tool %s answered an error: %s", tool, text)
		b, err := json.Marshal(res.StructuredContent)
		Expect(err).NotTo(HaveOccurred())
		var m map[string]any
		Expect(json.Unmarshal(b, &m)).To(Succeed(), "tool %s: structuredContent %s", tool, b)
		return m
	}
	cluster := func(ctx context.Context) (*unstructured.Unstructured, error) {
		return kc.Get(ctx, clusterGVR, ns, name)
	}
	mustCluster := func(ctx context.Context) *unstructured.Unstructured {
		GinkgoHelper()
		o, err := cluster(ctx)
		Expect(err).NotTo(HaveOccurred())
		return o
	}
	str := func(o *unstructured.Unstructured, path ...string) string {
		s, _, _ := unstructured.NestedString(o.Object, path...)
		return s
	}
	flag := func(o *unstructured.Unstructured, path ...string) bool {
		b, _, _ := unstructured.NestedBool(o.Object, path...)
		return b
	}
	num := func(o *unstructured.Unstructured, path ...string) int64 {
		GinkgoHelper()
		n, found, err := unstructured.NestedInt64(o.Object, path...)
		Expect(err).NotTo(HaveOccurred())
		Expect(found).To(BeTrue(), "%v not set", path)
		return n
	}
	waitHealthy := func(ctx context.Context, instances int64) {
		GinkgoHelper()
		Expect(kube.WaitFor(ctx, fmt.Sprintf("cluster %s healthy with %d instances", name, instances), timeout, func(ctx context.Context) (bool, string, error) {
			o, err := cluster(ctx)
			if err != nil {
				return false, "", err
			}
			phase := str(o, "status", "phase")
			ready, _, _ := unstructured.NestedInt64(o.Object, "status", "readyInstances")
			target, current := str(o, "status", "targetPrimary"), str(o, "status", "currentPrimary")
			return phase == "Cluster in healthy state" && ready == instances && target == current,
				fmt.Sprintf("%s, %d ready, primary %s→%s", phase, ready, current, target), nil
		})).To(Succeed())
	}
	primary := func(ctx context.Context) string {
		GinkgoHelper()
		p := str(mustCluster(ctx), "status", "currentPrimary")
		Expect(p).NotTo(BeEmpty())
		return p
	}
	instancePods := func(ctx context.Context) []corev1.Pod {
		GinkgoHelper()
		pods, err := kc.Typed.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "cnpg.io/cluster=" + name + ",cnpg.io/podRole=instance"})
		Expect(err).NotTo(HaveOccurred())
		return pods.Items
	}
	replica := func(ctx context.Context) string {
		GinkgoHelper()
		p := primary(ctx)
		for _, pod := range instancePods(ctx) {
			if pod.Name != p {
				return pod.Name
			}
		}
		Fail("no replica instance")
		return ""
	}
	// sqlOn runs psql as postgres (peer authentication) in an instance pod.
	sqlOn := func(ctx context.Context, pod string, args ...string) (string, error) {
		out, err := kc.Exec(ctx, ns, pod, "postgres", append([]string{"psql", "-XAt"}, args...)...)
		return strings.TrimSpace(out), err
	}
	sql := func(ctx context.Context, query string) string {
		GinkgoHelper()
		out, err := sqlOn(ctx, primary(ctx), "-c", query)
		Expect(err).NotTo(HaveOccurred(), "psql %q", query)
		return out
	}
	waitSQL := func(ctx context.Context, what, query, want string) {
		GinkgoHelper()
		Expect(kube.WaitFor(ctx, what, 3*time.Minute, func(ctx context.Context) (bool, string, error) {
			out, err := sqlOn(ctx, str(mustCluster(ctx), "status", "currentPrimary"), "-c", query)
			if err != nil {
				return false, err.Error(), nil
			}
			return out == want, fmt.Sprintf("%q", out), nil
		})).To(Succeed())
	}
	// connectAs logs in over TCP through the -rw Service with a password, as an application would.
	connectAs := func(ctx context.Context, user, password, dbname string) (string, error) {
		out, err := kc.Exec(ctx, ns, str(mustCluster(ctx), "status", "currentPrimary"), "postgres", "env", "PGPASSWORD="+password, "psql", "-XAt",
			"host="+name+"-rw user="+user+" dbname="+dbname, "-c", "select current_user || '@' || current_database()")
		return strings.TrimSpace(out), err
	}
	waitConnect := func(ctx context.Context, user, password, dbname string) {
		GinkgoHelper()
		Expect(kube.WaitFor(ctx, "psql as "+user+" into "+dbname, 3*time.Minute, func(ctx context.Context) (bool, string, error) {
			out, err := connectAs(ctx, user, password, dbname)
			if err != nil {
				return false, err.Error(), nil
			}
			return out == user+"@"+dbname, out, nil
		})).To(Succeed())
	}
	postmasterStart := func(ctx context.Context, pod string) string {
		GinkgoHelper()
		out, err := sqlOn(ctx, pod, "-c", "select pg_postmaster_start_time()")
		Expect(err).NotTo(HaveOccurred())
		return out
	}
	annotation := func(ctx context.Context, key string) string {
		return mustCluster(ctx).GetAnnotations()[key]
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
			Username: "dev@example.com", Password: "dev-password", Chromium: chromium(),
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Fields(tok.Scope)).To(ContainElements("mcp:read", "mcp:write"))
		mc, err = client.NewStreamableHttpClient(publicURL+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok.AccessToken}))
		Expect(err).NotTo(HaveOccurred())
		Expect(mc.Start(ctx)).To(Succeed())
		DeferCleanup(func() { _ = mc.Close() })
		_, err = mc.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
			ProtocolVersion: "2025-06-18", ClientInfo: mcp.Implementation{Name: "cnpg-mcp-e2e-tools-" + track.key, Version: "dev"},
		}})
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(3*time.Minute))

	It("creates a cluster (dry run first) and waits until it is healthy", func(ctx SpecContext) {
		plan := structured(ctx, "create_postgres_cluster", map[string]any{"name": name, "namespace": ns, "instances": 1, "storage_size": "1Gi", "dry_run": true})
		Expect(plan["dry_run"]).To(BeTrue())
		_, err := cluster(ctx)
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a dry run must not create the Cluster: %v", err)

		start := time.Now()
		out := call(ctx, "create_postgres_cluster", map[string]any{"name": name, "namespace": ns, "instances": 1, "storage_size": "1Gi", "wait": true, "timeout": 480})
		AddReportEntry("tools-create-cluster-wait", time.Since(start).Round(time.Second).String())
		Expect(out).To(ContainSubstring("healthy"))
		waitHealthy(ctx, 1)
		o := mustCluster(ctx)
		Expect(str(o, "spec", "storage", "size")).To(Equal("1Gi"))
		Expect(sql(ctx, "select 1")).To(Equal("1"))

		Expect(call(ctx, "get_cluster_status", map[string]any{"name": name, "namespace": ns})).To(ContainSubstring("Cluster in healthy state"))
		Expect(call(ctx, "list_postgres_clusters", map[string]any{"namespace": ns})).To(ContainSubstring(name))
	}, SpecTimeout(timeout+time.Minute))

	if track.grow {
		It("creates a role and a database that psql connects with, then changes the role", func(ctx SpecContext) {
			call(ctx, "create_postgres_role", map[string]any{"cluster_name": name, "role_name": role, "login": true, "namespace": ns})
			call(ctx, "create_postgres_database", map[string]any{"cluster_name": name, "database_name": db, "owner": role, "namespace": ns, "reclaim_policy": "delete"})
			// a second login role, kept until the cluster is deleted (its Secret must go with the cluster)
			call(ctx, "create_postgres_role", map[string]any{"cluster_name": name, "role_name": "reader", "login": true, "namespace": ns})

			secretName := "cnpg-" + name + "-user-" + role
			var password string
			Expect(kube.WaitFor(ctx, "the role's password Secret", time.Minute, func(ctx context.Context) (bool, string, error) {
				s, err := kc.Typed.CoreV1().Secrets(ns).Get(ctx, secretName, metav1.GetOptions{})
				if err != nil {
					return false, "", err
				}
				password = string(s.Data["password"])
				return password != "", "empty password", nil
			})).To(Succeed())

			// The operator applies DatabaseRole and Database asynchronously: connect as the role until it works.
			waitConnect(ctx, role, password, db)
			Expect(sql(ctx, "select pg_get_userbyid(datdba) from pg_database where datname = '"+db+"'")).To(Equal(role))

			Expect(call(ctx, "list_postgres_roles", map[string]any{"cluster_name": name, "namespace": ns})).To(ContainSubstring(role))
			Expect(call(ctx, "get_postgres_role_status", map[string]any{"cluster_name": name, "role_name": role, "namespace": ns})).To(ContainSubstring("applied"))
			Expect(call(ctx, "list_postgres_databases", map[string]any{"cluster_name": name, "namespace": ns})).To(ContainSubstring(db))
			Expect(call(ctx, "get_postgres_database_status", map[string]any{"cluster_name": name, "database_name": db, "namespace": ns})).To(ContainSubstring("applied"))

			By("update_postgres_role: CREATEDB and a new password, applied by the operator")
			Expect(sql(ctx, "select rolcreatedb from pg_roles where rolname = '"+role+"'")).To(Equal("f"))
			const newPassword = "e2e-Rotated-Password-1"
			call(ctx, "update_postgres_role", map[string]any{"cluster_name": name, "role_name": role, "createdb": true, "password": newPassword, "namespace": ns})
			waitSQL(ctx, "CREATEDB on "+role, "select rolcreatedb from pg_roles where rolname = '"+role+"'", "t")
			waitConnect(ctx, role, newPassword, db)
			_, err := connectAs(ctx, role, password, db)
			Expect(err).To(HaveOccurred(), "the old password must no longer work")
		}, SpecTimeout(8*time.Minute))
	}

	if track.grow {
		It("sets and unsets the node maintenance window", func(ctx SpecContext) {
			// Run while the cluster has one instance: with reusePVC, the operator then drops the primary's
			// PodDisruptionBudget so the node can be drained (with more instances only the replicas' one,
			// which exists from three instances on).
			Expect(num(mustCluster(ctx), "spec", "instances")).To(BeEquivalentTo(1))
			pdb := func(ctx context.Context) error {
				_, err := kc.Typed.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name+"-primary", metav1.GetOptions{})
				return err
			}
			Expect(pdb(ctx)).To(Succeed(), "the primary's PodDisruptionBudget exists outside maintenance")
			call(ctx, "set_cluster_maintenance", map[string]any{"name": name, "state": "set", "reuse_pvc": true, "namespace": ns})
			o := mustCluster(ctx)
			Expect(flag(o, "spec", "nodeMaintenanceWindow", "inProgress")).To(BeTrue())
			Expect(kube.WaitFor(ctx, "primary PDB removed", 2*time.Minute, func(ctx context.Context) (bool, string, error) {
				err := pdb(ctx)
				return apierrors.IsNotFound(err), "still there", nil
			})).To(Succeed())

			call(ctx, "set_cluster_maintenance", map[string]any{"name": name, "state": "unset", "namespace": ns})
			Expect(flag(mustCluster(ctx), "spec", "nodeMaintenanceWindow", "inProgress")).To(BeFalse())
			Expect(kube.WaitFor(ctx, "primary PDB back", 2*time.Minute, func(ctx context.Context) (bool, string, error) {
				err := pdb(ctx)
				return err == nil, fmt.Sprint(err), nil
			})).To(Succeed())
		}, SpecTimeout(5*time.Minute))
	}

	It("scales to two instances", func(ctx SpecContext) {
		// The new instance clones the primary with pg_basebackup, whose default spread checkpoint paces
		// the primary's dirty buffers over checkpoint_completion_target × checkpoint_timeout: minutes on
		// a cluster that was just written to. A CHECKPOINT first leaves it nothing to pace; the tool's
		// effect (spec.instances, a second instance streaming) is the same.
		sql(ctx, "checkpoint")
		start := time.Now()
		call(ctx, "scale_postgres_cluster", map[string]any{"name": name, "instances": 2, "namespace": ns})
		Expect(num(mustCluster(ctx), "spec", "instances")).To(BeEquivalentTo(2))
		waitHealthy(ctx, 2)
		AddReportEntry("tools-scale-to-two "+track.key, time.Since(start).Round(time.Second).String())
		Expect(sql(ctx, "select count(*) from pg_stat_replication")).To(Equal("1"), "the new instance streams from the primary")
	}, SpecTimeout(timeout+time.Minute))

	if track.grow {
		It("switches the primary over to the replica", func(ctx SpecContext) {
			old, target := primary(ctx), replica(ctx)
			call(ctx, "promote_cluster_instance", map[string]any{"name": name, "instance": target, "namespace": ns})
			Expect(kube.WaitFor(ctx, "switchover to "+target, timeout, func(ctx context.Context) (bool, string, error) {
				o, err := cluster(ctx)
				if err != nil {
					return false, "", err
				}
				return str(o, "status", "currentPrimary") == target, str(o, "status", "phase"), nil
			})).To(Succeed())
			waitHealthy(ctx, 2)
			out, err := sqlOn(ctx, target, "-c", "select pg_is_in_recovery()")
			Expect(err).NotTo(HaveOccurred())
			Expect(out).To(Equal("f"), "the promoted instance accepts writes")
			Expect(kube.WaitFor(ctx, old+" following as a replica", 3*time.Minute, func(ctx context.Context) (bool, string, error) {
				out, err := sqlOn(ctx, old, "-c", "select pg_is_in_recovery()")
				if err != nil {
					return false, err.Error(), nil
				}
				return out == "t", out, nil
			})).To(Succeed())
		}, SpecTimeout(timeout+time.Minute))
	}

	if track.grow {
		It("reloads, restarts one replica and restarts the whole cluster", func(ctx SpecContext) {
			call(ctx, "reload_postgres_cluster", map[string]any{"name": name, "namespace": ns})
			Expect(annotation(ctx, "cnpg.io/reloadedAt")).NotTo(BeEmpty())

			By("restart_postgres_cluster of one replica: its pod is recreated and PostgreSQL starts again")
			r := replica(ctx)
			pod, err := kc.Typed.CoreV1().Pods(ns).Get(ctx, r, metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			before := postmasterStart(ctx, r)
			call(ctx, "restart_postgres_cluster", map[string]any{"name": name, "instance": r, "namespace": ns})
			Expect(kube.WaitFor(ctx, "pod "+r+" recreated", timeout, func(ctx context.Context) (bool, string, error) {
				p, err := kc.Typed.CoreV1().Pods(ns).Get(ctx, r, metav1.GetOptions{})
				if err != nil {
					return false, "", err
				}
				return p.UID != pod.UID, "same pod", nil
			})).To(Succeed())
			waitHealthy(ctx, 2)
			Expect(postmasterStart(ctx, r)).NotTo(Equal(before))

			By("restart_postgres_cluster of the cluster: a rolling restart of every instance")
			starts := map[string]string{}
			for _, p := range instancePods(ctx) {
				starts[p.Name] = postmasterStart(ctx, p.Name)
			}
			call(ctx, "restart_postgres_cluster", map[string]any{"name": name, "namespace": ns})
			Expect(annotation(ctx, "kubectl.kubernetes.io/restartedAt")).NotTo(BeEmpty())
			Expect(kube.WaitFor(ctx, "every instance restarted", timeout, func(ctx context.Context) (bool, string, error) {
				var waiting []string
				for p, t := range starts {
					out, err := sqlOn(ctx, p, "-c", "select pg_postmaster_start_time()")
					if err != nil || out == t {
						waiting = append(waiting, p)
					}
				}
				return len(waiting) == 0, fmt.Sprintf("not restarted yet: %v", waiting), nil
			})).To(Succeed())
			waitHealthy(ctx, 2)
		}, SpecTimeout(2*timeout))
	}

	if !track.grow {
		It("fences a replica and lifts the fence", func(ctx SpecContext) {
			r := replica(ctx)
			call(ctx, "fence_postgres_instances", map[string]any{"name": name, "instance": r, "state": "on", "confirm": true, "namespace": ns})
			Expect(annotation(ctx, "cnpg.io/fencedInstances")).To(ContainSubstring(r))
			pod, err := kc.Typed.CoreV1().Pods(ns).Get(ctx, r, metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			// Fenced: PostgreSQL stopped, so the pod turns not ready, but the pod itself stays.
			Expect(kube.WaitFor(ctx, "PostgreSQL stopped on "+r, timeout, func(ctx context.Context) (bool, string, error) {
				p, err := kc.Typed.CoreV1().Pods(ns).Get(ctx, r, metav1.GetOptions{})
				if err != nil {
					return false, "", err
				}
				if p.UID != pod.UID {
					return false, "", fmt.Errorf("fencing must keep the pod, but %s was recreated", r)
				}
				_, sqlErr := sqlOn(ctx, r, "-c", "select 1")
				return sqlErr != nil && !podReady(p), fmt.Sprintf("ready %t, psql error %v", podReady(p), sqlErr), nil
			})).To(Succeed())

			call(ctx, "fence_postgres_instances", map[string]any{"name": name, "instance": r, "state": "off", "namespace": ns})
			Expect(annotation(ctx, "cnpg.io/fencedInstances")).NotTo(ContainSubstring(r))
			Expect(kube.WaitFor(ctx, "PostgreSQL answering on "+r, timeout, func(ctx context.Context) (bool, string, error) {
				p, err := kc.Typed.CoreV1().Pods(ns).Get(ctx, r, metav1.GetOptions{})
				if err != nil {
					return false, "", err
				}
				out, err := sqlOn(ctx, r, "-c", "select pg_is_in_recovery()")
				return err == nil && out == "t" && podReady(p), fmt.Sprintf("ready %t, %q", podReady(p), out), nil
			})).To(Succeed())
			waitHealthy(ctx, 2)
		}, SpecTimeout(2*timeout))
	}

	if !track.grow {
		It("plans backups and manages a scheduled backup, as the cluster has no backup target", func(ctx SpecContext) {
			if _, found, _ := unstructured.NestedMap(mustCluster(ctx).Object, "spec", "backup"); found {
				Fail("the e2e cluster is created without a backup target; this spec assumes none")
			}
			backups := func(ctx context.Context) []unstructured.Unstructured {
				GinkgoHelper()
				list, err := kc.Dynamic.Resource(cnpgGVR("backups")).Namespace(ns).List(ctx, metav1.ListOptions{})
				Expect(err).NotTo(HaveOccurred())
				return list.Items
			}
			By("the default method needs the cluster's object store: refused, saying what to do")
			res, text := callResult(ctx, "create_backup", map[string]any{"cluster_name": name, "namespace": ns, "backup_name": "e2e-backup"})
			Expect(res.IsError).To(BeTrue())
			Expect(text).To(ContainSubstring("barmanObjectStore"))
			By("volume snapshots: the dry run goes through the operator's admission webhook, which refuses (no VolumeSnapshot CRD on kind)")
			res, text = callResult(ctx, "create_backup", map[string]any{"cluster_name": name, "namespace": ns, "backup_name": "e2e-backup", "method": "volumeSnapshot", "dry_run": true})
			Expect(res.IsError).To(BeTrue())
			Expect(text).To(ContainSubstring("VolumeSnapshot"))
			By("a CNPG-I plugin backup of a cluster without the plugin: refused (real plugin backups: backups_test.go)")
			res, text = callResult(ctx, "create_backup", map[string]any{"cluster_name": name, "namespace": ns, "backup_name": "e2e-backup",
				"method": "plugin", "plugin_name": "barman-cloud.cloudnative-pg.io", "dry_run": true})
			Expect(res.IsError).To(BeTrue())
			Expect(text).To(ContainSubstring("not enabled on cluster"))
			Expect(backups(ctx)).To(BeEmpty(), "neither a refusal nor a dry run creates a Backup")
			Expect(call(ctx, "list_backups", map[string]any{"cluster_name": name, "namespace": ns})).NotTo(ContainSubstring("e2e-backup"))
			res, text = callResult(ctx, "get_backup", map[string]any{"name": "e2e-backup", "namespace": ns})
			Expect(res.IsError).To(BeTrue(), "get_backup of a backup that does not exist")
			Expect(strings.ToLower(text)).To(ContainSubstring("not found"))

			By("a suspended ScheduledBackup: created, listed, resumed as a dry run, suspended again")
			sgvr := cnpgGVR("scheduledbackups")
			call(ctx, "create_scheduled_backup", map[string]any{"cluster_name": name, "name": "e2e-nightly", "schedule": "0 0 2 * * *", "suspend": true, "namespace": ns})
			sb, err := kc.Get(ctx, sgvr, ns, "e2e-nightly")
			Expect(err).NotTo(HaveOccurred())
			Expect(str(sb, "spec", "schedule")).To(Equal("0 0 2 * * *"))
			Expect(flag(sb, "spec", "suspend")).To(BeTrue())
			Expect(call(ctx, "list_scheduled_backups", map[string]any{"cluster_name": name, "namespace": ns})).To(ContainSubstring("e2e-nightly"))
			call(ctx, "resume_scheduled_backup", map[string]any{"name": "e2e-nightly", "namespace": ns, "dry_run": true})
			sb, err = kc.Get(ctx, sgvr, ns, "e2e-nightly")
			Expect(err).NotTo(HaveOccurred())
			Expect(flag(sb, "spec", "suspend")).To(BeTrue(), "a dry-run resume changes nothing")
			call(ctx, "suspend_scheduled_backup", map[string]any{"name": "e2e-nightly", "namespace": ns})
			sb, err = kc.Get(ctx, sgvr, ns, "e2e-nightly")
			Expect(err).NotTo(HaveOccurred())
			Expect(flag(sb, "spec", "suspend")).To(BeTrue())
			Expect(backups(ctx)).To(BeEmpty(), "a suspended schedule creates no Backup")
			Expect(kc.Dynamic.Resource(sgvr).Namespace(ns).Delete(ctx, "e2e-nightly", metav1.DeleteOptions{})).To(Succeed())
		}, SpecTimeout(3*time.Minute))
	}

	if !track.grow {
		It("creates, lists and deletes a PgBouncer pooler", func(ctx SpecContext) {
			// No PgBouncer image is built offline: the pooler runs zero pods, and the test checks what the
			// operator derives from it (the Deployment, the Service), which is the tool's effect.
			pooler := name + "-pooler-rw"
			call(ctx, "create_pooler", map[string]any{"cluster_name": name, "name": pooler, "type": "rw", "instances": 0, "pool_mode": "transaction", "namespace": ns})
			p, err := kc.Get(ctx, cnpgGVR("poolers"), ns, pooler)
			Expect(err).NotTo(HaveOccurred())
			Expect(str(p, "spec", "pgbouncer", "poolMode")).To(Equal("transaction"))
			Expect(kube.WaitFor(ctx, "the pooler's Deployment and Service", 2*time.Minute, func(ctx context.Context) (bool, string, error) {
				if _, err := kc.Typed.AppsV1().Deployments(ns).Get(ctx, pooler, metav1.GetOptions{}); err != nil {
					return false, "no Deployment yet", nil
				}
				_, err := kc.Typed.CoreV1().Services(ns).Get(ctx, pooler, metav1.GetOptions{})
				return err == nil, "no Service yet", nil
			})).To(Succeed())
			Expect(call(ctx, "list_poolers", map[string]any{"cluster_name": name, "namespace": ns})).To(ContainSubstring(pooler))

			call(ctx, "delete_pooler", map[string]any{"name": pooler, "confirm": true, "namespace": ns})
			Expect(kube.WaitFor(ctx, "pooler and its Deployment gone", 2*time.Minute, func(ctx context.Context) (bool, string, error) {
				_, perr := kc.Get(ctx, cnpgGVR("poolers"), ns, pooler)
				_, derr := kc.Typed.AppsV1().Deployments(ns).Get(ctx, pooler, metav1.GetOptions{})
				return apierrors.IsNotFound(perr) && apierrors.IsNotFound(derr), "still there", nil
			})).To(Succeed())
		}, SpecTimeout(5*time.Minute))
	}

	if !track.grow {
		It("reads the logs and a diagnosis", func(ctx SpecContext) {
			logs := call(ctx, "get_cluster_logs", map[string]any{"name": name, "namespace": ns, "tail_lines": 50})
			Expect(logs).To(ContainSubstring(primary(ctx)))
			Expect(logs).To(ContainSubstring(`"logger"`), "CloudNativePG logs are JSON lines")
			diag := call(ctx, "diagnose_postgres_cluster", map[string]any{"name": name, "namespace": ns})
			Expect(diag).To(ContainSubstring("Cluster in healthy state"))
			Expect(diag).To(ContainSubstring(replica(ctx)))
		}, SpecTimeout(2*time.Minute))
	}

	if !track.grow {
		It("says whose rights the tools use: the server's ServiceAccount, enough for every tool", func(ctx SpecContext) {
			p := structured(ctx, "get_my_permissions", map[string]any{"namespace": ns})
			Expect(p["impersonated"]).To(BeFalse(), "the default identity mode is service-account")
			Expect(p["user"]).To(HavePrefix("system:serviceaccount:"))
			Expect(p["usable_tools"]).To(ContainElements("list_postgres_clusters", "create_postgres_cluster", "get_my_permissions"))
			Expect(p["denied_tools"]).To(BeEmpty(), "the chart's generated RBAC covers every tool's calls")
		}, SpecTimeout(time.Minute))
	}

	if !track.grow {
		It("reports the storage and plans a resize (kind's local-path volumes cannot grow)", func(ctx SpecContext) {
			Expect(call(ctx, "get_cluster_resize_status", map[string]any{"name": name, "namespace": ns})).To(ContainSubstring("1Gi"))
			plan := structured(ctx, "resize_postgres_cluster", map[string]any{"name": name, "storage_size": "2Gi", "namespace": ns, "dry_run": true})
			Expect(plan["dry_run"]).To(BeTrue())
			Expect(str(mustCluster(ctx), "spec", "storage", "size")).To(Equal("1Gi"), "a dry run changes nothing")
		}, SpecTimeout(2*time.Minute))
	}

	if !track.grow {
		It("destroys a replica instance and the operator replaces it", func(ctx SpecContext) {
			r := replica(ctx)
			pvcUIDs := func(ctx context.Context) map[string]bool {
				GinkgoHelper()
				l, err := kc.Typed.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{LabelSelector: "cnpg.io/cluster=" + name})
				Expect(err).NotTo(HaveOccurred())
				uids := map[string]bool{}
				for _, p := range l.Items {
					uids[string(p.UID)] = true
				}
				return uids
			}
			l, err := kc.Typed.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{LabelSelector: "cnpg.io/instanceName=" + r})
			Expect(err).NotTo(HaveOccurred())
			Expect(l.Items).NotTo(BeEmpty())
			oldPod, err := kc.Typed.CoreV1().Pods(ns).Get(ctx, r, metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())

			sql(ctx, "checkpoint") // the replacement clones the primary too (see "scales to two instances")
			call(ctx, "delete_cluster_instance", map[string]any{"name": name, "instance": r, "confirm": true, "namespace": ns})
			// The operator creates a replacement instance on new volumes (it may reuse the instance name).
			Expect(kube.WaitFor(ctx, "a new instance in place of "+r, timeout, func(ctx context.Context) (bool, string, error) {
				var pods []string
				for _, p := range instancePods(ctx) {
					if p.UID == oldPod.UID {
						return false, "the old pod is still there", nil
					}
					pods = append(pods, p.Name)
				}
				uids := pvcUIDs(ctx)
				for _, old := range l.Items {
					if uids[string(old.UID)] {
						return false, "the old PVC " + old.Name + " is still there", nil
					}
				}
				return len(pods) == 2, fmt.Sprint(pods), nil
			})).To(Succeed())
			waitHealthy(ctx, 2)
			Expect(sql(ctx, "select count(*) from pg_stat_replication")).To(Equal("1"), "the new instance streams from the primary")
		}, SpecTimeout(timeout+time.Minute))
	}

	if track.grow {
		It("drops the database and the role in PostgreSQL", func(ctx SpecContext) {
			call(ctx, "delete_postgres_database", map[string]any{"cluster_name": name, "database_name": db, "confirm": true, "namespace": ns})
			waitSQL(ctx, "database "+db+" dropped", "select count(*) from pg_database where datname = '"+db+"'", "0")
			_, err := kc.Get(ctx, cnpgGVR("databases"), ns, name+"-"+db)
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "Database object: %v", err)

			call(ctx, "delete_postgres_role", map[string]any{"cluster_name": name, "role_name": role, "confirm": true, "namespace": ns})
			waitSQL(ctx, "role "+role+" dropped", "select count(*) from pg_roles where rolname = '"+role+"'", "0")
			_, err = kc.Typed.CoreV1().Secrets(ns).Get(ctx, "cnpg-"+name+"-user-"+role, metav1.GetOptions{})
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the role's password Secret goes with it: %v", err)
		}, SpecTimeout(5*time.Minute))
	}

	if !track.grow {
		It("hibernates the cluster and wakes it", func(ctx SpecContext) {
			sql(ctx, "create table e2e_marker (v int); insert into e2e_marker values (42)")
			call(ctx, "hibernate_postgres_cluster", map[string]any{"name": name, "state": "on", "confirm": true, "namespace": ns})
			Expect(annotation(ctx, "cnpg.io/hibernation")).To(Equal("on"))
			Expect(kube.WaitFor(ctx, "instances stopped", timeout, func(ctx context.Context) (bool, string, error) {
				n := len(instancePods(ctx))
				return n == 0, strconv.Itoa(n) + " instance pods", nil
			})).To(Succeed())
			pvcs, err := kc.Typed.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{LabelSelector: "cnpg.io/cluster=" + name})
			Expect(err).NotTo(HaveOccurred())
			Expect(pvcs.Items).NotTo(BeEmpty(), "hibernation keeps the volumes")

			call(ctx, "hibernate_postgres_cluster", map[string]any{"name": name, "state": "off", "namespace": ns})
			waitHealthy(ctx, 2)
			Expect(sql(ctx, "select v from e2e_marker")).To(Equal("42"), "the data survives hibernation")
		}, SpecTimeout(2*timeout))
	}

	It("deletes the cluster and the Secrets it created", func(ctx SpecContext) {
		if track.grow {
			_, err := kc.Typed.CoreV1().Secrets(ns).Get(ctx, "cnpg-"+name+"-user-reader", metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred(), "the reader role's Secret exists before the deletion")
		}
		call(ctx, "delete_postgres_cluster", map[string]any{"name": name, "confirm": true, "namespace": ns})
		Expect(kube.WaitFor(ctx, "cluster gone", 3*time.Minute, func(ctx context.Context) (bool, string, error) {
			_, err := cluster(ctx)
			if apierrors.IsNotFound(err) {
				return true, "", nil
			}
			return false, "still there", err
		})).To(Succeed())
		Expect(kube.WaitFor(ctx, "instance pods gone", 3*time.Minute, func(ctx context.Context) (bool, string, error) {
			n := len(instancePods(ctx))
			return n == 0, strconv.Itoa(n) + " instance pods", nil
		})).To(Succeed())
		if track.grow {
			_, err := kc.Typed.CoreV1().Secrets(ns).Get(ctx, "cnpg-"+name+"-user-reader", metav1.GetOptions{})
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the role password Secrets this server created go with the cluster: %v", err)
		}
	}, SpecTimeout(4*time.Minute))

	// Recorded even when a spec failed: the last check then names what was not called.
	AfterAll(func(ctx SpecContext) {
		if mc == nil {
			return
		}
		res, err := mc.ListTools(ctx, mcp.ListToolsRequest{})
		Expect(err).NotTo(HaveOccurred())
		r := toolsRecord{Called: called}
		for _, t := range res.Tools {
			r.Listed = append(r.Listed, t.Name)
		}
		b, err := json.Marshal(r)
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(toolsRecordPath(track), b, 0o600)).To(Succeed())
	}, NodeTimeout(time.Minute))
}
