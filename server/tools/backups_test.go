package tools_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
)

// fakeReports answers the instance-manager reads with recorded reports (testdata) per pod.
type fakeReports struct {
	status, metrics map[string][]byte
}

func (f fakeReports) Status(_ context.Context, p *corev1.Pod) ([]byte, error) {
	if b, ok := f.status[p.Name]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("no status recorded for %s", p.Name)
}

func (f fakeReports) Metrics(_ context.Context, p *corev1.Pod, _ bool) ([]byte, error) {
	if b, ok := f.metrics[p.Name]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("no metrics recorded for %s", p.Name)
}

func testdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "instance-manager", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// failingReports: pg-1 primary with failing archiving (last archived 02:50:01, failed 03:01:02), pg-2 replica.
func failingReports(t *testing.T) fakeReports {
	return fakeReports{
		status:  map[string][]byte{"pg-1": testdata(t, "synthetic-primary-status.json"), "pg-2": testdata(t, "synthetic-replica-status.json")},
		metrics: map[string][]byte{"pg-1": testdata(t, "synthetic-primary-metrics.txt"), "pg-2": testdata(t, "synthetic-replica-metrics.txt")},
	}
}

// okReports: the primary archived its last WAL at archived and has failed never.
func okReports(archived string) fakeReports {
	return fakeReports{status: map[string][]byte{"pg-1": fmt.Appendf(nil,
		`{"currentLsn":"0/9000060","isPrimary":true,"lastArchivedWAL":"000000010000000000000008","lastArchivedWALTime":%q,"readyWalFiles":0,"timeLineID":1}`, archived)}}
}

const barmanPlugin = "barman-cloud.cloudnative-pg.io"

// pluginCluster makes cluster name back up through the Barman Cloud plugin into ObjectStore store.
func (h *harness) pluginCluster(name, store string, instances int) *cnpgv1.Cluster {
	h.t.Helper()
	cl := h.cluster(name, instances, nil)
	cl.Spec.Plugins = []cnpgv1.PluginConfiguration{{Name: barmanPlugin, IsWALArchiver: ptr.To(true), Parameters: map[string]string{"barmanObjectName": store}}}
	cl.Spec.ImageName = "postgresql:17.6"
	if err := admin.Client.Update(context.Background(), cl); err != nil {
		h.t.Fatal(err)
	}
	cl.Status.Conditions = []metav1.Condition{{Type: "ContinuousArchiving", Status: metav1.ConditionTrue, Reason: "ContinuousArchivingSuccess", LastTransitionTime: metav1.Now()}}
	h.operatorStatus(cl)
	return cl
}

// objectStore creates the plugin's ObjectStore with a recovery window for server (as the plugin writes it).
func (h *harness) objectStore(name, server string, first, last time.Time) {
	h.t.Helper()
	ctx := context.Background()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "barmancloud.cnpg.io/v1", "kind": "ObjectStore", "metadata": map[string]any{"name": name, "namespace": h.ns},
		"spec": map[string]any{"configuration": map[string]any{"destinationPath": "s3://backups/", "endpointURL": "http://s3:7070",
			"s3Credentials": map[string]any{"accessKeyId": map[string]any{"name": "s3", "key": "a"}, "secretAccessKey": map[string]any{"name": "s3", "key": "s"}}}},
	}}
	if err := admin.Client.Create(ctx, u); err != nil {
		h.t.Fatal(err)
	}
	if !first.IsZero() {
		_ = unstructured.SetNestedField(u.Object, map[string]any{server: map[string]any{
			"firstRecoverabilityPoint": first.UTC().Format(time.RFC3339), "lastSuccessfulBackupTime": last.UTC().Format(time.RFC3339)}}, "status", "serverRecoveryWindow")
		if err := admin.Client.Status().Update(ctx, u); err != nil {
			h.t.Fatal(err)
		}
	}
}

// completedBackup creates a Backup of cluster as the operator leaves it when done.
func (h *harness) completedBackup(name, cluster string, method cnpgv1.BackupMethod, stopped time.Time, id string) {
	h.t.Helper()
	ctx := context.Background()
	b := &cnpgv1.Backup{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns}, Spec: cnpgv1.BackupSpec{Cluster: cnpgv1.LocalObjectReference{Name: cluster}, Method: method}}
	if method == cnpgv1.BackupMethodPlugin {
		b.Spec.PluginConfiguration = &cnpgv1.BackupPluginConfiguration{Name: barmanPlugin}
	}
	if err := admin.Client.Create(ctx, b); err != nil {
		h.t.Fatal(err)
	}
	b.Status = cnpgv1.BackupStatus{Phase: cnpgv1.BackupPhaseCompleted, BackupID: id, Method: method,
		StartedAt: &metav1.Time{Time: stopped.Add(-time.Minute)}, StoppedAt: &metav1.Time{Time: stopped}, BeginLSN: "0/2000028", EndLSN: "0/2000138"}
	if err := admin.Client.Status().Update(ctx, b); err != nil {
		h.t.Fatal(err)
	}
}

