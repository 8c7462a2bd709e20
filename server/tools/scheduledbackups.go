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

const scheduledBackupKind = "ScheduledBackup"

func scheduledBackupTools(d *Deps) []Tool {
	suspendTool := func(name, title string, suspend bool) Tool {
		verb := "Resume"
		if suspend {
			verb = "Suspend"
		}
		return build(d, spec{
			name: name, title: title, area: "backups", idempotent: true,
			desc:   verb + " a ScheduledBackup with a merge patch of spec.suspend.",
			calls:  []string{"get scheduledbackups", "patch scheduledbackups (merge: spec.suspend)"},
			params: []mcp.ToolOption{pName("name", "ScheduledBackup name.", true), pNamespace(), pDryRun()},
		}, func(ctx context.Context, c *call, a *suspendArgs) (*Result, error) {
			return setSuspended(ctx, c, a, suspend)
		})
	}
	return []Tool{
		build(d, spec{
			name: "create_scheduled_backup", title: "Schedule backups", area: "backups",
			desc: "Create a ScheduledBackup. schedule has six fields with seconds first (\"0 0 2 * * *\" = 02:00 daily), unlike Kubernetes CronJobs. " +
				"backup_owner_reference: none, self or cluster (which object owns the Backups it creates).",
			calls: []string{"get clusters", "create scheduledbackups"},
			params: []mcp.ToolOption{pName("cluster_name", "Cluster to back up.", true), pName("name", "ScheduledBackup name.", true),
				mcp.WithString("schedule", mcp.Required(), mcp.Description("Six-field cron (seconds minutes hours day-of-month month day-of-week) or @daily/@hourly/@every <duration>.")),
				pBackupMethod(), pBackupTarget(), pPluginName(), pPluginParameters(), pOnline(), pImmediateCheckpoint(), pWaitForArchive(),
				mcp.WithBoolean("immediate", mcp.DefaultBool(false), mcp.Description("Also take one backup right after creation.")),
				mcp.WithBoolean("suspend", mcp.DefaultBool(false), mcp.Description("Create it suspended.")),
				mcp.WithString("backup_owner_reference", mcp.Enum("none", "self", "cluster"), mcp.DefaultString("none"), mcp.Description("Owner of the Backup objects it creates.")),
				pNamespace(), pDryRun()},
		}, createScheduledBackup),
		build(d, spec{
			name: "list_scheduled_backups", title: "List scheduled backups", area: "backups", readOnly: true, idempotent: true,
			desc:   "List ScheduledBackups (optionally of one cluster) with schedule, suspended flag, last and next schedule time.",
			calls:  []string{"list scheduledbackups"},
			params: []mcp.ToolOption{pName("cluster_name", "Only those of this cluster.", false), pNamespace(), pFormat()},
		}, listScheduledBackups),
		suspendTool("suspend_scheduled_backup", "Suspend scheduled backups", true),
		suspendTool("resume_scheduled_backup", "Resume scheduled backups", false),
	}
}

type createScheduledArgs struct {
	ClusterName string `json:"cluster_name"`
	Name        string `json:"name"`
	Schedule    string `json:"schedule"`
	backupOptions
	Immediate            bool   `json:"immediate"`
	Suspend              bool   `json:"suspend"`
	BackupOwnerReference string `json:"backup_owner_reference"`
	Namespace            string `json:"namespace"`
	DryRun               bool   `json:"dry_run"`
}

func createScheduledBackup(ctx context.Context, c *call, a *createScheduledArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if err := checkName("name", a.Name); err != nil {
		return nil, err
	}
	if err := checkCron(a.Schedule); err != nil {
		return nil, err
	}
	owner := firstNonEmpty(a.BackupOwnerReference, "none")
	if owner != "none" && owner != "self" && owner != "cluster" {
		return nil, userErrorf("backup_owner_reference must be none, self or cluster (got %q)", owner)
	}
	cl, err := c.getCluster(ctx, ns, a.ClusterName)
	if err != nil {
		return nil, err
	}
	r, err := a.resolve(cl, false)
	if err != nil {
		return nil, err
	}
	sb := &cnpgv1.ScheduledBackup{
		TypeMeta:   typeMeta(scheduledBackupKind),
		ObjectMeta: metav1.ObjectMeta{Name: a.Name, Namespace: ns, Labels: managedLabels(a.ClusterName)},
		Spec: cnpgv1.ScheduledBackupSpec{Schedule: strings.TrimSpace(a.Schedule), Cluster: cnpgv1.LocalObjectReference{Name: a.ClusterName},
			Method: r.method, Target: r.target, PluginConfiguration: r.plugin, Online: r.online, OnlineConfiguration: r.onCfg,
			Immediate: &a.Immediate, Suspend: &a.Suspend, BackupOwnerReference: owner},
	}
	sbSent, err := c.create(ctx, sb, a.DryRun)
	if err != nil {
		return nil, err
	}
	return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("ScheduledBackup %s for cluster %s created with schedule %q (suspended: %s).", fmtObj(ns, a.Name), a.ClusterName, sb.Spec.Schedule, yesNo(a.Suspend))),
		Data: map[string]any{"dry_run": a.DryRun, "action": "create", "object": sbSent}}, nil
}

func listScheduledBackups(ctx context.Context, c *call, a *listBackupsArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	var list cnpgv1.ScheduledBackupList
	if err := c.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var rows []any
	var b strings.Builder
	fmt.Fprintf(&b, "Scheduled backups in %s:\n", ns)
	for _, s := range list.Items {
		if a.ClusterName != "" && s.Spec.Cluster.Name != a.ClusterName {
			continue
		}
		suspended := s.Spec.Suspend != nil && *s.Spec.Suspend
		row := map[string]any{"name": s.Name, "cluster": s.Spec.Cluster.Name, "schedule": s.Spec.Schedule, "suspended": suspended, "method": string(s.Spec.Method), "error": s.Status.Error}
		if t := s.Status.LastScheduleTime; t != nil {
			row["last_schedule_time"] = t.UTC().Format(time.RFC3339)
		}
		if t := s.Status.NextScheduleTime; t != nil {
			row["next_schedule_time"] = t.UTC().Format(time.RFC3339)
		}
		rows = append(rows, row)
		fmt.Fprintf(&b, "  %s cluster=%s schedule=%q suspended=%s\n", s.Name, s.Spec.Cluster.Name, s.Spec.Schedule, yesNo(suspended))
	}
	rows, truncated := limitList(rows)
	return &Result{Text: b.String(), JSONText: a.Format == "json", Data: map[string]any{"namespace": ns, "count": len(rows), "scheduled_backups": rows, "truncated": truncated}}, nil
}

type suspendArgs struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	DryRun    bool   `json:"dry_run"`
}

func setSuspended(ctx context.Context, c *call, a *suspendArgs, suspend bool) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if err := checkName("name", a.Name); err != nil {
		return nil, err
	}
	var sb cnpgv1.ScheduledBackup
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: a.Name}, &sb); err != nil {
		return nil, err
	}
	patch, err := c.mergePatch(ctx, &sb, map[string]any{"spec": map[string]any{"suspend": suspend}}, a.DryRun)
	if err != nil {
		return nil, err
	}
	state := "resumed"
	if suspend {
		state = "suspended"
	}
	return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("ScheduledBackup %s %s.", fmtObj(ns, a.Name), state)),
		Data: map[string]any{"dry_run": a.DryRun, "name": a.Name, "namespace": ns, "suspended": suspend, "patch": patch, "patch_type": mergePatchType}}, nil
}
