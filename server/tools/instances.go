package tools

import (
	"context"
	"fmt"
	"slices"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	"github.com/mark3labs/mcp-go/mcp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func instanceTools(d *Deps) []Tool {
	return []Tool{
		build(d, spec{
			name: "promote_cluster_instance", title: "Promote an instance (switchover)", area: "instances",
			desc: "Switch the primary over to another instance (a CloudNativePG switchover). Refuses the current primary, a cluster already switching over, " +
				"and, unless force, an instance not reported healthy.",
			calls: []string{"get clusters", "get pods", "patch clusters/status (merge: status.targetPrimary, targetPrimaryTimestamp, phase)"},
			params: []mcp.ToolOption{pName("name", "Cluster name.", true), pName("instance", "Instance (pod) to promote, e.g. pg-main-2.", true),
				mcp.WithBoolean("force", mcp.DefaultBool(false), mcp.Description("Promote even if the instance is not listed as healthy.")),
				pNamespace(), pDryRun()},
		}, promoteInstance),
		build(d, spec{
			name: "delete_cluster_instance", title: "Delete (destroy) an instance", area: "instances", destructive: true, idempotent: true,
			desc: "Destroy one replica: delete its Pod and PVCs, like `kubectl cnpg destroy`. The operator recreates an instance to keep spec.instances; " +
				"scale down afterwards to remove it for good. Refuses the primary (promote another instance first). Destructive: needs confirmation.",
			calls: []string{"get clusters", "get pods", "list persistentvolumeclaims (labels cnpg.io/cluster, cnpg.io/instanceName)", "delete persistentvolumeclaims", "delete pods"},
			params: []mcp.ToolOption{pName("name", "Cluster name.", true), pName("instance", "Instance (pod) name, e.g. pg-main-3.", true),
				mcp.WithBoolean("confirm_deletion", mcp.DefaultBool(false), mcp.Description("Upstream name of confirm; either may be used.")),
				pConfirm(""), pNamespace(), pDryRun()},
		}, deleteInstance),
	}
}

type promoteArgs struct {
	Name      string `json:"name"`
	Instance  string `json:"instance"`
	Force     bool   `json:"force"`
	Namespace string `json:"namespace"`
	DryRun    bool   `json:"dry_run"`
}

func promoteInstance(ctx context.Context, c *call, a *promoteArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if err := checkName("instance", a.Instance); err != nil {
		return nil, err
	}
	cl, err := c.getCluster(ctx, ns, a.Name)
	if err != nil {
		return nil, err
	}
	st := cl.Status
	switch {
	case st.CurrentPrimary == a.Instance && st.TargetPrimary == a.Instance:
		return nil, userErrorf("%s is already the primary of cluster %s; nothing to do", a.Instance, fmtObj(ns, a.Name))
	case st.TargetPrimary != "" && st.TargetPrimary != st.CurrentPrimary:
		return nil, userErrorf("cluster %s already has a switchover or failover in progress (current primary %s, target %s); wait until get_cluster_status shows no switchover, then retry", fmtObj(ns, a.Name), firstNonEmpty(st.CurrentPrimary, "none"), st.TargetPrimary)
	case !slices.Contains(st.InstanceNames, a.Instance):
		return nil, userErrorf("%s is not an instance of cluster %s (instances: %s)", a.Instance, fmtObj(ns, a.Name), joinOr(st.InstanceNames, "none reported yet"))
	case !a.Force && !slices.Contains(st.InstancesStatus[cnpgv1.PodHealthy], a.Instance):
		return nil, userErrorf("%s is not reported healthy by the operator (healthy: %s); fix it first, or pass force: true to promote anyway", a.Instance, joinOr(st.InstancesStatus[cnpgv1.PodHealthy], "none"))
	}
	var pod corev1.Pod
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: a.Instance}, &pod); err != nil {
		return nil, err
	}
	patch := map[string]any{
		// The resourceVersion makes the patch fail with 409 if the operator changed the status meanwhile.
		"metadata": map[string]any{"resourceVersion": cl.ResourceVersion},
		"status": map[string]any{
			"targetPrimary":          a.Instance,
			"targetPrimaryTimestamp": c.Now().UTC().Format(metav1.RFC3339Micro),
			"phase":                  cnpgv1.PhaseSwitchover,
			"phaseReason":            "Switching over to " + a.Instance,
		},
	}
	if _, err := c.statusMergePatch(ctx, cl, patch, a.DryRun); err != nil {
		return nil, err
	}
	return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("Switchover of cluster %s from %s to %s requested; the operator demotes the old primary and promotes %s. Follow with get_cluster_status.", fmtObj(ns, a.Name), firstNonEmpty(st.CurrentPrimary, "none"), a.Instance, a.Instance)),
		Data: map[string]any{"dry_run": a.DryRun, "cluster": a.Name, "namespace": ns, "from": st.CurrentPrimary, "to": a.Instance, "subresource": "status", "patch": patch, "patch_type": mergePatchType}}, nil
}