func TestRecoverabilityFromObjectStore(t *testing.T) {
	first, last := fixedNow.Add(-2*time.Hour), fixedNow.Add(-time.Hour)
	h := newHarness(t, hopt{instances: okReports(fixedNow.Add(-30 * time.Second).Format(time.RFC3339Nano))})
	h.pluginCluster("pg", "store", 1)
	h.pod("pg", "pg-1", false)
	h.objectStore("store", "pg", first, last)
	h.completedBackup("pg-b1", "pg", cnpgv1.BackupMethodPlugin, last, "20261127T010405")

	m := h.ok("get_cluster_recoverability", map[string]any{"name": "pg"})
	w := m["window"].(map[string]any)
	if m["backup_method"] != "plugin" || m["object_store"] != "store" || m["server_name"] != "pg" {
		t.Fatalf("configuration %v", m)
	}
	if w["first_recoverability_point"] != first.Format(time.RFC3339) || w["last_successful_backup_time"] != last.Format(time.RFC3339) {
		t.Fatalf("window %v, want the ObjectStore's status (first %s, last %s)", w, first, last)
	}
	if !strings.Contains(w["source"].(string), "ObjectStore") {
		t.Fatalf("window source %v", w["source"])
	}
	if lb := w["last_successful_backup"].(map[string]any); lb["name"] != "pg-b1" || lb["backup_id"] != "20261127T010405" {
		t.Fatalf("last backup %v", lb)
	}
	a := m["wal_archiving"].(map[string]any)
	if a["state"] != "ok" || a["last_archived_wal"] != "000000010000000000000008" || a["lag_seconds"] != 30.0 {
		t.Fatalf("archiving %v", a)
	}
}

func TestRecoverabilityInTreeAndFailing(t *testing.T) {
	h := newHarness(t, hopt{instances: failingReports(t)})
	cl := h.cluster("pg", 2, nil)
	cl.Spec.Backup = &cnpgv1.BackupConfiguration{BarmanObjectStore: &cnpgv1.BarmanObjectStoreConfiguration{DestinationPath: "s3://b/"}}
	if err := admin.Client.Update(context.Background(), cl); err != nil {
		t.Fatal(err)
	}
	h.pod("pg", "pg-1", false)
	h.pod("pg", "pg-2", false)
	old, newer := fixedNow.Add(-48*time.Hour), fixedNow.Add(-3*time.Hour)
	h.completedBackup("pg-new", "pg", cnpgv1.BackupMethodBarmanObjectStore, newer, "new")
	h.completedBackup("pg-old", "pg", cnpgv1.BackupMethodBarmanObjectStore, old, "old")

	m := h.ok("get_cluster_recoverability", map[string]any{"name": "pg"})
	w := m["window"].(map[string]any)
	if w["first_recoverability_point"] != old.Format(time.RFC3339) || w["last_successful_backup_time"] != newer.Format(time.RFC3339) || w["completed_backups"] != 2.0 {
		t.Fatalf("in-tree window from the Backup objects: %v", w)
	}
	if a := m["wal_archiving"].(map[string]any); a["state"] != "failing" || a["last_failed_wal"] != "000000010000000000000008" {
		t.Fatalf("archiving %v, want failing (the primary's last failed WAL is newer than its last archived)", a)
	}

	d := h.ok("diagnose_postgres_cluster", map[string]any{"name": "pg", "log_lines": 0})
	found := false
	for _, f := range d["health_findings"].([]any) {
		f := f.(map[string]any)
		if strings.Contains(f["problem"].(string), "WAL archiving is failing") {
			found = f["severity"] == "critical" && f["next_tool"] == "get_cluster_recoverability" && f["instance"] == "pg-1"
		}
	}
	if !found {
		t.Fatalf("diagnose has no critical archiving finding: %v", d["health_findings"])
	}
	st := h.ok("get_cluster_status", map[string]any{"name": "pg", "detail_level": "detailed"})
	hs := st["instances_health"].([]any)
	if len(hs) != 2 || hs[1].(map[string]any)["role"] != "replica" || hs[1].(map[string]any)["replication_lag_bytes"] != float64(0x2000060) {
		t.Fatalf("instances health %v", hs)
	}
	if _, ok := st["last_successful_backup"]; ok {
		t.Fatal("get_cluster_status still reports the deprecated status.lastSuccessfulBackup")
	}
}

