package tools

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	"github.com/mark3labs/mcp-go/mcp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func clusterTools(d *Deps) []Tool {
	return []Tool{
		build(d, spec{
			name: "list_postgres_clusters", title: "List PostgreSQL clusters", area: "clusters", readOnly: true, idempotent: true,
			desc:  "List the CloudNativePG clusters in a namespace with phase, ready instances and current primary.",
			calls: []string{"list clusters", "list namespaces (fallback of all_namespaces)"},
			params: []mcp.ToolOption{pNamespace(),
				mcp.WithBoolean("all_namespaces", mcp.DefaultBool(false), mcp.Description("List in every namespace you may see; those you may not are named as skipped.")),
				mcp.WithString("detail_level", mcp.Enum("concise", "detailed"), mcp.DefaultString("concise"), mcp.Description("'detailed' adds storage, image and conditions.")),
				pFormat()},
		}, listClusters),
		build(d, spec{
			name: "get_cluster_status", title: "Get cluster status", area: "clusters", readOnly: true, idempotent: true,
			desc: "Show the status of one CloudNativePG cluster: phase, instances, primary, services, conditions and, in detail, storage, managed roles and what each instance manager reports about its instance " +
				"(role, timeline, replication lag in bytes and seconds, WAL archiving, connections vs max_connections, oldest transaction age, transaction ID wraparound distance), " +
				"read like `kubectl cnpg status` through the API server's pods/proxy. Backups and the recovery window: get_cluster_recoverability.",
			calls: []string{"get clusters", "list pods (detailed)", "get pods/proxy (detailed: instance manager /pg/status, /metrics)"},
			params: []mcp.ToolOption{pName("name", "Cluster name.", true), pNamespace(),
				mcp.WithString("detail_level", mcp.Enum("concise", "detailed"), mcp.DefaultString("concise"), mcp.Description("'detailed' adds conditions, storage, roles and each instance manager's report.")),
				pFormat()},
		}, getClusterStatus),
		build(d, spec{
			name: "create_postgres_cluster", title: "Create a PostgreSQL cluster", area: "clusters",
			desc:  "Create a CloudNativePG Cluster (high availability with instances >= 2). Use dry_run to preview the exact object. With wait, polls until the cluster is healthy (bounded by timeout).",
			calls: []string{"create clusters", "get clusters (wait)"},
			params: []mcp.ToolOption{pName("name", "Name of the new cluster.", true),
				mcp.WithInteger("instances", mcp.DefaultNumber(3), mcp.Min(1), mcp.Max(10), mcp.Description("Number of PostgreSQL instances (1 for development, 3 for HA).")),
				mcp.WithString("storage_size", mcp.DefaultString("10Gi"), mcp.Description("PVC size per instance, a Kubernetes quantity such as 10Gi.")),
				mcp.WithString("postgres_version", mcp.Description("PostgreSQL major version such as \"17\". Omit to use the operator's default image. Needs the server's image template or image catalog setting.")),
				mcp.WithString("storage_class", mcp.Description("StorageClass for the PVCs; omit for the cluster default.")),
				mcp.WithBoolean("wait", mcp.DefaultBool(false), mcp.Description("Wait until the cluster reports a healthy phase.")),
				mcp.WithInteger("timeout", mcp.Min(30), mcp.Max(600), mcp.Description("Seconds to wait when wait is true (default 60 per instance, 30-600).")),
				pNamespace(), pDryRun()},
		}, createCluster),
		build(d, spec{
			name: "scale_postgres_cluster", title: "Scale a cluster", area: "clusters", idempotent: true,
			desc:  "Change the number of instances of a cluster with a merge patch of spec.instances (the operator adds or removes replicas; the primary is kept).",
			calls: []string{"get clusters", "patch clusters (merge: spec.instances)"},
			params: []mcp.ToolOption{pName("name", "Cluster name.", true),
				mcp.WithInteger("instances", mcp.Required(), mcp.Min(1), mcp.Max(10), mcp.Description("New number of instances (1-10).")),
				pNamespace(), pDryRun()},
		}, scaleCluster),
		build(d, spec{
			name: "delete_postgres_cluster", title: "Delete a cluster", area: "clusters", destructive: true, idempotent: true,
			desc:  "Delete a CloudNativePG cluster and the role password Secrets this server created for it. All data is lost unless backed up; PVCs follow their reclaim policy. Destructive: needs confirmation.",
			calls: []string{"get clusters", "list secrets (labels managed-by=cnpg-mcp, cnpg.io/cluster)", "delete clusters", "delete secrets"},
			params: []mcp.ToolOption{pName("name", "Cluster name.", true),
				mcp.WithBoolean("confirm_deletion", mcp.DefaultBool(false), mcp.Description("Upstream name of confirm; either may be used.")),
				pConfirm(""), pNamespace(), pDryRun()},
		}, deleteCluster),
	}
}

