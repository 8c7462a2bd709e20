package tools

import (
	"context"
	"fmt"
	"strings"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	"github.com/mark3labs/mcp-go/mcp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func resizeTools(d *Deps) []Tool {
	return []Tool{
		build(d, spec{
			name: "resize_postgres_cluster", title: "Resize cluster storage", area: "clusters", destructive: true,
			desc: "Change the PVC size of a cluster. Growing needs a StorageClass that allows volume expansion. " +
				"Shrinking cannot happen in place: it adds extra_instances instances with the smaller PVCs; then remove the old instances one at a time " +
				"with delete_cluster_instance and scale back. Shrinking needs confirm_shrink.",
			calls: []string{"get clusters", "patch clusters (merge: spec.storage.size, spec.instances)", "patch clusters (merge: metadata.annotations cnpg.io/validation, shrink only)"},
			params: []mcp.ToolOption{pName("name", "Cluster name.", true),
				mcp.WithString("storage_size", mcp.Required(), mcp.Description("New PVC size per instance, e.g. 20Gi.")),
				mcp.WithInteger("extra_instances", mcp.DefaultNumber(0), mcp.Min(0), mcp.Max(9), mcp.Description("Instances to add with the change (at least 1 when shrinking).")),
				mcp.WithBoolean("confirm_shrink", mcp.DefaultBool(false), mcp.Description("Required to shrink (upstream name of confirm).")),
				pConfirm(" (shrinking)"), pNamespace(), pDryRun()},
		}, resizeCluster),
		build(d, spec{
			name: "get_cluster_resize_status", title: "Get storage resize status", area: "clusters", readOnly: true, idempotent: true,
			desc:   "Report the requested storage size of a cluster against each PVC's requested size, capacity and resize conditions, and the operator's resizingPVC/healthyPVC lists.",
			calls:  []string{"get clusters", "list persistentvolumeclaims (label cnpg.io/cluster)"},
			params: []mcp.ToolOption{pName("name", "Cluster name.", true), pNamespace(), pFormat()},
		}, resizeStatus),
	}
}

type resizeArgs struct {
	Name           string `json:"name"`
	StorageSize    string `json:"storage_size"`
	ExtraInstances int    `json:"extra_instances"`
	ConfirmShrink  bool   `json:"confirm_shrink"`
	Confirm        bool   `json:"confirm"`
	Namespace      string `json:"namespace"`
	DryRun         bool   `json:"dry_run"`
}

func resizeCluster(ctx context.Context, c *call, a *resizeArgs) (res *Result, err error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	want, err := checkQuantity("storage_size", a.StorageSize)
	if err != nil {
		return nil, err
	}
	if err := checkRange("extra_instances", a.ExtraInstances, 0, 9); err != nil {
		return nil, err
	}
	cl, err := c.getCluster(ctx, ns, a.Name)
	if err != nil {
		return nil, err
	}
	cur, err := checkQuantity("current spec.storage.size", firstNonEmpty(cl.Spec.StorageConfiguration.Size, "0"))
	if err != nil {
		return nil, fmt.Errorf("cluster %s has no parseable spec.storage.size (%q); resize it by editing the Cluster", fmtObj(ns, a.Name), cl.Spec.StorageConfiguration.Size)
	}
	instances := cl.Spec.Instances + a.ExtraInstances
	if instances > 10 {
		return nil, userErrorf("extra_instances %d would make %d instances; at most 10", a.ExtraInstances, instances)
	}
	specPatch := map[string]any{"storage": map[string]any{"size": a.StorageSize}}
	if a.ExtraInstances > 0 {
		specPatch["instances"] = instances
	}
	data := map[string]any{"dry_run": a.DryRun, "cluster": a.Name, "namespace": ns, "from_size": cur.String(), "to_size": want.String(), "instances": instances}
	switch cmp := want.Cmp(cur); {
	case cmp == 0 && a.ExtraInstances == 0:
		data["action"] = "none"
		return &Result{Text: fmt.Sprintf("Cluster %s already requests %s per instance; nothing to do.", fmtObj(ns, a.Name), cur.String()), Data: data}, nil
	case cmp >= 0:
		patch, err := c.mergePatch(ctx, cl, map[string]any{"spec": specPatch}, a.DryRun)
		if err != nil {
			return nil, err
		}
		data["action"], data["patches"], data["patch_type"] = "grow", []any{patch}, mergePatchType
		return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("Cluster %s storage %s -> %s per instance. The operator expands each PVC; follow with get_cluster_resize_status (the StorageClass must allow volume expansion).", fmtObj(ns, a.Name), cur.String(), want.String())), Data: data}, nil
	}
	// Shrink.
	if a.ExtraInstances < 1 {
		return nil, userErrorf("shrinking %s -> %s cannot be done in place: pass extra_instances >= 1 so new instances are created with the smaller PVCs, then remove the old ones with delete_cluster_instance", cur.String(), want.String())
	}
	action := fmt.Sprintf("shrink cluster %s storage %s -> %s (bypassing CloudNativePG admission validation, adding %d instance(s))", fmtObj(ns, a.Name), cur.String(), want.String(), a.ExtraInstances)
	if !a.DryRun {
		if r, ok := c.confirm(ctx, a.Confirm || a.ConfirmShrink, action); !ok {
			return &Result{raw: r}, nil
		}
	}
	prev, had := cl.Annotations[AnnotationValidation]
	var restore any // JSON null removes the annotation
	if had {
		restore = prev
	}
	disable := map[string]any{"metadata": map[string]any{"annotations": map[string]any{AnnotationValidation: "disabled"}}}
	restorePatch := map[string]any{"metadata": map[string]any{"annotations": map[string]any{AnnotationValidation: restore}}}
	if _, err := c.mergePatch(ctx, cl, disable, a.DryRun); err != nil {
		return nil, err
	}
	defer func() {
		// Restore the annotation even when the spec patch failed.
		if _, rerr := c.mergePatch(context.WithoutCancel(ctx), &cnpgv1.Cluster{ObjectMeta: cl.ObjectMeta}, restorePatch, a.DryRun); rerr != nil && err == nil {
			res, err = nil, fmt.Errorf("storage patched, but restoring annotation %s failed (remove it by hand): %w", AnnotationValidation, rerr)
		}
	}()
	patch, err := c.mergePatch(ctx, cl, map[string]any{"spec": specPatch}, a.DryRun)
	if err != nil {
		return nil, err
	}
	data["action"], data["patches"], data["patch_type"] = "shrink", []any{disable, patch, restorePatch}, mergePatchType
	return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("Cluster %s: spec.storage.size %s -> %s and instances -> %d. New instances get the smaller PVCs; existing ones keep theirs until removed with delete_cluster_instance (replicas first, one at a time), then scale back with scale_postgres_cluster.", fmtObj(ns, a.Name), cur.String(), want.String(), instances)), Data: data}, nil
}