func TestRestoreDryRunIsTheExactCluster(t *testing.T) {
	first := fixedNow.Add(-2 * time.Hour)
	h := newHarness(t, hopt{instances: okReports(fixedNow.Add(-time.Minute).Format(time.RFC3339Nano))})
	h.pluginCluster("pg", "store", 1)
	h.pod("pg", "pg-1", false)
	h.objectStore("store", "pg", first, first)
	target := fixedNow.Add(-10 * time.Minute)

	m := h.ok("restore_postgres_cluster", map[string]any{"name": "pg-r", "source_cluster": "pg", "target_time": target.Format(time.RFC3339), "dry_run": true})
	spec := m["object"].(map[string]any)["spec"].(map[string]any)
	rec := spec["bootstrap"].(map[string]any)["recovery"].(map[string]any)
	if rec["source"] != "origin" || rec["recoveryTarget"].(map[string]any)["targetTime"] != target.Format(time.RFC3339Nano) {
		t.Fatalf("recovery %v", rec)
	}
	ext := spec["externalClusters"].([]any)[0].(map[string]any)
	plugin := ext["plugin"].(map[string]any)
	if ext["name"] != "origin" || plugin["name"] != barmanPlugin || plugin["parameters"].(map[string]any)["barmanObjectName"] != "store" || plugin["parameters"].(map[string]any)["serverName"] != "pg" {
		t.Fatalf("external cluster %v", ext)
	}
	if spec["imageName"] != "postgresql:17.6" || spec["instances"] != 1.0 || spec["storage"].(map[string]any)["size"] != "1Gi" {
		t.Fatalf("the restored cluster takes the source's image and storage: %v", spec)
	}
	if w := m["window"].(map[string]any); w["first_recoverability_point"] != first.Format(time.RFC3339) || w["last_archived_wal_time"] == nil {
		t.Fatalf("window checked %v", w)
	}
	if h.exists(&cnpgv1.Cluster{}, "pg-r") {
		t.Fatal("a dry run created the cluster")
	}
	h.ok("restore_postgres_cluster", map[string]any{"name": "pg-r", "source_cluster": "pg", "target_time": target.Format(time.RFC3339)})
	got := h.getCluster("pg-r")
	if got.Spec.Bootstrap.Recovery.RecoveryTarget.TargetTime != target.Format(time.RFC3339Nano) || got.Labels[tools.LabelManagedBy] != tools.ManagedByValue {
		t.Fatalf("created %+v", got.Spec.Bootstrap.Recovery)
	}
	if audit := h.auditLines(); !strings.Contains(fmt.Sprint(audit), "restore_postgres_cluster") {
		t.Fatalf("no audit line for the restore: %v", audit)
	}
}