type deleteInstanceArgs struct {
	Name            string `json:"name"`
	Instance        string `json:"instance"`
	ConfirmDeletion bool   `json:"confirm_deletion"`
	Confirm         bool   `json:"confirm"`
	Namespace       string `json:"namespace"`
	DryRun          bool   `json:"dry_run"`
}

func deleteInstance(ctx context.Context, c *call, a *deleteInstanceArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if err := checkName("instance", a.Instance); err != nil {
		return nil, err
	}
	cl, err := c.getCluster(ctx, ns, a.Name)
	if err != nil {
		return nil, err
	}
	if a.Instance == cl.Status.CurrentPrimary || a.Instance == cl.Status.TargetPrimary {
		return nil, userErrorf("%s is the primary of cluster %s; promote another instance with promote_cluster_instance first, then delete this one", a.Instance, fmtObj(ns, a.Name))
	}
	var pod *corev1.Pod
	var p corev1.Pod
	switch err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: a.Instance}, &p); {
	case err == nil:
		if p.Labels[LabelCluster] != a.Name {
			return nil, userErrorf("pod %s does not belong to cluster %s (label %s=%q)", a.Instance, a.Name, LabelCluster, p.Labels[LabelCluster])
		}
		pod = &p
	case !isNotFound(err):
		return nil, err
	}
	var pvcs corev1.PersistentVolumeClaimList
	if err := c.Client.List(ctx, &pvcs, client.InNamespace(ns), client.MatchingLabels{LabelCluster: a.Name, LabelInstance: a.Instance}); err != nil {
		return nil, err
	}
	if pod == nil && len(pvcs.Items) == 0 {
		return nil, userErrorf("cluster %s has no instance %s (no pod, no PVCs); instances: %s", fmtObj(ns, a.Name), a.Instance, joinOr(cl.Status.InstanceNames, "none reported"))
	}
	var pvcNames []string
	for _, v := range pvcs.Items {
		pvcNames = append(pvcNames, v.Name)
	}
	if !a.DryRun {
		if r, ok := c.confirm(ctx, a.Confirm || a.ConfirmDeletion, fmt.Sprintf("destroy instance %s of cluster %s and its PVCs (%s)", a.Instance, fmtObj(ns, a.Name), joinOr(pvcNames, "none"))); !ok {
			return &Result{raw: r}, nil
		}
	}
	for i := range pvcs.Items {
		if err := c.Client.Delete(ctx, &pvcs.Items[i], deleteOpts(a.DryRun)...); err != nil && !isNotFound(err) {
			return nil, err
		}
	}
	if pod != nil {
		if err := c.Client.Delete(ctx, pod, deleteOpts(a.DryRun)...); err != nil && !isNotFound(err) {
			return nil, err
		}
	}
	return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("Instance %s of cluster %s destroyed (pod and PVCs %s). The operator creates a replacement to keep %d instances; scale down to remove it for good.", a.Instance, fmtObj(ns, a.Name), joinOr(pvcNames, "none"), cl.Spec.Instances)),
		Data: map[string]any{"dry_run": a.DryRun, "cluster": a.Name, "namespace": ns, "instance": a.Instance, "pod_deleted": pod != nil, "pvcs_deleted": pvcNames}}, nil
}