type resizeStatusArgs struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Format    string `json:"format"`
}

func resizeStatus(ctx context.Context, c *call, a *resizeStatusArgs) (*Result, error) {
	ns, cl, err := c.namespacedCluster(ctx, a.Namespace, a.Name)
	if err != nil {
		return nil, err
	}
	var pvcs corev1.PersistentVolumeClaimList
	if err := c.Client.List(ctx, &pvcs, client.InNamespace(ns), client.MatchingLabels{LabelCluster: a.Name}); err != nil {
		return nil, err
	}
	target := cl.Spec.StorageConfiguration.Size
	var rows []any
	var b strings.Builder
	pending := 0
	fmt.Fprintf(&b, "Cluster %s requests %s per instance.\n", fmtObj(ns, a.Name), target)
	for _, p := range pvcs.Items {
		req := p.Spec.Resources.Requests[corev1.ResourceStorage]
		capacity := p.Status.Capacity[corev1.ResourceStorage]
		var conds []string
		for _, cond := range p.Status.Conditions {
			conds = append(conds, string(cond.Type))
		}
		done := !capacity.IsZero() && capacity.Cmp(req) >= 0 && len(conds) == 0
		if !done {
			pending++
		}
		rows = append(rows, map[string]any{"pvc": p.Name, "instance": p.Labels[LabelInstance], "role": p.Labels["cnpg.io/pvcRole"],
			"requested": req.String(), "capacity": capacity.String(), "phase": string(p.Status.Phase), "conditions": conds, "resized": done})
		fmt.Fprintf(&b, "  %s (instance %s): requested %s, capacity %s, phase %s %s\n", p.Name, firstNonEmpty(p.Labels[LabelInstance], "?"), req.String(), firstNonEmpty(capacity.String(), "-"), p.Status.Phase, strings.Join(conds, ","))
	}
	state := "complete"
	if pending > 0 {
		state = "in progress"
	}
	if len(pvcs.Items) == 0 {
		state = "no PVCs yet"
	}
	fmt.Fprintf(&b, "Resize %s (%d of %d PVCs pending).", state, pending, len(pvcs.Items))
	return &Result{Text: b.String(), JSONText: a.Format == "json", Data: map[string]any{
		"cluster": a.Name, "namespace": ns, "requested_size": target, "state": state, "pending": pending, "pvcs": rows,
		"resizing_pvc": cl.Status.ResizingPVC, "healthy_pvc": cl.Status.HealthyPVC,
	}}, nil
}
