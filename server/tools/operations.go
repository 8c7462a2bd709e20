package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	"github.com/mark3labs/mcp-go/mcp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func operationTools(d *Deps) []Tool {
	state := func(values ...string) mcp.ToolOption {
		return mcp.WithString("state", mcp.Required(), mcp.Enum(values...), mcp.Description("Desired state: "+values[0]+" or "+values[1]+"."))
	}
	return []Tool{
		build(d, spec{
			name: "restart_postgres_cluster", title: "Restart a cluster or one instance", area: "operations",
			desc: "Rolling restart of all instances (replicas first, then a switchover or an in-place restart of the primary), " +
				"or restart of one instance (the primary in place, a replica by deleting its pod).",
			calls:  []string{"get clusters", "patch clusters (merge: metadata.annotations kubectl.kubernetes.io/restartedAt)", "patch clusters/status (merge: status.phase)", "get pods", "delete pods"},
			params: []mcp.ToolOption{pName("name", "Cluster name.", true), pName("instance", "Restart only this instance (pod name).", false), pNamespace(), pDryRun()},
		}, restartCluster),
		build(d, spec{
			name: "reload_postgres_cluster", title: "Reload configuration", area: "operations",
			desc:   "Make every instance reload its configuration (annotation cnpg.io/reloadedAt), e.g. after changing a Secret or ConfigMap the cluster uses.",
			calls:  []string{"get clusters", "patch clusters (merge: metadata.annotations cnpg.io/reloadedAt)"},
			params: []mcp.ToolOption{pName("name", "Cluster name.", true), pNamespace(), pDryRun()},
		}, reloadCluster),
		build(d, spec{
			name: "hibernate_postgres_cluster", title: "Hibernate or wake a cluster", area: "operations", destructive: true, idempotent: true,
			desc:   "Declarative hibernation (annotation cnpg.io/hibernation): 'on' shuts down every instance and keeps the PVCs (the database is unavailable; needs confirmation), 'off' starts it again.",
			calls:  []string{"get clusters", "patch clusters (merge: metadata.annotations cnpg.io/hibernation)"},
			params: []mcp.ToolOption{pName("name", "Cluster name.", true), state("on", "off"), pConfirm(" (state on)"), pNamespace(), pDryRun()},
		}, hibernateCluster),
		build(d, spec{
			name: "fence_postgres_instances", title: "Fence or unfence instances", area: "operations", destructive: true, idempotent: true,
			desc: "Fence instances: 'on' stops PostgreSQL on an instance (or on all with \"*\") and keeps its pod, for investigation (needs confirmation); " +
				"'off' unfences it.",
			calls: []string{"get clusters", "patch clusters (merge with resourceVersion: metadata.annotations cnpg.io/fencedInstances)"},
			params: []mcp.ToolOption{pName("name", "Cluster name.", true), state("on", "off"),
				mcp.WithString("instance", mcp.DefaultString("*"), mcp.MaxLength(63), mcp.Description("Instance (pod) name, or \"*\" for all.")),
				pConfirm(" (state on)"), pNamespace(), pDryRun()},
		}, fenceCluster),
		build(d, spec{
			name: "set_cluster_maintenance", title: "Node maintenance window", area: "operations", idempotent: true,
			desc:  "Set or unset spec.nodeMaintenanceWindow (inProgress, reusePVC) before draining Kubernetes nodes, like `kubectl cnpg maintenance set|unset`.",
			calls: []string{"get clusters", "patch clusters (merge: spec.nodeMaintenanceWindow)"},
			params: []mcp.ToolOption{pName("name", "Cluster name.", true), state("set", "unset"),
				mcp.WithBoolean("reuse_pvc", mcp.DefaultBool(true), mcp.Description("Wait for the node to come back and reuse the PVC (true) or recreate the instance elsewhere (false).")),
				pNamespace(), pDryRun()},
		}, maintenanceCluster),
	}
}

type restartArgs struct {
	Name      string `json:"name"`
	Instance  string `json:"instance"`
	Namespace string `json:"namespace"`
	DryRun    bool   `json:"dry_run"`
}

