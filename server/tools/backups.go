package tools

import (
	"context"
	"fmt"
	"strings"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	"github.com/mark3labs/mcp-go/mcp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func backupTools(d *Deps) []Tool {
	return []Tool{
		build(d, spec{
			name: "create_backup", title: "Back up a cluster now", area: "backups",
			desc: "Start an on-demand backup by creating a Backup object (spec is immutable). method: plugin (a CNPG-I plugin such as the Barman Cloud plugin, the way CloudNativePG 1.30 recommends), " +
				"barmanObjectStore (the in-tree object store, deprecated in 1.30) or volumeSnapshot; default: what the cluster is configured with (its Barman Cloud plugin entry, else its barmanObjectStore). " +
				"target: prefer-standby or primary. Follow it with get_backup until its phase is completed, and get_cluster_recoverability for the window it opens.",
			calls: []string{"get clusters", "create backups"},
			params: []mcp.ToolOption{pName("cluster_name", "Cluster to back up.", true),
				pName("backup_name", "Name of the Backup object; default <cluster>-<UTC timestamp>.", false),
				pBackupMethod(), pBackupTarget(), pPluginName(), pPluginParameters(), pOnline(), pImmediateCheckpoint(), pWaitForArchive(),
				pNamespace(), pDryRun()},
		}, createBackup),
		build(d, spec{
			name: "list_backups", title: "List backups", area: "backups", readOnly: true, idempotent: true,
			desc:   "List Backup objects (optionally of one cluster), newest first, with phase, method, start/stop time and error.",
			calls:  []string{"list backups"},
			params: []mcp.ToolOption{pName("cluster_name", "Only backups of this cluster.", false), pNamespace(), pFormat()},
		}, listBackups),
		build(d, spec{
			name: "get_backup", title: "Get a backup", area: "backups", readOnly: true, idempotent: true,
			desc:   "Show one Backup: phase, method, target, timing, WAL/LSN range, destination, error.",
			calls:  []string{"get backups"},
			params: []mcp.ToolOption{pName("name", "Backup object name.", true), pNamespace(), pFormat()},
		}, getBackup),
	}
}

// backupOptions are the options a Backup and a ScheduledBackup share (BackupSpec and
// ScheduledBackupSpec have the same fields for them).
type backupOptions struct {
	Method              string            `json:"method"`
	Target              string            `json:"target"`
	PluginName          string            `json:"plugin_name"`
	PluginParameters    map[string]string `json:"plugin_parameters"`
	Online              *bool             `json:"online"`
	ImmediateCheckpoint *bool             `json:"immediate_checkpoint"`
	WaitForArchive      *bool             `json:"wait_for_archive"`
}

// resolvedBackup is backupOptions checked against the cluster.
type resolvedBackup struct {
	method cnpgv1.BackupMethod
	target cnpgv1.BackupTarget
	plugin *cnpgv1.BackupPluginConfiguration
	online *bool
	onCfg  *cnpgv1.OnlineConfiguration
}

func pBackupMethod() mcp.ToolOption {
	return mcp.WithString("method", mcp.Enum("plugin", "barmanObjectStore", "volumeSnapshot"), mcp.Description("Backup method; default: the cluster's configuration (its Barman Cloud plugin entry, else barmanObjectStore)."))
}
func pBackupTarget() mcp.ToolOption {
	return mcp.WithString("target", mcp.Enum("prefer-standby", "primary"), mcp.Description("Where to take the backup; default: the cluster's setting (spec.backup.target)."))
}
func pPluginName() mcp.ToolOption {
	return mcp.WithString("plugin_name", mcp.MaxLength(253), mcp.Description("CNPG-I plugin, with method plugin; default: the cluster's Barman Cloud plugin entry (barman-cloud.cloudnative-pg.io)."))
}
func pPluginParameters() mcp.ToolOption {
	return mcp.WithObject("plugin_parameters", mcp.AdditionalProperties(map[string]any{"type": "string", "maxLength": 1024}),
		mcp.Description("Parameters passed to the plugin (pluginConfiguration.parameters), with method plugin; string values."))
}
func pOnline() mcp.ToolOption {
	return mcp.WithBoolean("online", mcp.Description("Online (hot) backup while PostgreSQL runs, or offline (the instance is shut down for a consistent snapshot; volumeSnapshot and plugins that support it). Default: the cluster's setting (online)."))
}
func pImmediateCheckpoint() mcp.ToolOption {
	return mcp.WithBoolean("immediate_checkpoint", mcp.Description("Online backups: start with an immediate checkpoint instead of a spread one (faster start, I/O spike)."))
}
func pWaitForArchive() mcp.ToolOption {
	return mcp.WithBoolean("wait_for_archive", mcp.Description("Online backups: wait until the last WAL file of the backup is archived before calling it completed (default true in CloudNativePG)."))
}

