package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	"github.com/mark3labs/mcp-go/mcp"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// BarmanCloudPlugin is the CNPG-I name of CloudNativePG's Barman Cloud plugin, the way 1.30
// recommends for backups to object stores (the in-tree spec.backup.barmanObjectStore is deprecated).
const BarmanCloudPlugin = "barman-cloud.cloudnative-pg.io"

// ObjectStoreGVK is the plugin's ObjectStore (barmancloud.cnpg.io/v1). Read as unstructured: the
// tools need three status fields, not the plugin's Go module and its dependency tree.
var ObjectStoreGVK = schema.GroupVersionKind{Group: "barmancloud.cnpg.io", Version: "v1", Kind: "ObjectStore"}

func recoverabilityTools(d *Deps) []Tool {
	return []Tool{
		build(d, spec{
			name: "get_cluster_recoverability", title: "Get a cluster's recoverability", area: "backups", readOnly: true, idempotent: true,
			desc: "How far back and up to when a cluster can be restored: the first recoverability point, the last successful backup, and the WAL archiving state and lag. " +
				"Read from where CloudNativePG 1.30 keeps it: the Barman Cloud plugin's ObjectStore status (serverRecoveryWindow) for clusters backed up by the plugin; " +
				"the completed Backup objects for the in-tree barmanObjectStore; the cluster's ContinuousArchiving condition and the primary's instance manager (/pg/status: last archived and failed WAL, WAL files waiting) for both. " +
				"Use it before restore_postgres_cluster to pick a target time inside the window.",
			calls:  []string{"get clusters", "get objectstores.barmancloud.cnpg.io", "list backups", "list pods", "get pods/proxy (instance manager /pg/status, /metrics)"},
			params: []mcp.ToolOption{pName("name", "Cluster name.", true), pNamespace(), pFormat()},
		}, getRecoverability),
	}
}

// backupConfig is how a cluster is backed up.
type backupConfig struct {
	Method      string // "plugin", "barmanObjectStore" or "" (none)
	Plugin      string // plugin name (method plugin)
	ObjectStore string // the plugin's barmanObjectName
	ServerName  string // folder of this cluster in the object store
	InTree      *cnpgv1.BarmanObjectStoreConfiguration
}

// clusterBackupConfig reads the backup configuration: a Barman Cloud plugin entry (WAL archiver)
// in spec.plugins, else spec.backup.barmanObjectStore.
func clusterBackupConfig(cl *cnpgv1.Cluster) backupConfig {
	for _, p := range cl.Spec.Plugins {
		if p.Enabled != nil && !*p.Enabled {
			continue
		}
		if p.Name == BarmanCloudPlugin || (p.IsWALArchiver != nil && *p.IsWALArchiver) {
			return backupConfig{Method: string(cnpgv1.BackupMethodPlugin), Plugin: p.Name, ObjectStore: p.Parameters["barmanObjectName"],
				ServerName: firstNonEmpty(p.Parameters["serverName"], cl.Name)}
		}
	}
	if cl.Spec.Backup != nil && cl.Spec.Backup.BarmanObjectStore != nil {
		bos := cl.Spec.Backup.BarmanObjectStore
		return backupConfig{Method: string(cnpgv1.BackupMethodBarmanObjectStore), ServerName: firstNonEmpty(bos.ServerName, cl.Name), InTree: bos}
	}
	return backupConfig{}
}

// recoveryWindow is what a restore can reach.
type recoveryWindow struct {
	Source                   string     `json:"source"` // where the window was read
	FirstRecoverabilityPoint *time.Time `json:"first_recoverability_point,omitempty"`
	LastSuccessfulBackupTime *time.Time `json:"last_successful_backup_time,omitempty"`
	LastFailedBackupTime     *time.Time `json:"last_failed_backup_time,omitempty"`
	// LastArchivedWALTime bounds recovery from above (the latest point reachable with archived WAL).
	LastArchivedWALTime *time.Time `json:"last_archived_wal_time,omitempty"`
	LastBackup          *backupRef `json:"last_successful_backup,omitempty"`
	CompletedBackups    int        `json:"completed_backups"`
	Note                string     `json:"note,omitempty"`
}