func restartCluster(ctx context.Context, c *call, a *restartArgs) (*Result, error) {
	ns, cl, err := c.namespacedCluster(ctx, a.Namespace, a.Name)
	if err != nil {
		return nil, err
	}
	now := c.Now().UTC().Format(time.RFC3339)
	if a.Instance == "" {
		patch, err := c.mergePatch(ctx, cl, map[string]any{"metadata": map[string]any{"annotations": map[string]any{AnnotationRestart: now}}}, a.DryRun)
		if err != nil {
			return nil, err
		}
		return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("Rolling restart of cluster %s requested: replicas restart first, then the primary. Follow with get_cluster_status.", fmtObj(ns, a.Name))),
			Data: map[string]any{"dry_run": a.DryRun, "cluster": a.Name, "namespace": ns, "scope": "cluster", "patch": patch, "patch_type": mergePatchType}}, nil
	}
	if err := checkName("instance", a.Instance); err != nil {
		return nil, err
	}
	if a.Instance == cl.Status.CurrentPrimary {
		patch := map[string]any{
			"metadata": map[string]any{"resourceVersion": cl.ResourceVersion},
			"status":   map[string]any{"phase": cnpgv1.PhaseInplacePrimaryRestart, "phaseReason": "Requested by the user"},
		}
		if _, err := c.statusMergePatch(ctx, cl, patch, a.DryRun); err != nil {
			return nil, err
		}
		return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("In-place restart of primary %s of cluster %s requested.", a.Instance, fmtObj(ns, a.Name))),
			Data: map[string]any{"dry_run": a.DryRun, "cluster": a.Name, "namespace": ns, "scope": "primary", "instance": a.Instance, "subresource": "status", "patch": patch, "patch_type": mergePatchType}}, nil
	}
	var pod corev1.Pod
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: a.Instance}, &pod); err != nil {
		return nil, err
	}
	if pod.Labels[LabelCluster] != a.Name {
		return nil, userErrorf("pod %s does not belong to cluster %s", a.Instance, a.Name)
	}
	if err := c.Client.Delete(ctx, &pod, deleteOpts(a.DryRun)...); err != nil {
		return nil, err
	}
	return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("Replica %s of cluster %s restarted (pod deleted; the operator recreates it on the same PVC).", a.Instance, fmtObj(ns, a.Name))),
		Data: map[string]any{"dry_run": a.DryRun, "cluster": a.Name, "namespace": ns, "scope": "replica", "instance": a.Instance, "deleted": "Pod/" + a.Instance}}, nil
}

type nameArgs struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	DryRun    bool   `json:"dry_run"`
}

func reloadCluster(ctx context.Context, c *call, a *nameArgs) (*Result, error) {
	ns, cl, err := c.namespacedCluster(ctx, a.Namespace, a.Name)
	if err != nil {
		return nil, err
	}
	patch, err := c.mergePatch(ctx, cl, map[string]any{"metadata": map[string]any{"annotations": map[string]any{AnnotationReload: c.Now().UTC().Format(time.RFC3339)}}}, a.DryRun)
	if err != nil {
		return nil, err
	}
	return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("Configuration reload of cluster %s requested.", fmtObj(ns, a.Name))),
		Data: map[string]any{"dry_run": a.DryRun, "cluster": a.Name, "namespace": ns, "patch": patch, "patch_type": mergePatchType}}, nil
}

type stateArgs struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	Instance  string `json:"instance"`
	ReusePVC  *bool  `json:"reuse_pvc"`
	Confirm   bool   `json:"confirm"`
	Namespace string `json:"namespace"`
	DryRun    bool   `json:"dry_run"`
}

func hibernateCluster(ctx context.Context, c *call, a *stateArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if a.State != "on" && a.State != "off" {
		return nil, userErrorf("state must be \"on\" or \"off\" (got %q)", a.State)
	}
	cl, err := c.getCluster(ctx, ns, a.Name)
	if err != nil {
		return nil, err
	}
	if a.State == "on" && !a.DryRun {
		if res, ok := c.confirm(ctx, a.Confirm, fmt.Sprintf("hibernate cluster %s (all instances shut down, database unavailable until woken)", fmtObj(ns, a.Name))); !ok {
			return &Result{raw: res}, nil
		}
	}
	patch, err := c.mergePatch(ctx, cl, map[string]any{"metadata": map[string]any{"annotations": map[string]any{AnnotationHibernation: a.State}}}, a.DryRun)
	if err != nil {
		return nil, err
	}
	text := fmt.Sprintf("Cluster %s hibernation on: the operator shuts down every instance and keeps the PVCs.", fmtObj(ns, a.Name))
	if a.State == "off" {
		text = fmt.Sprintf("Cluster %s hibernation off: the operator starts the instances again.", fmtObj(ns, a.Name))
	}
	return &Result{Text: dryRunText(a.DryRun, text), Data: map[string]any{"dry_run": a.DryRun, "cluster": a.Name, "namespace": ns, "hibernation": a.State, "patch": patch, "patch_type": mergePatchType}}, nil
}

