package tools

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	"github.com/mark3labs/mcp-go/mcp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// restoreSource is the name of the external cluster a restored Cluster recovers from.
const restoreSource = "origin"

func restoreTools(d *Deps) []Tool {
	return []Tool{
		build(d, spec{
			name: "restore_postgres_cluster", title: "Restore a cluster (point-in-time recovery)", area: "backups",
			desc: "Create a NEW cluster from a backup (the existing one is never touched): from a Backup object (backup_name), from the object store of a cluster (source_cluster), " +
				"or, when the source cluster is gone, straight from a Barman Cloud plugin ObjectStore (object_store + server_name). " +
				"Recovers to the latest archived point, or to one target: target_time (RFC 3339, e.g. 2026-11-20T10:42:00Z), target_lsn (e.g. 0/3000060) or target_name (a restore point). " +
				"The target time is checked against the recoverability window first (see get_cluster_recoverability) and refused outside it. " +
				"dry_run returns the exact Cluster and the window it checked. Follow the restore with get_cluster_status (bootstrap runs as a 'full-recovery' job first).",
			calls: []string{"get clusters", "get backups", "list backups", "get objectstores.barmancloud.cnpg.io", "list pods", "get pods/proxy (primary /pg/status)", "create clusters"},
			params: []mcp.ToolOption{pName("name", "Name of the new cluster to create.", true),
				pName("source_cluster", "Cluster whose backups to restore (its plugin ObjectStore or in-tree barmanObjectStore).", false),
				pName("backup_name", "A completed Backup object to restore from (its cluster is the source).", false),
				pName("object_store", "Barman Cloud plugin ObjectStore to restore from when the source cluster no longer exists (with server_name).", false),
				mcp.WithString("server_name", mcp.MaxLength(253), mcp.Description("Server name (folder) in the object store; default: the source cluster's name or its plugin serverName.")),
				mcp.WithString("target_time", mcp.MaxLength(64), mcp.Description("Recover up to this time (RFC 3339 with zone, e.g. 2026-11-20T10:42:00Z). Omit all targets for the latest point.")),
				mcp.WithString("target_lsn", mcp.MaxLength(32), mcp.Description("Recover up to this WAL location (e.g. 0/3000060).")),
				mcp.WithString("target_name", mcp.MaxLength(63), mcp.Description("Recover up to this named restore point (pg_create_restore_point).")),
				mcp.WithBoolean("exclusive", mcp.Description("Stop just before the target instead of just after it (default false).")),
				mcp.WithInteger("instances", mcp.DefaultNumber(1), mcp.Min(1), mcp.Max(10), mcp.Description("Instances of the new cluster.")),
				mcp.WithString("storage_size", mcp.Description("PVC size per instance; default: the source cluster's (10Gi without one).")),
				pNamespace(), pDryRun()},
		}, restoreCluster),
	}
}

type restoreArgs struct {
	Name          string `json:"name"`
	SourceCluster string `json:"source_cluster"`
	BackupName    string `json:"backup_name"`
	ObjectStore   string `json:"object_store"`
	ServerName    string `json:"server_name"`
	TargetTime    string `json:"target_time"`
	TargetLSN     string `json:"target_lsn"`
	TargetName    string `json:"target_name"`
	Exclusive     *bool  `json:"exclusive"`
	Instances     *int   `json:"instances"`
	StorageSize   string `json:"storage_size"`
	Namespace     string `json:"namespace"`
	DryRun        bool   `json:"dry_run"`
}

var lsnRE = regexp.MustCompile(`^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$`)

// restorePlan is what restoreCluster decided, before it becomes a Cluster.
type restorePlan struct {
	source  *cnpgv1.Cluster // nil when restoring straight from an ObjectStore
	backup  *cnpgv1.Backup
	cfg     backupConfig
	window  *recoveryWindow
	target  *cnpgv1.RecoveryTarget
	targetT *time.Time
}