type listClustersArgs struct {
	Namespace     string `json:"namespace"`
	AllNamespaces bool   `json:"all_namespaces"`
	DetailLevel   string `json:"detail_level"`
	Format        string `json:"format"`
}

func listClusters(ctx context.Context, c *call, a *listClustersArgs) (*Result, error) {
	var all []cnpgv1.Cluster
	var where, footer string
	data := map[string]any{}
	if a.AllNamespaces {
		if a.Namespace != "" {
			return nil, userErrorf("give either namespace or all_namespaces: true, not both")
		}
		listed, skipped, err := c.listEverywhere(ctx, "clusters.postgresql.cnpg.io", func(ns string) error {
			var list cnpgv1.ClusterList
			var opts []client.ListOption
			if ns != "" {
				opts = append(opts, client.InNamespace(ns))
			}
			if err := c.Client.List(ctx, &list, opts...); err != nil {
				return err
			}
			all = append(all, list.Items...)
			return nil
		})
		if err != nil {
			return nil, err
		}
		where = "all namespaces"
		if listed != nil || len(skipped) > 0 {
			where = "namespaces " + joinOr(listed, "(none)")
		}
		if skipped == nil {
			skipped = []skippedNamespace{}
		}
		data["namespaces"], data["skipped_namespaces"], footer = listed, skipped, skippedText(skipped)
	} else {
		ns, err := c.namespace(a.Namespace)
		if err != nil {
			return nil, err
		}
		var list cnpgv1.ClusterList
		if err := c.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return nil, err
		}
		all, where, data["namespace"] = list.Items, "namespace "+ns, ns
	}
	items, truncated := limitList(all)
	detailed := a.DetailLevel == "detailed"
	out := make([]any, 0, len(items))
	var b strings.Builder
	fmt.Fprintf(&b, "%d PostgreSQL cluster(s) in %s.\n", len(all), where)
	for i := range items {
		out = append(out, clusterSummary(&items[i], detailed))
		b.WriteString(clusterText(&items[i], detailed))
	}
	b.WriteString(footer)
	data["count"], data["clusters"], data["truncated"] = len(all), out, truncated
	return &Result{Text: b.String(), JSONText: a.Format == "json", Data: data}, nil
}

type getClusterArgs struct {
	Name        string `json:"name"`
	Namespace   string `json:"namespace"`
	DetailLevel string `json:"detail_level"`
	Format      string `json:"format"`
}

func getClusterStatus(ctx context.Context, c *call, a *getClusterArgs) (*Result, error) {
	_, cl, err := c.namespacedCluster(ctx, a.Namespace, a.Name)
	if err != nil {
		return nil, err
	}
	detailed := a.DetailLevel == "detailed"
	text, data := clusterText(cl, detailed), clusterSummary(cl, detailed)
	if detailed {
		pods, err := c.instancePods(ctx, cl.Namespace, cl.Name)
		if err != nil {
			return nil, err
		}
		hs := c.instancesHealth(ctx, cl, pods)
		data["instances_health"] = hs
		text += healthText(hs)
	}
	return &Result{Text: text, JSONText: a.Format == "json", Data: data}, nil
}