func fenceCluster(ctx context.Context, c *call, a *stateArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if a.State != "on" && a.State != "off" {
		return nil, userErrorf("state must be \"on\" or \"off\" (got %q)", a.State)
	}
	inst := firstNonEmpty(a.Instance, "*")
	if inst != "*" {
		if err := checkName("instance", inst); err != nil {
			return nil, err
		}
	}
	cl, err := c.getCluster(ctx, ns, a.Name)
	if err != nil {
		return nil, err
	}
	if inst != "*" && !slices.Contains(cl.Status.InstanceNames, inst) {
		return nil, userErrorf("%s is not an instance of cluster %s (instances: %s); use \"*\" for all", inst, fmtObj(ns, a.Name), joinOr(cl.Status.InstanceNames, "none reported"))
	}
	var fenced []string
	if v := cl.Annotations[AnnotationFenced]; v != "" {
		if err := json.Unmarshal([]byte(v), &fenced); err != nil {
			return nil, fmt.Errorf("cluster %s has an unparseable %s annotation %q; fix it by hand: %w", fmtObj(ns, a.Name), AnnotationFenced, v, err)
		}
	}
	switch {
	case a.State == "on" && inst == "*":
		fenced = []string{"*"}
	case a.State == "on":
		if !slices.Contains(fenced, inst) && !slices.Contains(fenced, "*") {
			fenced = append(fenced, inst)
		}
	case inst == "*":
		fenced = nil
	default:
		if slices.Contains(fenced, "*") {
			return nil, userErrorf("all instances of %s are fenced (\"*\"); unfence them all with instance \"*\"", fmtObj(ns, a.Name))
		}
		fenced = slices.DeleteFunc(fenced, func(s string) bool { return s == inst })
	}
	sort.Strings(fenced)
	if a.State == "on" && !a.DryRun {
		if res, ok := c.confirm(ctx, a.Confirm, fmt.Sprintf("fence %s of cluster %s (PostgreSQL stops on it)", map[bool]string{true: "all instances", false: "instance " + inst}[inst == "*"], fmtObj(ns, a.Name))); !ok {
			return &Result{raw: res}, nil
		}
	}
	var value any // null removes the annotation
	if len(fenced) > 0 {
		b, _ := json.Marshal(fenced)
		value = string(b)
	}
	patch, err := c.mergePatch(ctx, cl, map[string]any{"metadata": map[string]any{"resourceVersion": cl.ResourceVersion, "annotations": map[string]any{AnnotationFenced: value}}}, a.DryRun)
	if err != nil {
		return nil, err
	}
	return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("Cluster %s fenced instances now: %s.", fmtObj(ns, a.Name), joinOr(fenced, "none"))),
		Data: map[string]any{"dry_run": a.DryRun, "cluster": a.Name, "namespace": ns, "fenced_instances": fenced, "patch": patch, "patch_type": mergePatchType}}, nil
}

func maintenanceCluster(ctx context.Context, c *call, a *stateArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if a.State != "set" && a.State != "unset" {
		return nil, userErrorf("state must be \"set\" or \"unset\" (got %q)", a.State)
	}
	cl, err := c.getCluster(ctx, ns, a.Name)
	if err != nil {
		return nil, err
	}
	reuse := a.ReusePVC == nil || *a.ReusePVC
	patch, err := c.mergePatch(ctx, cl, map[string]any{"spec": map[string]any{"nodeMaintenanceWindow": map[string]any{"inProgress": a.State == "set", "reusePVC": reuse}}}, a.DryRun)
	if err != nil {
		return nil, err
	}
	return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("Cluster %s node maintenance %s (reusePVC %t).", fmtObj(ns, a.Name), map[bool]string{true: "in progress", false: "finished"}[a.State == "set"], reuse)),
		Data: map[string]any{"dry_run": a.DryRun, "cluster": a.Name, "namespace": ns, "in_progress": a.State == "set", "reuse_pvc": reuse, "patch": patch, "patch_type": mergePatchType}}, nil
}

func sortNewest[T any](items []T, at func(T) time.Time) {
	sort.SliceStable(items, func(i, j int) bool { return at(items[i]).After(at(items[j])) })
}