func restoreCluster(ctx context.Context, c *call, a *restoreArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if err := checkName("name", a.Name); err != nil {
		return nil, err
	}
	p := &restorePlan{}
	if p.target, p.targetT, err = recoveryTarget(a); err != nil {
		return nil, err
	}
	n := 0
	for _, s := range []string{a.SourceCluster, a.BackupName, a.ObjectStore} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, userErrorf("name exactly one source: backup_name (a Backup object), source_cluster (that cluster's object store) or object_store (+ server_name, a Barman Cloud plugin ObjectStore); got %d", n)
	}
	if a.ServerName != "" && a.ObjectStore == "" {
		return nil, userErrorf("server_name goes with object_store; with source_cluster or backup_name it comes from the source cluster's configuration")
	}
	switch {
	case a.BackupName != "":
		if err := checkName("backup_name", a.BackupName); err != nil {
			return nil, err
		}
		var b cnpgv1.Backup
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: a.BackupName}, &b); err != nil {
			return nil, err
		}
		if b.Status.Phase != cnpgv1.BackupPhaseCompleted {
			return nil, userErrorf("Backup %s is %q, not completed: restore from a completed backup (list_backups)", a.BackupName, firstNonEmpty(string(b.Status.Phase), "pending"))
		}
		if b.Spec.Method == cnpgv1.BackupMethodVolumeSnapshot || b.Status.Method == cnpgv1.BackupMethodVolumeSnapshot {
			return nil, userErrorf("Backup %s is a volume snapshot: this tool restores object-store backups (Barman Cloud plugin or barmanObjectStore) only", a.BackupName)
		}
		p.backup = &b
		if p.source, err = c.getCluster(ctx, ns, b.Spec.Cluster.Name); err != nil {
			if !isNotFound(err) {
				return nil, err
			}
			return nil, userErrorf("Backup %s belongs to cluster %s, which no longer exists: restore with object_store and server_name instead", a.BackupName, b.Spec.Cluster.Name)
		}
	case a.SourceCluster != "":
		if p.source, err = c.getCluster(ctx, ns, a.SourceCluster); err != nil {
			return nil, err
		}
	default:
		if err := checkName("object_store", a.ObjectStore); err != nil {
			return nil, err
		}
		if a.ServerName == "" {
			return nil, userErrorf("object_store needs server_name: the folder of the original cluster in the store (its name, unless its plugin entry set serverName)")
		}
		p.cfg = backupConfig{Method: string(cnpgv1.BackupMethodPlugin), Plugin: BarmanCloudPlugin, ObjectStore: a.ObjectStore, ServerName: a.ServerName}
		if p.window, err = c.objectStoreWindow(ctx, ns, a.ObjectStore, a.ServerName); err != nil {
			return nil, err
		}
	}
	if p.source != nil {
		if p.source.Name == a.Name {
			return nil, userErrorf("the restored cluster needs a new name: %s is the source (restoring in place is not supported; delete_postgres_cluster first if you really mean to replace it)", a.Name)
		}
		p.cfg = clusterBackupConfig(p.source)
		if b := p.backup; b != nil {
			// the Backup's own method decides how it restores, whatever the cluster uses now
			switch firstNonEmpty(string(b.Status.Method), string(b.Spec.Method), string(cnpgv1.BackupMethodBarmanObjectStore)) {
			case string(cnpgv1.BackupMethodBarmanObjectStore):
				// recovery.backup.name: the operator takes the store from the Backup's status
				p.cfg = backupConfig{Method: string(cnpgv1.BackupMethodBarmanObjectStore), ServerName: firstNonEmpty(b.Status.ServerName, p.source.Name), InTree: p.cfg.InTree}
			case string(cnpgv1.BackupMethodPlugin):
				if p.cfg.Method != string(cnpgv1.BackupMethodPlugin) || b.Spec.PluginConfiguration == nil || b.Spec.PluginConfiguration.Name != p.cfg.Plugin {
					return nil, userErrorf("Backup %s was taken by a plugin the cluster %s no longer has enabled: restore with object_store and server_name instead", b.Name, p.source.Name)
				}
			}
		}
		if p.cfg.Method == "" {
			return nil, userErrorf("cluster %s has no object-store backups configured (no Barman Cloud plugin in spec.plugins, no spec.backup.barmanObjectStore): nothing to restore from", fmtObj(ns, p.source.Name))
		}
		if p.window, _, err = c.window(ctx, ns, p.source, p.cfg); err != nil {
			return nil, err
		}
		arch := c.archivingState(ctx, ns, p.source, p.cfg)
		if t, err := time.Parse(time.RFC3339Nano, arch.LastArchivedWALTime); err == nil {
			p.window.LastArchivedWALTime = ptr(t.UTC())
		}
	}
	if err := p.check(c.Now()); err != nil {
		return nil, err
	}
	cl, err := p.cluster(ns, a)
	if err != nil {
		return nil, err
	}
	sent, err := c.create(ctx, cl, a.DryRun)
	if err != nil {
		return nil, err
	}
	what := "the latest archived point"
	switch {
	case p.targetT != nil:
		what = "time " + p.targetT.Format(time.RFC3339Nano)
	case a.TargetLSN != "":
		what = "LSN " + a.TargetLSN
	case a.TargetName != "":
		what = "restore point " + a.TargetName
	}
	from := fmt.Sprintf("%s %s (server %s)", map[bool]string{true: "ObjectStore", false: "object store"}[p.cfg.ObjectStore != ""], firstNonEmpty(p.cfg.ObjectStore, destination(p.cfg)), p.cfg.ServerName)
	if p.backup != nil {
		from = fmt.Sprintf("Backup %s (ID %s)", p.backup.Name, firstNonEmpty(p.backup.Status.BackupID, "-"))
	}
	text := fmt.Sprintf("Cluster %s restores from %s to %s. Window checked (%s): first recoverability point %s, last archived WAL %s.",
		fmtObj(ns, a.Name), from, what, p.window.Source, fmtTime(p.window.FirstRecoverabilityPoint, "unknown"), fmtTime(p.window.LastArchivedWALTime, "unknown"))
	if a.DryRun {
		text += "\n" + yamlish(sent)
	} else {
		text += " Follow it with get_cluster_status (a full-recovery job runs first)."
	}
	return &Result{Text: dryRunText(a.DryRun, text), Data: map[string]any{"dry_run": a.DryRun, "action": "create", "object": sent, "window": toMap(p.window),
		"source": map[string]any{"cluster": clusterName(p.source), "backup": backupName(p.backup), "method": p.cfg.Method, "plugin": p.cfg.Plugin, "object_store": p.cfg.ObjectStore, "server_name": p.cfg.ServerName}}}, nil
}