func clusterSummary(cl *cnpgv1.Cluster, detailed bool) map[string]any {
	st := cl.Status
	m := map[string]any{
		"name": cl.Name, "namespace": cl.Namespace,
		"instances": cl.Spec.Instances, "ready_instances": st.ReadyInstances,
		"phase": st.Phase, "healthy": st.Phase == cnpgv1.PhaseHealthy,
		"current_primary": st.CurrentPrimary, "target_primary": st.TargetPrimary,
		"write_service": st.WriteService, "read_service": st.ReadService,
		"hibernated":       cl.Annotations[AnnotationHibernation] == "on",
		"fenced_instances": cl.Annotations[AnnotationFenced],
	}
	if st.PhaseReason != "" {
		m["phase_reason"] = st.PhaseReason
	}
	if detailed {
		m["image"] = firstNonEmpty(st.Image, cl.Spec.ImageName)
		m["storage_size"] = cl.Spec.StorageConfiguration.Size
		if cl.Spec.StorageConfiguration.StorageClass != nil {
			m["storage_class"] = *cl.Spec.StorageConfiguration.StorageClass
		}
		m["instance_names"] = st.InstanceNames
		m["instances_status"] = st.InstancesStatus
		m["timeline_id"] = st.TimelineID
		m["conditions"] = conditionList(st.Conditions)
		// status.lastSuccessfulBackup and firstRecoverabilityPoint are deprecated in 1.30 and not
		// set for backup plugins: get_cluster_recoverability reads where the window really is.
		m["backup_method"] = clusterBackupConfig(cl).Method
		m["healthy_pvc"] = st.HealthyPVC
		m["resizing_pvc"] = st.ResizingPVC
		var roles []string
		if cl.Spec.Managed != nil {
			for _, r := range cl.Spec.Managed.Roles {
				roles = append(roles, r.Name)
			}
		}
		m["managed_roles"] = roles
		if cl.Spec.NodeMaintenanceWindow != nil {
			m["node_maintenance_in_progress"] = cl.Spec.NodeMaintenanceWindow.InProgress
		}
		m["postgresql_parameters"] = cl.Spec.PostgresConfiguration.Parameters
	}
	return m
}

func clusterText(cl *cnpgv1.Cluster, detailed bool) string {
	st := cl.Status
	var b strings.Builder
	fmt.Fprintf(&b, "Cluster %s/%s\n  phase: %s\n  instances: %d/%d ready\n  primary: %s\n", cl.Namespace, cl.Name,
		firstNonEmpty(st.Phase, "unknown (the operator has not reported status yet)"), st.ReadyInstances, cl.Spec.Instances, firstNonEmpty(st.CurrentPrimary, "none"))
	if st.TargetPrimary != "" && st.TargetPrimary != st.CurrentPrimary {
		fmt.Fprintf(&b, "  switchover in progress to: %s\n", st.TargetPrimary)
	}
	if detailed {
		fmt.Fprintf(&b, "  image: %s\n  storage: %s\n  services: rw=%s ro=%s\n", firstNonEmpty(st.Image, cl.Spec.ImageName, "operator default"),
			cl.Spec.StorageConfiguration.Size, firstNonEmpty(st.WriteService, "-"), firstNonEmpty(st.ReadService, "-"))
		for status, names := range st.InstancesStatus {
			fmt.Fprintf(&b, "  instances %s: %s\n", status, strings.Join(names, ", "))
		}
		for _, cond := range st.Conditions {
			fmt.Fprintf(&b, "  condition %s=%s (%s) %s\n", cond.Type, cond.Status, cond.Reason, cond.Message)
		}
		if m := clusterBackupConfig(cl).Method; m != "" {
			fmt.Fprintf(&b, "  backups: %s (window: get_cluster_recoverability)\n", m)
		}
	}
	return b.String()
}