func TestRestoreRefusesTargetsOutsideTheWindow(t *testing.T) {
	first := fixedNow.Add(-2 * time.Hour)
	archived := fixedNow.Add(-5 * time.Minute)
	h := newHarness(t, hopt{instances: okReports(archived.Format(time.RFC3339Nano))})
	h.pluginCluster("pg", "store", 1)
	h.pod("pg", "pg-1", false)
	h.objectStore("store", "pg", first, first)
	h.cluster("nobackup", 1, nil)
	args := func(kv ...any) map[string]any {
		m := map[string]any{"name": "pg-r"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	h.fails("restore_postgres_cluster", args("source_cluster", "pg", "target_time", first.Add(-time.Second).Format(time.RFC3339)), "before the first recoverability point", first.Format(time.RFC3339))
	h.fails("restore_postgres_cluster", args("source_cluster", "pg", "target_time", archived.Add(time.Second).Format(time.RFC3339)), "after the last archived WAL")
	h.fails("restore_postgres_cluster", args("source_cluster", "pg", "target_time", fixedNow.Add(time.Hour).Format(time.RFC3339)), "in the future")
	h.fails("restore_postgres_cluster", args("source_cluster", "pg", "target_time", "yesterday at ten"), "RFC 3339")
	h.fails("restore_postgres_cluster", args("source_cluster", "pg", "target_lsn", "0/ZZ"), "WAL location")
	h.fails("restore_postgres_cluster", args("source_cluster", "pg", "target_time", first.Format(time.RFC3339), "target_lsn", "0/3000060"), "at most one recovery target")
	h.fails("restore_postgres_cluster", args("source_cluster", "pg", "backup_name", "x"), "exactly one source")
	h.fails("restore_postgres_cluster", args(), "exactly one source")
	h.fails("restore_postgres_cluster", args("source_cluster", "nobackup"), "no object-store backups configured")
	h.fails("restore_postgres_cluster", map[string]any{"name": "pg", "source_cluster": "pg"}, "needs a new name")
	h.fails("restore_postgres_cluster", args("object_store", "store"), "needs server_name")
	h.fails("restore_postgres_cluster", args("object_store", "store", "server_name", "gone"), "no completed base backup")
	// inside the window: accepted (dry run)
	h.ok("restore_postgres_cluster", args("source_cluster", "pg", "target_time", first.Add(time.Minute).Format(time.RFC3339), "dry_run", true))
	h.ok("restore_postgres_cluster", args("object_store", "store", "server_name", "pg", "target_lsn", "0/3000060", "dry_run", true))
	if h.exists(&cnpgv1.Cluster{}, "pg-r") {
		t.Fatal("a refused or dry-run restore created the cluster")
	}
}

func TestRestoreFromBackupObjects(t *testing.T) {
	h := newHarness(t, hopt{instances: okReports(fixedNow.Add(-time.Minute).Format(time.RFC3339Nano))})
	stopped := fixedNow.Add(-time.Hour)
	// plugin backup: the plugin's external cluster, pinned to the backup's ID
	h.pluginCluster("pg", "store", 1)
	h.pod("pg", "pg-1", false)
	h.objectStore("store", "pg", stopped, stopped)
	h.completedBackup("pg-b", "pg", cnpgv1.BackupMethodPlugin, stopped, "20261127T020405")
	m := h.ok("restore_postgres_cluster", map[string]any{"name": "pg-r", "backup_name": "pg-b", "dry_run": true})
	rec := m["object"].(map[string]any)["spec"].(map[string]any)["bootstrap"].(map[string]any)["recovery"].(map[string]any)
	if rec["source"] != "origin" || rec["recoveryTarget"].(map[string]any)["backupID"] != "20261127T020405" {
		t.Fatalf("plugin backup recovery %v", rec)
	}
	h.fails("restore_postgres_cluster", map[string]any{"name": "pg-r", "backup_name": "pg-b", "target_time": stopped.Add(-time.Second).Format(time.RFC3339)}, "before Backup pg-b ended")

	// in-tree backup: bootstrap.recovery.backup.name
	cl := h.cluster("old", 1, nil)
	cl.Spec.Backup = &cnpgv1.BackupConfiguration{BarmanObjectStore: &cnpgv1.BarmanObjectStoreConfiguration{DestinationPath: "s3://b/"}}
	if err := admin.Client.Update(context.Background(), cl); err != nil {
		t.Fatal(err)
	}
	h.completedBackup("old-b", "old", cnpgv1.BackupMethodBarmanObjectStore, stopped, "x")
	m = h.ok("restore_postgres_cluster", map[string]any{"name": "old-r", "backup_name": "old-b", "target_time": stopped.Add(time.Second).Format(time.RFC3339), "dry_run": true})
	rec = m["object"].(map[string]any)["spec"].(map[string]any)["bootstrap"].(map[string]any)["recovery"].(map[string]any)
	if rec["backup"].(map[string]any)["name"] != "old-b" || rec["source"] != nil {
		t.Fatalf("in-tree backup recovery %v", rec)
	}
	// a backup that is not completed is refused
	if err := admin.Client.Create(context.Background(), &cnpgv1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "running", Namespace: h.ns}, Spec: cnpgv1.BackupSpec{Cluster: cnpgv1.LocalObjectReference{Name: "pg"}}}); err != nil {
		t.Fatal(err)
	}
	h.fails("restore_postgres_cluster", map[string]any{"name": "pg-r", "backup_name": "running"}, "not completed")
}