func clusterName(cl *cnpgv1.Cluster) string {
	if cl == nil {
		return ""
	}
	return cl.Name
}

func backupName(b *cnpgv1.Backup) string {
	if b == nil {
		return ""
	}
	return b.Name
}

func destination(cfg backupConfig) string {
	if cfg.InTree != nil {
		return cfg.InTree.DestinationPath
	}
	return "-"
}

// recoveryTarget validates the target arguments (at most one).
func recoveryTarget(a *restoreArgs) (*cnpgv1.RecoveryTarget, *time.Time, error) {
	set := 0
	for _, s := range []string{a.TargetTime, a.TargetLSN, a.TargetName} {
		if s != "" {
			set++
		}
	}
	if set > 1 {
		return nil, nil, userErrorf("give at most one recovery target: target_time, target_lsn or target_name (none = the latest archived point)")
	}
	if a.Exclusive != nil && set == 0 {
		return nil, nil, userErrorf("exclusive needs a target (target_time, target_lsn or target_name)")
	}
	rt := &cnpgv1.RecoveryTarget{Exclusive: a.Exclusive}
	var at *time.Time
	switch {
	case a.TargetTime != "":
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(a.TargetTime))
		if err != nil {
			return nil, nil, userErrorf("target_time %q is not an RFC 3339 time with a zone, e.g. 2026-11-20T10:42:00Z or 2026-11-20T11:42:00+01:00", a.TargetTime)
		}
		at = ptr(t.UTC())
		rt.TargetTime = at.Format(time.RFC3339Nano)
	case a.TargetLSN != "":
		if !lsnRE.MatchString(a.TargetLSN) {
			return nil, nil, userErrorf("target_lsn %q is not a WAL location such as 0/3000060", a.TargetLSN)
		}
		rt.TargetLSN = strings.ToUpper(a.TargetLSN)
	case a.TargetName != "":
		rt.TargetName = a.TargetName
	default:
		return nil, nil, nil
	}
	return rt, at, nil
}