// resolve checks the options against the cluster: the method defaults to what the cluster is
// configured with, a plugin must be enabled on the cluster, an object-store method must be configured.
// A schedule (now false) may be set up before the cluster's backups are: then the method defaults to
// barmanObjectStore and the configuration is not checked (each run fails until it is).
func (o *backupOptions) resolve(cl *cnpgv1.Cluster, now bool) (*resolvedBackup, error) {
	cfg := clusterBackupConfig(cl)
	m := cnpgv1.BackupMethod(o.Method)
	if m == "" {
		switch {
		case o.PluginName != "" || cfg.Method == string(cnpgv1.BackupMethodPlugin):
			m = cnpgv1.BackupMethodPlugin
		case cfg.Method == string(cnpgv1.BackupMethodBarmanObjectStore) || !now:
			m = cnpgv1.BackupMethodBarmanObjectStore
		default:
			return nil, userErrorf("cluster %s has no backup configured (no Barman Cloud plugin entry in spec.plugins, no spec.backup.barmanObjectStore): give method (volumeSnapshot needs spec.backup.volumeSnapshot), or configure an object store first", cl.Name)
		}
	}
	r := &resolvedBackup{method: m, online: o.Online}
	switch m {
	case cnpgv1.BackupMethodBarmanObjectStore, cnpgv1.BackupMethodVolumeSnapshot:
		if o.PluginName != "" || len(o.PluginParameters) > 0 {
			return nil, userErrorf("plugin_name and plugin_parameters only go with method: \"plugin\"")
		}
		if now && m == cnpgv1.BackupMethodBarmanObjectStore && (cl.Spec.Backup == nil || cl.Spec.Backup.BarmanObjectStore == nil) {
			return nil, userErrorf("cluster %s has no spec.backup.barmanObjectStore, so a barmanObjectStore backup would fail; use method plugin (if it has the Barman Cloud plugin) or volumeSnapshot, or configure the object store first", cl.Name)
		}
	case cnpgv1.BackupMethodPlugin:
		name := firstNonEmpty(o.PluginName, cfg.Plugin)
		if name == "" {
			return nil, userErrorf("method \"plugin\" needs plugin_name, e.g. %q (and the plugin enabled in the cluster's spec.plugins)", BarmanCloudPlugin)
		}
		enabled := false
		for _, p := range cl.Spec.Plugins {
			if p.Name == name && (p.Enabled == nil || *p.Enabled) {
				enabled = true
			}
		}
		if now && !enabled {
			return nil, userErrorf("plugin %s is not enabled on cluster %s (spec.plugins): the operator would fail the backup; enable the plugin on the cluster first", name, cl.Name)
		}
		for k, v := range o.PluginParameters {
			if k == "" || len(k) > 253 || len(v) > 1024 {
				return nil, userErrorf("plugin_parameters: keys must be 1-253 characters and values at most 1024")
			}
		}
		r.plugin = &cnpgv1.BackupPluginConfiguration{Name: name, Parameters: o.PluginParameters}
	default:
		return nil, userErrorf("method must be plugin, barmanObjectStore or volumeSnapshot (got %q)", o.Method)
	}
	var err error
	if r.target, err = backupTarget(o.Target); err != nil {
		return nil, err
	}
	if o.ImmediateCheckpoint != nil || o.WaitForArchive != nil {
		if o.Online != nil && !*o.Online {
			return nil, userErrorf("immediate_checkpoint and wait_for_archive apply to online backups only (online is false)")
		}
		r.onCfg = &cnpgv1.OnlineConfiguration{ImmediateCheckpoint: o.ImmediateCheckpoint, WaitForArchive: o.WaitForArchive}
	}
	return r, nil
}

type createBackupArgs struct {
	ClusterName string `json:"cluster_name"`
	BackupName  string `json:"backup_name"`
	backupOptions
	Namespace string `json:"namespace"`
	DryRun    bool   `json:"dry_run"`
}

func backupTarget(t string) (cnpgv1.BackupTarget, error) {
	switch t {
	case "":
		return "", nil
	case string(cnpgv1.BackupTargetPrimary), string(cnpgv1.BackupTargetStandby):
		return cnpgv1.BackupTarget(t), nil
	}
	return "", userErrorf("target must be \"prefer-standby\" or \"primary\" (got %q)", t)
}