type backupRef struct {
	Name      string     `json:"name"`
	BackupID  string     `json:"backup_id,omitempty"`
	Method    string     `json:"method,omitempty"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	StoppedAt *time.Time `json:"stopped_at,omitempty"`
	BeginLSN  string     `json:"begin_lsn,omitempty"`
	EndLSN    string     `json:"end_lsn,omitempty"`
}

func refOf(b *cnpgv1.Backup) *backupRef {
	r := &backupRef{Name: b.Name, BackupID: b.Status.BackupID, Method: firstNonEmpty(string(b.Status.Method), string(b.Spec.Method)), BeginLSN: b.Status.BeginLSN, EndLSN: b.Status.EndLSN}
	if b.Status.StartedAt != nil {
		r.StartedAt = ptr(b.Status.StartedAt.UTC())
	}
	if b.Status.StoppedAt != nil {
		r.StoppedAt = ptr(b.Status.StoppedAt.UTC())
	}
	return r
}

// objectStoreWindow reads the plugin's ObjectStore status.serverRecoveryWindow[serverName].
func (c *call) objectStoreWindow(ctx context.Context, ns, store, server string) (*recoveryWindow, error) {
	if store == "" {
		return nil, userErrorf("the cluster's %s plugin entry has no barmanObjectName parameter, so there is no ObjectStore to read", BarmanCloudPlugin)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(ObjectStoreGVK)
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: store}, u); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, userErrorf("the ObjectStore kind (barmancloud.cnpg.io/v1) is not installed: install the Barman Cloud plugin, or restore from an in-tree barmanObjectStore")
		}
		return nil, err
	}
	w := &recoveryWindow{Source: fmt.Sprintf("ObjectStore %s status.serverRecoveryWindow[%q]", fmtObj(ns, store), server)}
	win, found, _ := unstructured.NestedMap(u.Object, "status", "serverRecoveryWindow", server)
	if !found {
		w.Note = fmt.Sprintf("the ObjectStore reports no recovery window for server %q yet (no completed base backup in the store)", server)
		return w, nil
	}
	at := func(k string) *time.Time {
		s, _ := win[k].(string)
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return ptr(t.UTC())
		}
		return nil
	}
	w.FirstRecoverabilityPoint, w.LastSuccessfulBackupTime, w.LastFailedBackupTime = at("firstRecoverabilityPoint"), at("lastSuccessfulBackupTime"), at("lastFailedBackupTime")
	return w, nil
}

// clusterBackups returns the cluster's completed Backups (oldest first) and the failed ones.
func (c *call) clusterBackups(ctx context.Context, ns, cluster string) (completed, failed []cnpgv1.Backup, err error) {
	var list cnpgv1.BackupList
	if err := c.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, nil, err
	}
	for _, b := range list.Items {
		if b.Spec.Cluster.Name != cluster {
			continue
		}
		switch b.Status.Phase {
		case cnpgv1.BackupPhaseCompleted:
			if b.Status.StoppedAt != nil {
				completed = append(completed, b)
			}
		case cnpgv1.BackupPhaseFailed:
			failed = append(failed, b)
		}
	}
	sortNewest(completed, func(b cnpgv1.Backup) time.Time { return b.Status.StoppedAt.Time })
	for i, j := 0, len(completed)-1; i < j; i, j = i+1, j-1 {
		completed[i], completed[j] = completed[j], completed[i]
	}
	return completed, failed, nil
}

// window computes the recovery window of a cluster's backups.
func (c *call) window(ctx context.Context, ns string, cl *cnpgv1.Cluster, cfg backupConfig) (*recoveryWindow, []cnpgv1.Backup, error) {
	completed, failed, err := c.clusterBackups(ctx, ns, cl.Name)
	if err != nil {
		return nil, nil, err
	}
	var w *recoveryWindow
	switch cfg.Method {
	case string(cnpgv1.BackupMethodPlugin):
		if cfg.Plugin != BarmanCloudPlugin {
			w = &recoveryWindow{Source: "Backup objects", Note: fmt.Sprintf("plugin %s: its own status is not known to this server; the window comes from the Backup objects", cfg.Plugin)}
		} else if w, err = c.objectStoreWindow(ctx, ns, cfg.ObjectStore, cfg.ServerName); err != nil {
			return nil, nil, err
		}
	default:
		w = &recoveryWindow{Source: "completed Backup objects of the cluster (in-tree barmanObjectStore keeps no window elsewhere in 1.30)"}
	}
	w.CompletedBackups = len(completed)
	if n := len(completed); n > 0 {
		w.LastBackup = refOf(&completed[n-1])
		if w.FirstRecoverabilityPoint == nil {
			w.FirstRecoverabilityPoint = ptr(completed[0].Status.StoppedAt.UTC())
		}
		if w.LastSuccessfulBackupTime == nil {
			w.LastSuccessfulBackupTime = ptr(completed[n-1].Status.StoppedAt.UTC())
		}
	}
	if w.LastFailedBackupTime == nil && len(failed) > 0 {
		sortNewest(failed, func(b cnpgv1.Backup) time.Time { return b.CreationTimestamp.Time })
		w.LastFailedBackupTime = ptr(failed[0].CreationTimestamp.UTC())
	}
	return w, completed, nil
}

type walArchiving struct {
	State               string `json:"state"` // ok | failing | not-configured | unknown
	Condition           string `json:"condition,omitempty"`
	ConditionReason     string `json:"condition_reason,omitempty"`
	ConditionMessage    string `json:"condition_message,omitempty"`
	Primary             string `json:"primary,omitempty"`
	LastArchivedWAL     string `json:"last_archived_wal,omitempty"`
	LastArchivedWALTime string `json:"last_archived_wal_time,omitempty"`
	LastFailedWAL       string `json:"last_failed_wal,omitempty"`
	LastFailedWALTime   string `json:"last_failed_wal_time,omitempty"`
	CurrentWAL          string `json:"current_wal,omitempty"`
	ReadyWALFiles       *int   `json:"ready_wal_files,omitempty"`
	// LagSeconds is the time since the last archived WAL (what a restore to "latest" would lose
	// at most, when the primary has written since).
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
	Error      string   `json:"instance_report_error,omitempty"`
}

// archivingState reads the ContinuousArchiving condition and the primary's own report.
func (c *call) archivingState(ctx context.Context, ns string, cl *cnpgv1.Cluster, cfg backupConfig) walArchiving {
	a := walArchiving{State: "unknown", Primary: cl.Status.CurrentPrimary}
	if cfg.Method == "" {
		a.State = "not-configured"
	}
	if cond := meta.FindStatusCondition(cl.Status.Conditions, string(cnpgv1.ConditionContinuousArchiving)); cond != nil {
		a.Condition, a.ConditionReason, a.ConditionMessage = string(cond.Status), cond.Reason, cond.Message
		a.State = map[bool]string{true: "ok", false: "failing"}[cond.Status == "True"]
	}
	if cl.Status.CurrentPrimary == "" {
		return a
	}
	pods, err := c.instancePods(ctx, ns, cl.Name)
	if err != nil {
		a.Error = c.explain(err)
		return a
	}
	pods = filterPods(pods, cl.Status.CurrentPrimary)
	if len(pods) == 0 {
		a.Error = "primary pod " + cl.Status.CurrentPrimary + " not found"
		return a
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b, err := c.reports().Status(sctx, &pods[0])
	if err != nil {
		a.Error = c.proxyError(&pods[0], err)
		return a
	}
	st, err := parseInstanceStatus(b)
	if err != nil {
		a.Error = err.Error()
		return a
	}
	a.LastArchivedWAL, a.LastArchivedWALTime, a.LastFailedWAL, a.LastFailedWALTime = st.LastArchivedWAL, st.LastArchivedWALTime, st.LastFailedWAL, st.LastFailedWALTime
	a.CurrentWAL, a.ReadyWALFiles = st.CurrentWAL, ptr(st.ReadyWALFiles)
	if t, err := time.Parse(time.RFC3339Nano, st.LastArchivedWALTime); err == nil {
		a.LagSeconds = ptr(c.Now().Sub(t).Seconds())
	}
	if archivingFailing(st.LastFailedWAL, st.LastArchivedWALTime, st.LastFailedWALTime) {
		a.State = "failing"
	} else if a.State == "unknown" && st.LastArchivedWAL != "" {
		a.State = "ok"
	}
	return a
}

type recoverabilityArgs struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Format    string `json:"format"`
}

func getRecoverability(ctx context.Context, c *call, a *recoverabilityArgs) (*Result, error) {
	ns, cl, err := c.namespacedCluster(ctx, a.Namespace, a.Name)
	if err != nil {
		return nil, err
	}
	cfg := clusterBackupConfig(cl)
	w, _, err := c.window(ctx, ns, cl, cfg)
	if err != nil {
		return nil, err
	}
	arch := c.archivingState(ctx, ns, cl, cfg)
	if t, err := time.Parse(time.RFC3339Nano, arch.LastArchivedWALTime); err == nil {
		w.LastArchivedWALTime = ptr(t.UTC())
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Recoverability of cluster %s\n", fmtObj(ns, a.Name))
	switch cfg.Method {
	case string(cnpgv1.BackupMethodPlugin):
		fmt.Fprintf(&b, "  backups: plugin %s, ObjectStore %s, server name %s\n", cfg.Plugin, firstNonEmpty(cfg.ObjectStore, "-"), cfg.ServerName)
	case string(cnpgv1.BackupMethodBarmanObjectStore):
		fmt.Fprintf(&b, "  backups: in-tree barmanObjectStore %s (deprecated in 1.30: prefer the Barman Cloud plugin), server name %s\n", cfg.InTree.DestinationPath, cfg.ServerName)
	default:
		b.WriteString("  backups: none configured (no Barman Cloud plugin in spec.plugins, no spec.backup.barmanObjectStore): the cluster cannot be restored from an object store\n")
	}
	fmt.Fprintf(&b, "  window (from %s):\n", w.Source)
	fmt.Fprintf(&b, "    first recoverability point: %s\n", fmtTime(w.FirstRecoverabilityPoint, "none (no completed base backup)"))
	fmt.Fprintf(&b, "    last archived WAL:          %s\n", fmtTime(w.LastArchivedWALTime, "unknown"))
	fmt.Fprintf(&b, "    last successful backup:     %s", fmtTime(w.LastSuccessfulBackupTime, "none"))
	if w.LastBackup != nil {
		fmt.Fprintf(&b, " (Backup %s, ID %s)", w.LastBackup.Name, firstNonEmpty(w.LastBackup.BackupID, "-"))
	}
	fmt.Fprintf(&b, "\n    last failed backup:         %s\n    completed Backup objects:   %d\n", fmtTime(w.LastFailedBackupTime, "none"), w.CompletedBackups)
	if w.Note != "" {
		fmt.Fprintf(&b, "    note: %s\n", w.Note)
	}
	fmt.Fprintf(&b, "  WAL archiving: %s", arch.State)
	if arch.Condition != "" {
		fmt.Fprintf(&b, " (ContinuousArchiving=%s %s %s)", arch.Condition, arch.ConditionReason, arch.ConditionMessage)
	}
	b.WriteString("\n")
	if arch.LastArchivedWAL != "" || arch.LastFailedWAL != "" {
		fmt.Fprintf(&b, "    last archived %s at %s; last failed %s at %s; %d WAL file(s) waiting\n", firstNonEmpty(arch.LastArchivedWAL, "-"), firstNonEmpty(arch.LastArchivedWALTime, "-"),
			firstNonEmpty(arch.LastFailedWAL, "-"), firstNonEmpty(arch.LastFailedWALTime, "-"), derefInt(arch.ReadyWALFiles))
	}
	if arch.LagSeconds != nil {
		fmt.Fprintf(&b, "    %.0f s since the last archived WAL\n", *arch.LagSeconds)
	}
	if arch.Error != "" {
		fmt.Fprintf(&b, "    primary's report unavailable: %s\n", arch.Error)
	}
	data := map[string]any{"name": a.Name, "namespace": ns, "backup_method": cfg.Method, "plugin": cfg.Plugin, "object_store": cfg.ObjectStore,
		"server_name": cfg.ServerName, "window": toMap(w), "wal_archiving": toMap(arch)}
	return &Result{Text: b.String(), JSONText: a.Format == "json", Data: data}, nil
}

func fmtTime(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// archiveTargetOf says where the cluster archives WAL and with which credentials, for a finding
// about failing archiving: "ObjectStore ns/store: destination s3://b/ at https://minio:9000,
// credentials: Secret creds key ACCESS_KEY_ID (accessKeyId), ...". It names Secrets and keys, never
// reads them. Empty when the cluster has no archive configured.
func (c *call) archiveTargetOf(ctx context.Context, ns string, cl *cnpgv1.Cluster) string {
	cfg := clusterBackupConfig(cl)
	var where string
	var conf map[string]any
	switch {
	case cfg.Method == string(cnpgv1.BackupMethodPlugin) && cfg.ObjectStore != "":
		where = "ObjectStore " + fmtObj(ns, cfg.ObjectStore)
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(ObjectStoreGVK)
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: cfg.ObjectStore}, u); err != nil {
			return where + " (could not be read: " + c.explain(err) + ")"
		}
		conf, _, _ = unstructured.NestedMap(u.Object, "spec", "configuration")
	case cfg.Method == string(cnpgv1.BackupMethodPlugin):
		return fmt.Sprintf("the cluster's %s plugin entry: it names no barmanObjectName", cfg.Plugin)
	case cfg.InTree != nil:
		where = "the cluster's spec.backup.barmanObjectStore"
		b, err := json.Marshal(cfg.InTree)
		if err == nil {
			_ = json.Unmarshal(b, &conf)
		}
	default:
		return ""
	}
	return where + describeArchiveConf(conf)
}

// describeArchiveConf renders a Barman object store configuration (the plugin's
// ObjectStore.spec.configuration or the in-tree barmanObjectStore, the same schema): destination,
// endpoint and the Secret keys of each cloud's credentials.
func describeArchiveConf(conf map[string]any) string {
	var parts []string
	if d, _ := conf["destinationPath"].(string); d != "" {
		dest := "destination " + d
		if e, _ := conf["endpointURL"].(string); e != "" {
			dest += " at " + e
		}
		parts = append(parts, dest)
	}
	var creds []string
	for _, cloud := range []string{"s3Credentials", "azureCredentials", "googleCredentials"} {
		m, _ := conf[cloud].(map[string]any)
		fields := slices.Sorted(maps.Keys(m))
		for _, f := range fields {
			switch v := m[f].(type) {
			case map[string]any:
				name, _ := v["name"].(string)
				key, _ := v["key"].(string)
				if name != "" && key != "" {
					creds = append(creds, fmt.Sprintf("Secret %s key %s (%s)", name, key, f))
				}
			case bool:
				if v {
					creds = append(creds, f+" (from the pod's environment)")
				}
			}
		}
	}
	if len(creds) > 0 {
		parts = append(parts, "credentials: "+strings.Join(creds, ", "))
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, "; ")
}
