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
			desc: "Start an on-demand backup by creating a Backup object (spec is immutable). method: barmanObjectStore (the cluster's object store), volumeSnapshot, or plugin (with plugin_name). " +
				"target: prefer-standby (default) or primary.",
			calls: []string{"get clusters", "create backups"},
			params: []mcp.ToolOption{pName("cluster_name", "Cluster to back up.", true),
				pName("backup_name", "Name of the Backup object; default <cluster>-<UTC timestamp>.", false),
				mcp.WithString("method", mcp.Enum("barmanObjectStore", "volumeSnapshot", "plugin"), mcp.DefaultString("barmanObjectStore"), mcp.Description("Backup method.")),
				mcp.WithString("target", mcp.Enum("prefer-standby", "primary"), mcp.Description("Where to take the backup; default: the cluster's setting.")),
				mcp.WithString("plugin_name", mcp.MaxLength(253), mcp.Description("CNPG-I plugin name, required with method plugin (e.g. barman-cloud.cloudnative-pg.io).")),
				mcp.WithBoolean("online", mcp.Description("volumeSnapshot only: online (hot) backup; default true.")),
				mcp.WithBoolean("immediate_checkpoint", mcp.Description("Online backups: request an immediate checkpoint.")),
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

type createBackupArgs struct {
	ClusterName         string `json:"cluster_name"`
	BackupName          string `json:"backup_name"`
	Method              string `json:"method"`
	Target              string `json:"target"`
	PluginName          string `json:"plugin_name"`
	Online              *bool  `json:"online"`
	ImmediateCheckpoint *bool  `json:"immediate_checkpoint"`
	Namespace           string `json:"namespace"`
	DryRun              bool   `json:"dry_run"`
}

func backupMethod(method, plugin string) (cnpgv1.BackupMethod, *cnpgv1.BackupPluginConfiguration, error) {
	m := cnpgv1.BackupMethod(firstNonEmpty(method, string(cnpgv1.BackupMethodBarmanObjectStore)))
	switch m {
	case cnpgv1.BackupMethodBarmanObjectStore, cnpgv1.BackupMethodVolumeSnapshot:
		if plugin != "" {
			return "", nil, userErrorf("plugin_name only goes with method: \"plugin\"")
		}
		return m, nil, nil
	case cnpgv1.BackupMethodPlugin:
		if plugin == "" {
			return "", nil, userErrorf("method \"plugin\" needs plugin_name, e.g. \"barman-cloud.cloudnative-pg.io\"")
		}
		return m, &cnpgv1.BackupPluginConfiguration{Name: plugin}, nil
	}
	return "", nil, userErrorf("method must be barmanObjectStore, volumeSnapshot or plugin (got %q)", method)
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
	method, plugin, err := backupMethod(a.Method, a.PluginName)
	if err != nil {
		return nil, err
	}
	target, err := backupTarget(a.Target)
	if err != nil {
		return nil, err
	}
	if method == cnpgv1.BackupMethodBarmanObjectStore && (cl.Spec.Backup == nil || cl.Spec.Backup.BarmanObjectStore == nil) {
		return nil, userErrorf("cluster %s has no spec.backup.barmanObjectStore, so a barmanObjectStore backup would fail; use method volumeSnapshot or plugin, or configure the object store first", fmtObj(ns, a.ClusterName))
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
		Spec:       cnpgv1.BackupSpec{Cluster: cnpgv1.LocalObjectReference{Name: a.ClusterName}, Method: method, Target: target, PluginConfiguration: plugin, Online: a.Online},
	}
	if a.ImmediateCheckpoint != nil {
		b.Spec.OnlineConfiguration = &cnpgv1.OnlineConfiguration{ImmediateCheckpoint: a.ImmediateCheckpoint}
	}
	bSent, err := c.create(ctx, b, a.DryRun)
	if err != nil {
		return nil, err
	}
	obj := bSent
	return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("Backup %s of cluster %s requested (method %s); follow it with get_backup.", name, fmtObj(ns, a.ClusterName), method)),
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