func TestBackupOptionsForPlugins(t *testing.T) {
	h := newHarness(t, hopt{})
	h.pluginCluster("pg", "store", 1)
	h.cluster("plain", 1, nil)

	m := h.ok("create_backup", map[string]any{"cluster_name": "pg", "backup_name": "b1", "plugin_parameters": map[string]any{"note": "x"},
		"immediate_checkpoint": true, "wait_for_archive": false, "target": "primary"})
	var b cnpgv1.Backup
	if err := admin.Client.Get(context.Background(), clientKey(h.ns, "b1"), &b); err != nil {
		t.Fatal(err)
	}
	if b.Spec.Method != cnpgv1.BackupMethodPlugin || b.Spec.PluginConfiguration.Name != barmanPlugin || b.Spec.PluginConfiguration.Parameters["note"] != "x" ||
		!*b.Spec.OnlineConfiguration.ImmediateCheckpoint || *b.Spec.OnlineConfiguration.WaitForArchive || b.Spec.Target != cnpgv1.BackupTargetPrimary {
		t.Fatalf("backup spec %+v (result %v)", b.Spec, m)
	}
	h.fails("create_backup", map[string]any{"cluster_name": "plain"}, "no backup configured")
	h.fails("create_backup", map[string]any{"cluster_name": "plain", "method": "plugin", "plugin_name": barmanPlugin}, "not enabled on cluster plain")
	h.fails("create_backup", map[string]any{"cluster_name": "pg", "method": "barmanObjectStore"}, "no spec.backup.barmanObjectStore")
	h.fails("create_backup", map[string]any{"cluster_name": "pg", "method": "volumeSnapshot", "plugin_parameters": map[string]any{"a": "b"}}, "only go with method")
	h.fails("create_backup", map[string]any{"cluster_name": "pg", "online": false, "immediate_checkpoint": true}, "online backups only")

	h.ok("create_scheduled_backup", map[string]any{"cluster_name": "pg", "name": "nightly", "schedule": "0 0 2 * * *", "online": true, "immediate_checkpoint": true})
	var sb cnpgv1.ScheduledBackup
	if err := admin.Client.Get(context.Background(), clientKey(h.ns, "nightly"), &sb); err != nil {
		t.Fatal(err)
	}
	if sb.Spec.Method != cnpgv1.BackupMethodPlugin || sb.Spec.PluginConfiguration.Name != barmanPlugin || !*sb.Spec.Online || !*sb.Spec.OnlineConfiguration.ImmediateCheckpoint {
		t.Fatalf("scheduled backup spec %+v", sb.Spec)
	}
}

// A failing-archiving finding names where WAL goes and the Secret keys it is signed with (what the
// operator must check), for the plugin's ObjectStore and the in-tree configuration, and says so when
// the ObjectStore cannot be read. It names Secrets, never reads them.
func TestArchivingFindingNamesTheTarget(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(h *harness)
		want  []string
	}{{
		name: "plugin ObjectStore",
		setup: func(h *harness) {
			h.pluginCluster("pg", "store", 2)
			h.objectStore("store", "pg", time.Time{}, time.Time{})
		},
		want: []string{"check ObjectStore " + "%NS%/store: destination s3://backups/ at http://s3:7070",
			"credentials: Secret s3 key a (accessKeyId), Secret s3 key s (secretAccessKey)"},
	}, {
		name:  "plugin ObjectStore missing",
		setup: func(h *harness) { h.pluginCluster("pg", "gone", 2) },
		want:  []string{"check ObjectStore %NS%/gone (could not be read: "},
	}, {
		name: "in-tree barmanObjectStore",
		setup: func(h *harness) {
			cl := h.cluster("pg", 2, nil)
			cl.Spec.Backup = &cnpgv1.BackupConfiguration{BarmanObjectStore: &cnpgv1.BarmanObjectStoreConfiguration{
				DestinationPath: "s3://b/pg", EndpointURL: "https://minio:9000",
				BarmanCredentials: cnpgv1.BarmanCredentials{AWS: &cnpgv1.S3Credentials{
					AccessKeyIDReference:     &cnpgv1.SecretKeySelector{LocalObjectReference: cnpgv1.LocalObjectReference{Name: "minio"}, Key: "ACCESS_KEY_ID"},
					SecretAccessKeyReference: &cnpgv1.SecretKeySelector{LocalObjectReference: cnpgv1.LocalObjectReference{Name: "minio"}, Key: "ACCESS_SECRET_KEY"},
				}}}}
			if err := admin.Client.Update(context.Background(), cl); err != nil {
				t.Fatal(err)
			}
		},
		want: []string{"check the cluster's spec.backup.barmanObjectStore: destination s3://b/pg at https://minio:9000",
			"Secret minio key ACCESS_KEY_ID (accessKeyId), Secret minio key ACCESS_SECRET_KEY (secretAccessKey)"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, hopt{instances: failingReports(t)})
			tc.setup(h)
			h.pod("pg", "pg-1", false)
			h.pod("pg", "pg-2", false)
			d := h.ok("diagnose_postgres_cluster", map[string]any{"name": "pg", "log_lines": 0})
			var problem string
			for _, f := range d["health_findings"].([]any) {
				if p := f.(map[string]any)["problem"].(string); strings.Contains(p, "WAL archiving is failing") {
					problem = p
				}
			}
			for _, w := range tc.want {
				if w = strings.ReplaceAll(w, "%NS%", h.ns); !strings.Contains(problem, w) {
					t.Errorf("archiving finding %q\n  lacks %q", problem, w)
				}
			}
		})
	}
}