func conditionList(conds []metav1.Condition) []map[string]any {
	out := make([]map[string]any, 0, len(conds))
	for _, c := range conds {
		out = append(out, map[string]any{"type": c.Type, "status": string(c.Status), "reason": c.Reason, "message": c.Message, "last_transition_time": c.LastTransitionTime.UTC().Format(time.RFC3339)})
	}
	return out
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

type createClusterArgs struct {
	Name            string  `json:"name"`
	Instances       *int    `json:"instances"`
	StorageSize     string  `json:"storage_size"`
	PostgresVersion string  `json:"postgres_version"`
	StorageClass    *string `json:"storage_class"`
	Wait            bool    `json:"wait"`
	Timeout         *int    `json:"timeout"`
	Namespace       string  `json:"namespace"`
	DryRun          bool    `json:"dry_run"`
}

var pgVersion = regexp.MustCompile(`^[1-9][0-9](\.[0-9]+)?$`)

func createCluster(ctx context.Context, c *call, a *createClusterArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if err := checkName("cluster name", a.Name); err != nil {
		return nil, err
	}
	instances := 3
	if a.Instances != nil {
		instances = *a.Instances
	}
	if err := checkRange("instances", instances, 1, 10); err != nil {
		return nil, err
	}
	size := firstNonEmpty(a.StorageSize, "10Gi")
	if _, err := checkQuantity("storage_size", size); err != nil {
		return nil, err
	}
	cl := &cnpgv1.Cluster{
		TypeMeta:   typeMeta(cnpgv1.ClusterKind),
		ObjectMeta: metav1.ObjectMeta{Name: a.Name, Namespace: ns, Labels: managedLabels("")},
		Spec: cnpgv1.ClusterSpec{
			Instances:            instances,
			StorageConfiguration: cnpgv1.StorageConfiguration{Size: size},
		},
	}
	if a.StorageClass != nil && *a.StorageClass != "" {
		if err := checkName("storage_class", *a.StorageClass); err != nil {
			return nil, err
		}
		cl.Spec.StorageConfiguration.StorageClass = a.StorageClass
	}
	if v := a.PostgresVersion; v != "" {
		if !pgVersion.MatchString(v) {
			return nil, userErrorf("postgres_version %q is not a PostgreSQL version: use a major version such as \"17\" (or major.minor such as \"17.5\")", v)
		}
		switch {
		case c.ImageTemplate != "":
			cl.Spec.ImageName = strings.ReplaceAll(c.ImageTemplate, "{version}", v)
		case c.ImageCatalog != "":
			major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
			cl.Spec.ImageCatalogRef = &cnpgv1.ImageCatalogRef{
				TypedLocalObjectReference: corev1.TypedLocalObjectReference{APIGroup: &cnpgv1.SchemeGroupVersion.Group, Kind: "ClusterImageCatalog", Name: c.ImageCatalog},
				Major:                     major,
			}
		default:
			return nil, userErrorf("postgres_version needs the server's PostgreSQL image setting (image template or image catalog), which is not configured; omit postgres_version to use the operator's default image, or ask the operator of this server to configure one")
		}
	}
	clSent, err := c.create(ctx, cl, a.DryRun)
	if err != nil {
		return nil, err
	}
	data := map[string]any{"dry_run": a.DryRun, "action": "create", "object": clSent}
	text := fmt.Sprintf("Cluster %s created with %d instance(s) of %s storage. The operator now provisions it; follow progress with get_cluster_status.", fmtObj(ns, a.Name), instances, size)
	if a.DryRun {
		return &Result{Text: dryRunText(true, fmt.Sprintf("would create Cluster %s:\n%s", fmtObj(ns, a.Name), yamlish(clSent))), Data: data}, nil
	}
	if a.Wait {
		timeout := 60 * instances
		if a.Timeout != nil {
			timeout = *a.Timeout
		}
		timeout = max(30, min(600, timeout))
		healthy, last, err := c.waitHealthy(ctx, ns, a.Name, instances, time.Duration(timeout)*time.Second)
		if err != nil {
			return nil, err
		}
		data["healthy"] = healthy
		if last != nil {
			data["status"] = clusterSummary(last, false)
		}
		if healthy {
			text = fmt.Sprintf("Cluster %s is healthy: %d/%d instances ready, primary %s.", fmtObj(ns, a.Name), last.Status.ReadyInstances, instances, last.Status.CurrentPrimary)
		} else {
			text = fmt.Sprintf("Cluster %s was created but did not become healthy within %ds; it is still provisioning. Follow it with get_cluster_status.", fmtObj(ns, a.Name), timeout)
		}
	}
	return &Result{Text: text, Data: data}, nil
}

func (c *call) waitHealthy(ctx context.Context, ns, name string, instances int, timeout time.Duration) (bool, *cnpgv1.Cluster, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last *cnpgv1.Cluster
	for {
		var cl cnpgv1.Cluster
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cl); err == nil {
			last = &cl
			if cl.Status.Phase == cnpgv1.PhaseHealthy && cl.Status.ReadyInstances >= instances {
				return true, last, nil
			}
		} else if ctx.Err() == nil && !isNotFound(err) {
			return false, last, err
		}
		select {
		case <-ctx.Done():
			return false, last, nil
		case <-tick.C:
		}
	}
}

