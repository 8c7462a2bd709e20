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
	"k8s.io/apimachinery/pkg/types"

	"github.com/cnpg-mcp/cnpg-mcp/e2e/kube"
	"github.com/cnpg-mcp/cnpg-mcp/e2e/mcpauth"
	"github.com/cnpg-mcp/cnpg-mcp/e2e/objstore"
)

// Backups that restore: a real S3-compatible object store (versitygw) and the Barman Cloud plugin on
// the kind cluster; base backups and WAL archiving through the MCP tools; a point-in-time restore to a
// noted time, checked row by row in PostgreSQL; scheduled backups; the recoverability window; a broken
// object-store credential found by diagnose. Every wait on Kubernetes objects is a watch with a bound.
// backupSpecTools are the tools only this spec calls (the tools spec's "called every tool" counts them).
var backupSpecTools = map[string]bool{"restore_postgres_cluster": true, "get_cluster_recoverability": true}

var _ = Describe("backups and point-in-time recovery through the MCP tools", Ordered, Label("backups"), SpecPriority(90), func() {
	const (
		ns       = "e2e-backups"
		source   = "bk"
		restored = "bk-restored"
		store    = "store"
		timeout  = 10 * time.Minute
	)
	var (
		mc         *client.Client
		targetTime string
		backupID   string
		backupName string
	)
	call := func(ctx context.Context, tool string, args map[string]any) (map[string]any, string) {
		GinkgoHelper()
		res, err := mc.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: tool, Arguments: args}})
		Expect(err).NotTo(HaveOccurred(), "tool %s", tool)
		var text strings.Builder
		for _, c := range res.Content {
			if t, ok := c.(mcp.TextContent); ok {
				text.WriteString(t.Text)
			}
		}
		fmt.Fprintf(logw, "tool %s(%v): error=%t %.600s\n", tool, args, res.IsError, text.String())
		Expect(res.IsError).To(BeFalse(), "tool %s answered an error: %s", tool, text.String())
		b, err := json.Marshal(res.StructuredContent)
		Expect(err).NotTo(HaveOccurred())
		var m map[string]any
		Expect(json.Unmarshal(b, &m)).To(Succeed())
		return m, text.String()
	}
	str := func(o *unstructured.Unstructured, path ...string) string {
		s, _, _ := unstructured.NestedString(o.Object, path...)
		return s
	}
	condition := func(o *unstructured.Unstructured, typ string) string {
		conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok && m["type"] == typ {
				s, _ := m["status"].(string)
				return s
			}
		}
		return ""
	}
	watchHealthy := func(ctx context.Context, name string, d time.Duration) {
		GinkgoHelper()
		Expect(kc.WatchFor(ctx, clusterGVR, ns, name, d, func(o *unstructured.Unstructured) (bool, string) {
			if o == nil {
				return false, "absent"
			}
			phase := str(o, "status", "phase")
			ready, _, _ := unstructured.NestedInt64(o.Object, "status", "readyInstances")
			return phase == "Cluster in healthy state" && ready >= 1, fmt.Sprintf("%s (%d ready)", phase, ready)
		})).To(Succeed())
	}
	psql := func(ctx context.Context, cluster, query string) string {
		GinkgoHelper()
		o, err := kc.Get(ctx, clusterGVR, ns, cluster)
		Expect(err).NotTo(HaveOccurred())
		out, err := kc.Exec(ctx, ns, str(o, "status", "currentPrimary"), "postgres", "psql", "-XAt", "-c", query)
		Expect(err).NotTo(HaveOccurred(), "psql on %s: %s", cluster, query)
		return strings.TrimSpace(out)
	}
	// watchBackup waits for a Backup to complete (a failed backup fails the spec at once).
	watchBackup := func(ctx context.Context, name string) *unstructured.Unstructured {
		GinkgoHelper()
		var done *unstructured.Unstructured
		Expect(kc.WatchFor(ctx, cnpgGVR("backups"), ns, name, timeout, func(o *unstructured.Unstructured) (bool, string) {
			if o == nil {
				return false, "absent"
			}
			phase := str(o, "status", "phase")
			Expect(phase).NotTo(Equal("failed"), "backup %s failed: %s", name, str(o, "status", "error"))
			done = o
			return phase == "completed", phase
		})).To(Succeed())
		return done
	}

	BeforeAll(func(ctx SpecContext) {
		if cfg.PluginManifest == "" {
			Fail("E2E_PLUGIN_MANIFEST is not set: run through `make e2e` (it passes the Barman Cloud plugin's manifest)")
		}
		requireImage(cfg.ObjStoreImage, "make objectstore-image (or make offline-images)")

		By("loading the object store and Barman Cloud plugin images (process 1 started it during the setup)")
		imgs := []string{cfg.ObjStoreImage}
		for _, img := range []string{cfg.PluginImage, cfg.PluginSidecarImage} {
			if img != "" {
				requireImage(img, "make offline-images")
				imgs = append(imgs, img)
			}
		}
		start := time.Now()
		onceAcrossProcesses(ctx, backupImagesKey, func() {
			if b, err := os.ReadFile(filepath.Join(shared.Dir, backupImagesKey+".failed")); err == nil {
				fmt.Fprintf(logw, "loading the backup images in the background failed (%s); loading them here\n", b)
			}
			Expect(kind.LoadImages(ctx, imgs...)).To(Succeed())
		})
		AddReportEntry("backup-images-wait", time.Since(start).Round(time.Second).String())

		By("installing the Barman Cloud plugin " + cfg.PluginVersion + " with its TLS certificates (no cert-manager)")
		start = time.Now()
		secrets, err := objstore.TLSSecrets()
		Expect(err).NotTo(HaveOccurred())
		for _, s := range secrets {
			// keep existing certificates on a reused cluster: the running plugin holds them
			if _, err := kc.Typed.CoreV1().Secrets(objstore.PluginNamespace).Get(ctx, s.GetName(), metav1.GetOptions{}); apierrors.IsNotFound(err) {
				Expect(kc.Apply(ctx, objstore.PluginNamespace, s)).To(Succeed())
			}
		}
		objs, err := objstore.PluginManifest(cfg.PluginManifest, cfg.PluginVersion, cfg.PluginImage, cfg.PluginSidecarImage)
		Expect(err).NotTo(HaveOccurred())
		Expect(kc.Apply(ctx, objstore.PluginNamespace, objs...)).To(Succeed())
		Expect(kc.WaitDeploymentAvailable(ctx, objstore.PluginNamespace, objstore.PluginDeployment, 5*time.Minute)).To(Succeed())
		AddReportEntry("barman-cloud-plugin-install", time.Since(start).Round(time.Second).String())

		By("starting the S3-compatible object store (versitygw) with its credentials in a Secret")
		start = time.Now()
		_, err = kc.Typed.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			Fail(err.Error())
		}
		Expect(kc.Apply(ctx, ns, objstore.Store(ns, cfg.ObjStoreImage, "e2e-access-key", "e2e-secret-key-0123456789")...)).To(Succeed())
		Expect(kc.WaitDeploymentAvailable(ctx, ns, objstore.StoreName, 3*time.Minute)).To(Succeed())
		AddReportEntry("object-store-ready", time.Since(start).Round(time.Second).String())

		By("creating a cluster that archives WAL and takes base backups through the plugin")
		start = time.Now()
		spec := map[string]any{"instances": int64(1), "storage": map[string]any{"size": "1Gi"},
			"plugins": []any{map[string]any{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": true, "parameters": map[string]any{"barmanObjectName": store}}}}
		if cfg.PGImage != "" {
			spec["imageName"], spec["imagePullPolicy"] = cfg.PGImage, "IfNotPresent"
		}
		Expect(kc.Apply(ctx, ns, objstore.ObjectStore(ns, store), &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": map[string]any{"name": source, "namespace": ns}, "spec": spec,
		}})).To(Succeed())
		watchHealthy(ctx, source, timeout)
		Expect(kc.WatchFor(ctx, clusterGVR, ns, source, 5*time.Minute, func(o *unstructured.Unstructured) (bool, string) {
			s := condition(o, "ContinuousArchiving")
			return s == "True", "ContinuousArchiving=" + s
		})).To(Succeed())
		AddReportEntry("backup-cluster-archiving", time.Since(start).Round(time.Second).String())

		By("getting a token as a user would, and an MCP client")
		ensureServer(ctx) // after the object store and the cluster: other processes may be installing it meanwhile
		tok, err := mcpauth.Authorize(ctx, mcpauth.Options{
			PublicURL: publicURL, Resource: publicURL + "/mcp", Scope: "mcp:read mcp:write",
			Username: "dev@example.com", Password: "dev-password", Chromium: chromium(),
		})
		Expect(err).NotTo(HaveOccurred())
		mc, err = client.NewStreamableHttpClient(publicURL+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok.AccessToken}))
		Expect(err).NotTo(HaveOccurred())
		Expect(mc.Start(ctx)).To(Succeed())
		DeferCleanup(func() { _ = mc.Close() })
		_, err = mc.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
			ProtocolVersion: "2025-06-18", ClientInfo: mcp.Implementation{Name: "cnpg-mcp-e2e-backups", Version: "dev"},
		}})
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(20*time.Minute))

	It("restores to a noted time: the restored cluster has exactly the rows committed before it", func(ctx SpecContext) {
		By("writing the first rows and taking a base backup through create_backup")
		psql(ctx, source, "create table pitr (id int primary key, batch int not null, at timestamptz not null default clock_timestamp())")
		psql(ctx, source, "insert into pitr (id, batch) select g, 1 from generate_series(1, 100) g")
		plan, _ := call(ctx, "create_backup", map[string]any{"cluster_name": source, "namespace": ns, "dry_run": true})
		obj := plan["object"].(map[string]any)
		Expect(obj["spec"]).To(HaveKeyWithValue("method", "plugin"), "the method defaults to the cluster's plugin")
		Expect(obj["spec"]).To(HaveKeyWithValue("pluginConfiguration", HaveKeyWithValue("name", "barman-cloud.cloudnative-pg.io")))
		backupName = source + "-base"
		start := time.Now()
		call(ctx, "create_backup", map[string]any{"cluster_name": source, "namespace": ns, "backup_name": backupName, "immediate_checkpoint": true})
		b := watchBackup(ctx, backupName)
		backupID = str(b, "status", "backupId")
		Expect(backupID).NotTo(BeEmpty())
		AddReportEntry("pitr-base-backup", fmt.Sprintf("%s (ID %s) completed in %s", backupName, backupID, time.Since(start).Round(time.Second)))
		got, _ := call(ctx, "get_backup", map[string]any{"name": backupName, "namespace": ns})
		Expect(got["phase"]).To(Equal("completed"))

		By("writing more rows, noting the time, writing again")
		psql(ctx, source, "insert into pitr (id, batch) select g, 2 from generate_series(101, 150) g")
		targetTime = psql(ctx, source, "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
		psql(ctx, source, "insert into pitr (id, batch) select g, 3 from generate_series(151, 180) g")
		Expect(psql(ctx, source, "select count(*) from pitr")).To(Equal("180"))
		Expect(psql(ctx, source, "select count(*) from pitr where at <= '"+targetTime+"'")).To(Equal("150"), "rows committed before the noted time")
		// close the WAL segment holding the last commit so it is archived now, not at archive_timeout
		segment := psql(ctx, source, "select pg_walfile_name(pg_switch_wal())")

		By("waiting until the recoverability window covers the noted time")
		tt, err := time.Parse(time.RFC3339Nano, targetTime)
		Expect(err).NotTo(HaveOccurred())
		// the last archived WAL time lives in the instance manager's report, not in a Kubernetes
		// object: this one wait polls the tool (bounded), as an assistant would
		var window map[string]any
		Expect(kube.WaitFor(ctx, "WAL segment "+segment+" archived", 3*time.Minute, func(ctx context.Context) (bool, string, error) {
			rec, _ := call(ctx, "get_cluster_recoverability", map[string]any{"name": source, "namespace": ns})
			window = rec["window"].(map[string]any)
			wal, _ := rec["wal_archiving"].(map[string]any)["last_archived_wal"].(string)
			last, _ := window["last_archived_wal_time"].(string)
			t, err := time.Parse(time.RFC3339Nano, last)
			return err == nil && t.After(tt) && wal >= segment, fmt.Sprintf("last archived WAL %s at %s", wal, last), nil
		})).To(Succeed())
		first, err := time.Parse(time.RFC3339, window["first_recoverability_point"].(string))
		Expect(err).NotTo(HaveOccurred(), "the window has a first recoverability point: %v", window)
		Expect(first.Before(tt)).To(BeTrue(), "first recoverability point %s before the target %s", first, targetTime)

		By("restoring to the noted time through restore_postgres_cluster (dry run first)")
		args := map[string]any{"name": restored, "namespace": ns, "source_cluster": source, "target_time": targetTime}
		args["dry_run"] = true
		dry, dryText := call(ctx, "restore_postgres_cluster", args)
		Expect(dryText).To(ContainSubstring("DRY RUN"))
		spec := dry["object"].(map[string]any)["spec"].(map[string]any)
		rec := spec["bootstrap"].(map[string]any)["recovery"].(map[string]any)
		Expect(rec["source"]).To(Equal("origin"))
		Expect(rec["recoveryTarget"]).To(HaveKeyWithValue("targetTime", tt.UTC().Format(time.RFC3339Nano)))
		Expect(spec["externalClusters"]).To(ContainElement(HaveKeyWithValue("plugin", HaveKeyWithValue("parameters", And(
			HaveKeyWithValue("barmanObjectName", store), HaveKeyWithValue("serverName", source))))))
		Expect(dry["window"]).To(HaveKey("first_recoverability_point"))
		_, err = kc.Get(ctx, clusterGVR, ns, restored)
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a dry run creates nothing: %v", err)

		args["dry_run"] = false
		start = time.Now()
		call(ctx, "restore_postgres_cluster", args)
		watchHealthy(ctx, restored, timeout)
		AddReportEntry("pitr-restore-healthy", time.Since(start).Round(time.Second).String())

		By("checking the restored rows in PostgreSQL")
		after := psql(ctx, restored, "select count(*) || ' rows, batches ' || string_agg(distinct batch::text, ',') || ', max id ' || max(id) from pitr")
		before := psql(ctx, source, "select count(*) || ' rows, batches ' || string_agg(distinct batch::text, ',') || ', max id ' || max(id) from pitr")
		evidence := fmt.Sprintf("source: %s; target time %s; base backup %s (ID %s); restored: %s", before, targetTime, backupName, backupID, after)
		fmt.Fprintln(logw, "PITR evidence:", evidence)
		AddReportEntry("pitr-evidence", evidence)
		Expect(before).To(Equal("180 rows, batches 1,2,3, max id 180"))
		Expect(after).To(Equal("150 rows, batches 1,2, max id 150"))
	}, SpecTimeout(30*time.Minute))

	It("takes scheduled backups that complete, and reports the recoverability window", func(ctx SpecContext) {
		// every 30 s (the seconds field of CloudNativePG's six-field schedule) and one at once: two
		// complete within about a minute, a base backup here taking 10–15 s
		const sched = "bk-every-30s"
		call(ctx, "create_scheduled_backup", map[string]any{"cluster_name": source, "name": sched, "namespace": ns,
			"schedule": "*/30 * * * * *", "immediate": true, "backup_owner_reference": "self"})
		start := time.Now()
		var names []string
		Expect(kc.WatchList(ctx, cnpgGVR("backups"), ns, "cnpg.io/scheduled-backup="+sched, 5*time.Minute, "two completed scheduled backups",
			func(items []*unstructured.Unstructured) (bool, string) {
				names = names[:0]
				var phases []string
				for _, b := range items {
					phases = append(phases, b.GetName()+"="+str(b, "status", "phase"))
					Expect(str(b, "status", "phase")).NotTo(Equal("failed"), "scheduled backup %s failed: %s", b.GetName(), str(b, "status", "error"))
					if str(b, "status", "phase") == "completed" {
						names = append(names, b.GetName())
					}
				}
				return len(names) >= 2, strings.Join(phases, " ")
			})).To(Succeed())
		AddReportEntry("scheduled-backups-completed", fmt.Sprintf("%s in %s", strings.Join(names, ", "), time.Since(start).Round(time.Second)))
		call(ctx, "suspend_scheduled_backup", map[string]any{"name": sched, "namespace": ns})

		rec, text := call(ctx, "get_cluster_recoverability", map[string]any{"name": source, "namespace": ns})
		w := rec["window"].(map[string]any)
		Expect(rec["backup_method"]).To(Equal("plugin"))
		Expect(w["source"]).To(ContainSubstring("ObjectStore"))
		Expect(w["completed_backups"]).To(BeNumerically(">=", 3))
		Expect(w).To(HaveKey("first_recoverability_point"))
		Expect(w).To(HaveKey("last_successful_backup_time"))
		Expect(rec["wal_archiving"]).To(HaveKeyWithValue("state", "ok"))
		Expect(text).To(ContainSubstring("first recoverability point"))
		AddReportEntry("recoverability-window", fmt.Sprintf("first %v, last backup %v, last archived WAL %v", w["first_recoverability_point"], w["last_successful_backup_time"], w["last_archived_wal_time"]))

		st, _ := call(ctx, "get_cluster_status", map[string]any{"name": source, "namespace": ns, "detail_level": "detailed"})
		hs := st["instances_health"].([]any)
		Expect(hs).To(HaveLen(1))
		h := hs[0].(map[string]any)
		Expect(h["role"]).To(Equal("primary"))
		Expect(h).To(HaveKey("connections"))
		Expect(h).To(HaveKey("max_connections"))
		Expect(h).To(HaveKey("xid_wraparound_distance"))
		Expect(h["wal_archiving_failing"]).To(BeFalse())
		if dir := os.Getenv("E2E_CAPTURE_DIR"); dir != "" {
			captureInstanceReports(ctx, dir, ns, str(must(kc.Get(ctx, clusterGVR, ns, source)), "status", "currentPrimary"))
		}
	}, SpecTimeout(15*time.Minute))

	It("finds a broken object-store credential in diagnose", func(ctx SpecContext) {
		d, _ := call(ctx, "diagnose_postgres_cluster", map[string]any{"name": source, "namespace": ns, "log_lines": 0})
		Expect(fmt.Sprint(d["findings"])).NotTo(ContainSubstring("WAL archiving is failing"))

		By("breaking the secret key the plugin signs requests with")
		patch := fmt.Sprintf(`{"stringData":{%q:"wrong-secret-key"}}`, objstore.SecretKeyKey)
		_, err := kc.Typed.CoreV1().Secrets(ns).Patch(ctx, objstore.CredsSecret, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		Expect(err).NotTo(HaveOccurred())

		By("waiting for diagnose to report the archiving failure, giving the plugin WAL to archive")
		// The plugin's instance sidecar caches the Secret for 10 s (plugin-barman-cloud's
		// DefaultTTLSeconds), so a segment switched right after the patch is still archived with the
		// old key; the next one waits for archive_timeout (5 min). Switch a segment with new rows
		// every 15 s until the failure shows, as a busy database would.
		start := time.Now()
		var lastSwitch time.Time
		id := 1000
		var finding map[string]any
		Expect(kube.WaitFor(ctx, "diagnose reports failing WAL archiving", 5*time.Minute, func(ctx context.Context) (bool, string, error) {
			if time.Since(lastSwitch) >= 15*time.Second {
				psql(ctx, source, fmt.Sprintf("insert into pitr (id, batch) select g, 4 from generate_series(%d, %d) g", id+1, id+10))
				psql(ctx, source, "select pg_switch_wal()")
				id, lastSwitch = id+10, time.Now()
			}
			d, _ := call(ctx, "diagnose_postgres_cluster", map[string]any{"name": source, "namespace": ns, "log_lines": 0})
			hf, _ := d["health_findings"].([]any)
			for _, f := range hf {
				m := f.(map[string]any)
				if strings.Contains(fmt.Sprint(m["problem"]), "WAL archiving is failing") {
					finding = m
					return true, "", nil
				}
			}
			return false, fmt.Sprint(d["findings"]), nil
		})).To(Succeed())
		Expect(finding["severity"]).To(Equal("critical"))
		Expect(finding["next_tool"]).To(Equal("get_cluster_recoverability"))
		// it sends the operator to the ObjectStore and the Secret key that was broken
		Expect(finding["problem"]).To(And(ContainSubstring("check ObjectStore "+ns+"/"+store),
			ContainSubstring(fmt.Sprintf("Secret %s key %s (secretAccessKey)", objstore.CredsSecret, objstore.SecretKeyKey))))
		AddReportEntry("broken-credential-finding", fmt.Sprintf("after %s: %v", time.Since(start).Round(time.Second), finding["problem"]))
		if dir := os.Getenv("E2E_CAPTURE_DIR"); dir != "" {
			captureInstanceReports(ctx, dir+"/archiving-failing", ns, str(must(kc.Get(ctx, clusterGVR, ns, source)), "status", "currentPrimary"))
		}
		rec, _ := call(ctx, "get_cluster_recoverability", map[string]any{"name": source, "namespace": ns})
		Expect(rec["wal_archiving"]).To(HaveKeyWithValue("state", "failing"))
	}, SpecTimeout(10*time.Minute))
})

