package tools_test

import (
	"context"
	"strings"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
)

func TestBackups(t *testing.T) {
	h := newHarness(t, hopt{})
	h.cluster("pg", 1, nil)
	h.fails("create_backup", map[string]any{"cluster_name": "pg"}, "barmanObjectStore", "volumeSnapshot")
	h.fails("create_backup", map[string]any{"cluster_name": "pg", "method": "plugin"}, "plugin_name")
	d := h.ok("create_backup", map[string]any{"cluster_name": "pg", "method": "volumeSnapshot", "target": "primary", "online": true, "immediate_checkpoint": true})
	name := d["object"].(map[string]any)["metadata"].(map[string]any)["name"].(string)
	if name != "pg-20261127030405" { // default name from the injected clock
		t.Fatalf("default backup name %q", name)
	}
	h.fails("create_backup", map[string]any{"cluster_name": "pg", "backup_name": "nightly-1", "method": "plugin", "plugin_name": "barman-cloud.cloudnative-pg.io"}, "not enabled on cluster pg")
	cl := h.getCluster("pg")
	cl.Spec.Plugins = []cnpgv1.PluginConfiguration{{Name: "barman-cloud.cloudnative-pg.io"}}
	if err := admin.Client.Update(context.Background(), cl); err != nil {
		t.Fatal(err)
	}
	h.ok("create_backup", map[string]any{"cluster_name": "pg", "backup_name": "nightly-1", "method": "plugin", "plugin_name": "barman-cloud.cloudnative-pg.io"})
	var b cnpgv1.Backup
	if err := admin.Client.Get(context.Background(), clientKey(h.ns, name), &b); err != nil {
		t.Fatal(err)
	}
	if b.Spec.Method != cnpgv1.BackupMethodVolumeSnapshot || b.Spec.Target != cnpgv1.BackupTargetPrimary || !*b.Spec.OnlineConfiguration.ImmediateCheckpoint {
		t.Fatalf("backup spec: %+v", b.Spec)
	}
	// The operator completes it.
	b.Status.Phase = cnpgv1.BackupPhaseCompleted
	b.Status.StartedAt, b.Status.StoppedAt = &metav1.Time{Time: fixedNow}, &metav1.Time{Time: fixedNow.Add(time.Minute)}
	if err := admin.Client.Status().Update(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	if d := h.ok("get_backup", map[string]any{"name": name}); d["phase"] != "completed" || d["stopped_at"] == nil {
		t.Fatalf("get_backup: %v", d)
	}
	if d := h.ok("list_backups", map[string]any{"cluster_name": "pg"}); d["count"] != float64(2) {
		t.Fatalf("list_backups: %v", d)
	}
	if d := h.ok("list_backups", map[string]any{"cluster_name": "other"}); d["count"] != float64(0) {
		t.Fatalf("list_backups filter: %v", d)
	}
	h.fails("get_backup", map[string]any{"name": "nope"}, "not found")
}

func TestScheduledBackups(t *testing.T) {
	h := newHarness(t, hopt{})
	h.cluster("pg", 1, nil)
	h.fails("create_scheduled_backup", map[string]any{"cluster_name": "pg", "name": "daily", "schedule": "0 2 * * *", "method": "volumeSnapshot"}, "5 fields", "seconds")
	h.fails("create_scheduled_backup", map[string]any{"cluster_name": "pg", "name": "daily", "schedule": "0 0 25 * * *", "method": "volumeSnapshot"}, "hour", "0-23")
	h.ok("create_scheduled_backup", map[string]any{"cluster_name": "pg", "name": "daily", "schedule": "0 0 2 * * mon-fri", "method": "volumeSnapshot", "backup_owner_reference": "self"})
	var sb cnpgv1.ScheduledBackup
	if err := admin.Client.Get(context.Background(), clientKey(h.ns, "daily"), &sb); err != nil {
		t.Fatal(err)
	}
	if sb.Spec.Schedule != "0 0 2 * * mon-fri" || *sb.Spec.Suspend || sb.Spec.BackupOwnerReference != "self" {
		t.Fatalf("spec: %+v", sb.Spec)
	}
	h.ok("suspend_scheduled_backup", map[string]any{"name": "daily"})
	if d := h.ok("list_scheduled_backups", nil); d["count"] != float64(1) || d["scheduled_backups"].([]any)[0].(map[string]any)["suspended"] != true {
		t.Fatalf("list: %v", d)
	}
	h.ok("resume_scheduled_backup", map[string]any{"name": "daily"})
	_ = admin.Client.Get(context.Background(), clientKey(h.ns, "daily"), &sb)
	if *sb.Spec.Suspend {
		t.Fatal("not resumed")
	}
}

func TestPoolers(t *testing.T) {
	h := newHarness(t, hopt{})
	h.cluster("pg", 1, nil)
	h.fails("create_pooler", map[string]any{"cluster_name": "pg", "name": "pg-rw"}, "clash")
	h.ok("create_pooler", map[string]any{"cluster_name": "pg", "name": "pooler-pg-rw", "type": "rw", "instances": 2, "pool_mode": "transaction", "max_client_conn": 500})
	var p cnpgv1.Pooler
	if err := admin.Client.Get(context.Background(), clientKey(h.ns, "pooler-pg-rw"), &p); err != nil {
		t.Fatal(err)
	}
	if *p.Spec.Instances != 2 || p.Spec.PgBouncer.PoolMode != "transaction" || p.Spec.PgBouncer.Parameters["max_client_conn"] != "500" {
		t.Fatalf("pooler: %+v", p.Spec)
	}
	if d := h.ok("list_poolers", map[string]any{"cluster_name": "pg"}); d["count"] != float64(1) {
		t.Fatalf("list: %v", d)
	}
	h.fails("delete_pooler", map[string]any{"name": "pooler-pg-rw"}, "confirm")
	h.ok("delete_pooler", map[string]any{"name": "pooler-pg-rw", "confirm": true})
	if h.exists(&cnpgv1.Pooler{}, "pooler-pg-rw") {
		t.Fatal("pooler not deleted")
	}
}

func TestOperations(t *testing.T) {
	h := newHarness(t, hopt{})
	h.cluster("pg", 2, nil)
	h.pod("pg", "pg-1", false)
	h.pod("pg", "pg-2", false)

	h.ok("restart_postgres_cluster", map[string]any{"name": "pg"})
	if got := h.getCluster("pg").Annotations[tools.AnnotationRestart]; got != fixedNow.Format(time.RFC3339) {
		t.Fatalf("restart annotation %q", got)
	}
	h.ok("restart_postgres_cluster", map[string]any{"name": "pg", "instance": "pg-1"})
	if ph := h.getCluster("pg").Status.Phase; ph != cnpgv1.PhaseInplacePrimaryRestart {
		t.Fatalf("primary restart phase %q", ph)
	}
	h.ok("restart_postgres_cluster", map[string]any{"name": "pg", "instance": "pg-2"})
	if h.exists(&corev1.Pod{}, "pg-2") {
		t.Fatal("replica restart must delete its pod")
	}

	h.ok("reload_postgres_cluster", map[string]any{"name": "pg"})
	if h.getCluster("pg").Annotations[tools.AnnotationReload] == "" {
		t.Fatal("reload annotation missing")
	}

	h.fails("hibernate_postgres_cluster", map[string]any{"name": "pg", "state": "on"}, "confirm")
	if h.getCluster("pg").Annotations[tools.AnnotationHibernation] != "" {
		t.Fatal("hibernated without confirmation")
	}
	h.ok("hibernate_postgres_cluster", map[string]any{"name": "pg", "state": "on", "confirm": true})
	if h.getCluster("pg").Annotations[tools.AnnotationHibernation] != "on" {
		t.Fatal("not hibernated")
	}
	h.ok("hibernate_postgres_cluster", map[string]any{"name": "pg", "state": "off"})
	if h.getCluster("pg").Annotations[tools.AnnotationHibernation] != "off" {
		t.Fatal("not woken")
	}

	h.fails("fence_postgres_instances", map[string]any{"name": "pg", "state": "on", "instance": "pg-9", "confirm": true}, "not an instance")
	h.ok("fence_postgres_instances", map[string]any{"name": "pg", "state": "on", "instance": "pg-2", "confirm": true})
	h.ok("fence_postgres_instances", map[string]any{"name": "pg", "state": "on", "instance": "pg-1", "confirm": true})
	if got := h.getCluster("pg").Annotations[tools.AnnotationFenced]; got != `["pg-1","pg-2"]` {
		t.Fatalf("fenced %q", got)
	}
	h.ok("fence_postgres_instances", map[string]any{"name": "pg", "state": "off", "instance": "pg-1"})
	h.ok("fence_postgres_instances", map[string]any{"name": "pg", "state": "off", "instance": "pg-2"})
	if got, has := h.getCluster("pg").Annotations[tools.AnnotationFenced]; has {
		t.Fatalf("fencing annotation must be removed when empty, got %q", got)
	}

	h.ok("set_cluster_maintenance", map[string]any{"name": "pg", "state": "set", "reuse_pvc": false})
	w := h.getCluster("pg").Spec.NodeMaintenanceWindow
	if w == nil || !w.InProgress || *w.ReusePVC {
		t.Fatalf("maintenance: %+v", w)
	}
	h.ok("set_cluster_maintenance", map[string]any{"name": "pg", "state": "unset"})
	if w := h.getCluster("pg").Spec.NodeMaintenanceWindow; w.InProgress || !*w.ReusePVC {
		t.Fatalf("maintenance unset: %+v", w)
	}
	h.fails("set_cluster_maintenance", map[string]any{"name": "pg", "state": "maybe"})
}

func TestLogsAndDiagnose(t *testing.T) {
	// only ok-1's instance manager answers (pg-1 and pg-2 are reported unreachable)
	h := newHarness(t, hopt{instances: fakeReports{status: map[string][]byte{"ok-1": []byte(`{"isPrimary":true,"currentLsn":"0/3000060","timeLineID":1}`)}}})
	h.cluster("pg", 2, func(c *cnpgv1.Cluster) {
		c.Status.Phase, c.Status.PhaseReason, c.Status.ReadyInstances = "Waiting for the instances to become active", "instance pg-2 not ready", 1
		c.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: "ClusterIsNotReady", Message: "not all instances ready", LastTransitionTime: metav1.Now()}}
	})
	h.pod("pg", "pg-1", true)
	h.pod("pg", "pg-2", true)
	var log strings.Builder
	for i := 1; i <= 50; i++ {
		log.WriteString(`{"level":"info","msg":"line ` + strings.Repeat("x", i%3) + `"}` + "\n")
	}
	env.Kubelet().SetLog(h.ns, "pg-1", "postgres", log.String()+"{\"level\":\"info\",\"msg\":\"last line of pg-1\"}\n")
	env.Kubelet().SetLog(h.ns, "pg-2", "postgres", "{\"level\":\"error\",\"msg\":\"could not connect to the primary\"}\n")
	before := len(env.Kubelet().Requests())

	d := h.ok("get_cluster_logs", map[string]any{"name": "pg", "tail_lines": 3})
	inst := d["instances"].([]any)
	first := inst[0].(map[string]any)
	if len(inst) != 2 || first["lines"] != float64(3) || !strings.Contains(first["log"].(string), "last line of pg-1") {
		t.Fatalf("logs: %v", d)
	}
	for _, q := range env.Kubelet().Requests()[before:] {
		if q.Get("follow") == "true" || q.Get("tailLines") != "3" || q.Get("limitBytes") == "" {
			t.Fatalf("log request not bounded: %v", q)
		}
	}
	if d := h.ok("get_cluster_logs", map[string]any{"name": "pg", "instance": "pg-2"}); len(d["instances"].([]any)) != 1 {
		t.Fatalf("instance filter: %v", d)
	}
	h.fails("get_cluster_logs", map[string]any{"name": "pg", "tail_lines": 5000})
	h.fails("get_cluster_logs", map[string]any{"name": "pg", "instance": "pg-7"}, "no instance pod")

	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "pg-2.1", Namespace: h.ns},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "pg-2", Namespace: h.ns}, Type: corev1.EventTypeWarning, Reason: "Unhealthy",
		Message: "Readiness probe failed", LastTimestamp: metav1.Now(), Count: 3}
	other := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "unrelated.1", Namespace: h.ns},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "someone-else", Namespace: h.ns}, Type: corev1.EventTypeWarning, Reason: "Failed", Message: "x", LastTimestamp: metav1.Now()}
	for _, e := range []*corev1.Event{ev, other} {
		if err := admin.Client.Create(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	res := h.call("diagnose_postgres_cluster", map[string]any{"name": "pg", "log_lines": 5})
	if res.IsError {
		t.Fatal(text(res))
	}
	d = structured(t, res)
	findings := strings.Join(toStrings(d["findings"]), "\n")
	for _, want := range []string{"not healthy", "1 of 2 instances ready", "Readiness probe failed", "condition Ready is False", "pod pg-1 not ready",
		"[warning] pg-2: no report from the instance manager: pod is Pending, not running; instance manager not reachable"} {
		if !strings.Contains(findings, want) {
			t.Errorf("findings lack %q:\n%s", want, findings)
		}
	}
	if strings.Contains(findings, "someone-else") || len(d["events"].([]any)) != 1 {
		t.Fatalf("events of other objects included: %v", d["events"])
	}
	if !strings.Contains(text(res), "could not connect to the primary") {
		t.Fatal("diagnosis lacks the log tail")
	}
	// A healthy cluster is reported as such.
	h.cluster("ok", 1, nil)
	p := h.pod("ok", "ok-1", false)
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "postgres", Ready: true}}
	if err := admin.Client.Status().Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if d := h.ok("diagnose_postgres_cluster", map[string]any{"name": "ok", "log_lines": 0}); !strings.Contains(strings.Join(toStrings(d["findings"]), ""), "no problem found") {
		t.Fatalf("healthy diagnosis: %v", d["findings"])
	}
	_ = ptr.To(1)
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