type scaleArgs struct {
	Name      string `json:"name"`
	Instances int    `json:"instances"`
	Namespace string `json:"namespace"`
	DryRun    bool   `json:"dry_run"`
}

func scaleCluster(ctx context.Context, c *call, a *scaleArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if err := checkRange("instances", a.Instances, 1, 10); err != nil {
		return nil, err
	}
	cl, err := c.getCluster(ctx, ns, a.Name)
	if err != nil {
		return nil, err
	}
	from := cl.Spec.Instances
	patch, err := c.mergePatch(ctx, cl, map[string]any{"spec": map[string]any{"instances": a.Instances}}, a.DryRun)
	if err != nil {
		return nil, err
	}
	verb := "up"
	if a.Instances < from {
		verb = "down"
	} else if a.Instances == from {
		verb = "unchanged at"
	}
	text := fmt.Sprintf("Cluster %s scaled %s %d -> %d instances; the operator reconciles replicas (follow with get_cluster_status).", fmtObj(ns, a.Name), verb, from, a.Instances)
	return &Result{Text: dryRunText(a.DryRun, text), Data: map[string]any{
		"dry_run": a.DryRun, "cluster": a.Name, "namespace": ns, "from": from, "to": a.Instances,
		"patch": patch, "patch_type": mergePatchType,
	}}, nil
}

type deleteClusterArgs struct {
	Name            string `json:"name"`
	ConfirmDeletion bool   `json:"confirm_deletion"`
	Confirm         bool   `json:"confirm"`
	Namespace       string `json:"namespace"`
	DryRun          bool   `json:"dry_run"`
}

func deleteCluster(ctx context.Context, c *call, a *deleteClusterArgs) (*Result, error) {
	ns, cl, err := c.namespacedCluster(ctx, a.Namespace, a.Name)
	if err != nil {
		return nil, err
	}
	var secrets corev1.SecretList
	if err := c.Client.List(ctx, &secrets, client.InNamespace(ns), client.MatchingLabels{LabelManagedBy: ManagedByValue, LabelCluster: a.Name}); err != nil {
		return nil, err
	}
	var secretNames []string
	for _, s := range secrets.Items {
		secretNames = append(secretNames, s.Name)
	}
	action := fmt.Sprintf("delete PostgreSQL cluster %s (%d instances, %s each) and all its data", fmtObj(ns, a.Name), cl.Spec.Instances, cl.Spec.StorageConfiguration.Size)
	if !a.DryRun {
		if res, ok := c.confirm(ctx, a.Confirm || a.ConfirmDeletion, action); !ok {
			return &Result{raw: res}, nil
		}
	}
	if err := c.Client.Delete(ctx, cl, deleteOpts(a.DryRun)...); err != nil {
		return nil, err
	}
	var deleted []string
	for i := range secrets.Items {
		if err := c.Client.Delete(ctx, &secrets.Items[i], deleteOpts(a.DryRun)...); err != nil && !isNotFound(err) {
			return nil, fmt.Errorf("cluster deleted, but deleting role Secret %s failed: %w", secrets.Items[i].Name, err)
		}
		deleted = append(deleted, secrets.Items[i].Name)
	}
	text := fmt.Sprintf("Cluster %s is being deleted; role Secrets removed: %s. PVCs follow their StorageClass reclaim policy.", fmtObj(ns, a.Name), joinOr(deleted, "none"))
	return &Result{Text: dryRunText(a.DryRun, text), Data: map[string]any{
		"dry_run": a.DryRun, "deleted": map[string]any{"cluster": a.Name, "namespace": ns, "secrets": secretNames},
	}}, nil
}