func createBackup(ctx context.Context, c *call, a *createBackupArgs) (*Result, error) {
	ns, cl, err := c.namespacedCluster(ctx, a.Namespace, a.ClusterName)
	if err != nil {
		return nil, err
	}
	r, err := a.resolve(cl, true)
	if err != nil {
		return nil, err
	}
	name := a.BackupName
	if name == "" {
		name = a.ClusterName + "-" + c.Now().UTC().Format("20060102150405")
		if len(name) > 63 {
			name = name[len(name)-63:]
			name = strings.TrimLeft(name, "-")
		}
	}
	if err := checkName("backup_name", name); err != nil {
		return nil, err
	}
	b := &cnpgv1.Backup{
		TypeMeta:   typeMeta(cnpgv1.BackupKind),
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: managedLabels(a.ClusterName)},
		Spec: cnpgv1.BackupSpec{Cluster: cnpgv1.LocalObjectReference{Name: a.ClusterName}, Method: r.method, Target: r.target, PluginConfiguration: r.plugin,
			Online: r.online, OnlineConfiguration: r.onCfg},
	}
	bSent, err := c.create(ctx, b, a.DryRun)
	if err != nil {
		return nil, err
	}
	obj := bSent
	return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("Backup %s of cluster %s requested (method %s); follow it with get_backup.", name, fmtObj(ns, a.ClusterName), r.method)),
		Data: map[string]any{"dry_run": a.DryRun, "action": "create", "object": obj}}, nil
}

type listBackupsArgs struct {
	ClusterName string `json:"cluster_name"`
	Namespace   string `json:"namespace"`
	Format      string `json:"format"`
}

func backupRow(b *cnpgv1.Backup) map[string]any {
	m := map[string]any{"name": b.Name, "cluster": b.Spec.Cluster.Name, "phase": string(b.Status.Phase), "method": string(firstNonEmpty(string(b.Status.Method), string(b.Spec.Method))),
		"target": string(b.Spec.Target), "error": b.Status.Error, "backup_id": b.Status.BackupID, "created": b.CreationTimestamp.UTC().Format(time.RFC3339)}
	if b.Status.StartedAt != nil {
		m["started_at"] = b.Status.StartedAt.UTC().Format(time.RFC3339)
	}
	if b.Status.StoppedAt != nil {
		m["stopped_at"] = b.Status.StoppedAt.UTC().Format(time.RFC3339)
	}
	return m
}

func listBackups(ctx context.Context, c *call, a *listBackupsArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if a.ClusterName != "" {
		if err := checkName("cluster_name", a.ClusterName); err != nil {
			return nil, err
		}
	}
	var list cnpgv1.BackupList
	if err := c.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	items := list.Items[:0:0]
	for _, b := range list.Items {
		if a.ClusterName == "" || b.Spec.Cluster.Name == a.ClusterName {
			items = append(items, b)
		}
	}
	sortNewest(items, func(b cnpgv1.Backup) time.Time { return b.CreationTimestamp.Time })
	items, truncated := limitList(items)
	var rows []any
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d backup(s) in %s%s:\n", len(items), ns, map[bool]string{true: " of cluster " + a.ClusterName, false: ""}[a.ClusterName != ""])
	for i := range items {
		rows = append(rows, backupRow(&items[i]))
		fmt.Fprintf(&sb, "  %s cluster=%s phase=%s method=%s %s\n", items[i].Name, items[i].Spec.Cluster.Name, firstNonEmpty(string(items[i].Status.Phase), "pending"), firstNonEmpty(string(items[i].Spec.Method), "barmanObjectStore"), items[i].Status.Error)
	}
	return &Result{Text: sb.String(), JSONText: a.Format == "json", Data: map[string]any{"namespace": ns, "count": len(rows), "backups": rows, "truncated": truncated}}, nil
}

type getBackupArgs struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Format    string `json:"format"`
}

func getBackup(ctx context.Context, c *call, a *getBackupArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if err := checkName("name", a.Name); err != nil {
		return nil, err
	}
	var b cnpgv1.Backup
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: a.Name}, &b); err != nil {
		return nil, err
	}
	row := backupRow(&b)
	row["namespace"] = ns
	row["begin_wal"], row["end_wal"], row["begin_lsn"], row["end_lsn"] = b.Status.BeginWal, b.Status.EndWal, b.Status.BeginLSN, b.Status.EndLSN
	row["destination_path"], row["server_name"] = b.Status.DestinationPath, b.Status.ServerName
	text := fmt.Sprintf("Backup %s of cluster %s: phase %s, method %s.", fmtObj(ns, a.Name), b.Spec.Cluster.Name, firstNonEmpty(string(b.Status.Phase), "pending (not picked up by the operator yet)"), firstNonEmpty(string(b.Spec.Method), "barmanObjectStore"))
	if b.Status.Error != "" {
		text += " Error: " + b.Status.Error
	}
	return &Result{Text: text, JSONText: a.Format == "json", Data: row}, nil
}