// check refuses targets outside the recoverability window.
func (p *restorePlan) check(now time.Time) error {
	w := p.window
	if w.FirstRecoverabilityPoint == nil && p.backup == nil {
		return userErrorf("no completed base backup is known for server %q (%s): take one with create_backup and wait for it to complete, then restore", p.cfg.ServerName, firstNonEmpty(w.Note, w.Source))
	}
	if p.backup != nil && p.backup.Status.StoppedAt != nil && p.targetT != nil && p.targetT.Before(p.backup.Status.StoppedAt.Time) {
		return userErrorf("target_time %s is before Backup %s ended (%s): a base backup can only be rolled forward; choose a later time or an older backup", p.targetT.Format(time.RFC3339), p.backup.Name, p.backup.Status.StoppedAt.UTC().Format(time.RFC3339))
	}
	if p.targetT == nil {
		return nil
	}
	if w.FirstRecoverabilityPoint != nil && p.targetT.Before(*w.FirstRecoverabilityPoint) {
		return userErrorf("target_time %s is before the first recoverability point %s (%s): choose a time inside the window (get_cluster_recoverability)", p.targetT.Format(time.RFC3339), w.FirstRecoverabilityPoint.Format(time.RFC3339), w.Source)
	}
	if p.targetT.After(now) {
		return userErrorf("target_time %s is in the future (now %s)", p.targetT.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if w.LastArchivedWALTime != nil && p.targetT.After(*w.LastArchivedWALTime) {
		return userErrorf("target_time %s is after the last archived WAL (%s): WAL up to that time is not in the object store yet, and PostgreSQL would stop with 'recovery ended before configured recovery target was reached'. "+
			"Wait for archiving (get_cluster_recoverability), or choose an earlier time, or omit the target for the latest point", p.targetT.Format(time.RFC3339Nano), w.LastArchivedWALTime.Format(time.RFC3339Nano))
	}
	return nil
}

// cluster builds the new Cluster.
func (p *restorePlan) cluster(ns string, a *restoreArgs) (*cnpgv1.Cluster, error) {
	instances := 1
	if a.Instances != nil {
		instances = *a.Instances
	}
	if err := checkRange("instances", instances, 1, 10); err != nil {
		return nil, err
	}
	size := a.StorageSize
	cl := &cnpgv1.Cluster{TypeMeta: typeMeta(cnpgv1.ClusterKind), ObjectMeta: metav1.ObjectMeta{Name: a.Name, Namespace: ns, Labels: managedLabels("")}}
	if s := p.source; s != nil {
		size = firstNonEmpty(size, s.Spec.StorageConfiguration.Size)
		cl.Spec.ImageName, cl.Spec.ImagePullPolicy, cl.Spec.ImageCatalogRef = s.Spec.ImageName, s.Spec.ImagePullPolicy, s.Spec.ImageCatalogRef
		cl.Spec.StorageConfiguration.StorageClass = s.Spec.StorageConfiguration.StorageClass
	}
	size = firstNonEmpty(size, "10Gi")
	if _, err := checkQuantity("storage_size", size); err != nil {
		return nil, err
	}
	cl.Spec.Instances, cl.Spec.StorageConfiguration.Size = instances, size
	rec := &cnpgv1.BootstrapRecovery{RecoveryTarget: p.target}
	switch {
	case p.backup != nil && p.cfg.Method == string(cnpgv1.BackupMethodBarmanObjectStore):
		// in-tree: the Backup object carries the store; WAL comes from the same place
		rec.Backup = &cnpgv1.BackupSource{LocalObjectReference: cnpgv1.LocalObjectReference{Name: p.backup.Name}}
	case p.cfg.Method == string(cnpgv1.BackupMethodPlugin):
		rec.Source = restoreSource
		cl.Spec.ExternalClusters = []cnpgv1.ExternalCluster{{Name: restoreSource, PluginConfiguration: &cnpgv1.PluginConfiguration{
			Name: p.cfg.Plugin, Parameters: map[string]string{"barmanObjectName": p.cfg.ObjectStore, "serverName": p.cfg.ServerName}}}}
		if p.backup != nil {
			if p.backup.Status.BackupID == "" {
				return nil, userErrorf("Backup %s has no backup ID in its status; restore with source_cluster instead", p.backup.Name)
			}
			if rec.RecoveryTarget == nil {
				rec.RecoveryTarget = &cnpgv1.RecoveryTarget{}
			}
			rec.RecoveryTarget.BackupID = p.backup.Status.BackupID
		}
	default:
		rec.Source = restoreSource
		store := p.cfg.InTree.DeepCopy()
		store.ServerName = p.cfg.ServerName
		cl.Spec.ExternalClusters = []cnpgv1.ExternalCluster{{Name: restoreSource, BarmanObjectStore: store}}
	}
	cl.Spec.Bootstrap = &cnpgv1.BootstrapConfiguration{Recovery: rec}
	return cl, nil
}