func must[T any](v T, err error) T {
	GinkgoHelper()
	Expect(err).NotTo(HaveOccurred())
	return v
}

// captureInstanceReports records the instance manager's real /pg/status and /metrics through the
// API server (as the tools read them) into dir, for the parser tests' test data
// (server/tools/testdata). Run with E2E_CAPTURE_DIR set.
func captureInstanceReports(ctx context.Context, dir, ns, pod string) {
	GinkgoHelper()
	p, err := kc.Typed.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	scheme := "http"
	for _, c := range p.Spec.Containers {
		if c.Name == "postgres" && strings.Contains(strings.Join(c.Command, " "), "--status-port-tls") {
			scheme = "https"
		}
	}
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	for file, req := range map[string][3]string{
		"pg-status.json": {scheme, "8000", "/pg/status"},
		"metrics.txt":    {"http", "9187", "/metrics"},
	} {
		port, _ := strconv.Atoi(req[1])
		b, err := kc.Typed.CoreV1().Pods(ns).ProxyGet(req[0], pod, strconv.Itoa(port), req[2], nil).DoRaw(ctx)
		Expect(err).NotTo(HaveOccurred(), "capture %s", file)
		Expect(os.WriteFile(dir+"/"+file, b, 0o644)).To(Succeed())
	}
	fmt.Fprintf(logw, "captured the instance manager's reports of %s into %s\n", pod, dir)
}
