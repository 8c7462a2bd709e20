package tools

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	"github.com/mark3labs/mcp-go/mcp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func poolerTools(d *Deps) []Tool {
	return []Tool{
		build(d, spec{
			name: "create_pooler", title: "Create a PgBouncer pooler", area: "poolers",
			desc:  "Create a CloudNativePG Pooler (PgBouncer) in front of a cluster. type: rw (primary), ro (replicas) or r (any instance).",
			calls: []string{"get clusters", "create poolers"},
			params: []mcp.ToolOption{pName("cluster_name", "Cluster to pool connections for.", true), pName("name", "Pooler name (also its Service name).", true),
				mcp.WithString("type", mcp.Enum("rw", "ro", "r"), mcp.DefaultString("rw"), mcp.Description("Which instances the pooler connects to.")),
				mcp.WithInteger("instances", mcp.DefaultNumber(1), mcp.Min(0), mcp.Max(10), mcp.Description("PgBouncer pods.")),
				mcp.WithString("pool_mode", mcp.Enum("session", "transaction"), mcp.DefaultString("session"), mcp.Description("PgBouncer pool_mode.")),
				mcp.WithInteger("max_client_conn", mcp.Min(1), mcp.Max(100000), mcp.Description("PgBouncer max_client_conn.")),
				mcp.WithInteger("default_pool_size", mcp.Min(1), mcp.Max(10000), mcp.Description("PgBouncer default_pool_size.")),
				pNamespace(), pDryRun()},
		}, createPooler),
		build(d, spec{
			name: "list_poolers", title: "List poolers", area: "poolers", readOnly: true, idempotent: true,
			desc:   "List Poolers (optionally of one cluster) with type, instances, pool mode and ready instances.",
			calls:  []string{"list poolers"},
			params: []mcp.ToolOption{pName("cluster_name", "Only poolers of this cluster.", false), pNamespace(), pFormat()},
		}, listPoolers),
		build(d, spec{
			name: "delete_pooler", title: "Delete a pooler", area: "poolers", destructive: true, idempotent: true,
			desc:   "Delete a Pooler; clients connected through it are disconnected. Destructive: needs confirmation.",
			calls:  []string{"get poolers", "delete poolers"},
			params: []mcp.ToolOption{pName("name", "Pooler name.", true), pConfirm(""), pNamespace(), pDryRun()},
		}, deletePooler),
	}
}

type createPoolerArgs struct {
	ClusterName     string `json:"cluster_name"`
	Name            string `json:"name"`
	Type            string `json:"type"`
	Instances       *int   `json:"instances"`
	PoolMode        string `json:"pool_mode"`
	MaxClientConn   *int   `json:"max_client_conn"`
	DefaultPoolSize *int   `json:"default_pool_size"`
	Namespace       string `json:"namespace"`
	DryRun          bool   `json:"dry_run"`
}

func createPooler(ctx context.Context, c *call, a *createPoolerArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if err := checkName("name", a.Name); err != nil {
		return nil, err
	}
	typ := firstNonEmpty(a.Type, "rw")
	if typ != "rw" && typ != "ro" && typ != "r" {
		return nil, userErrorf("type must be rw, ro or r (got %q)", typ)
	}
	mode := firstNonEmpty(a.PoolMode, "session")
	if mode != "session" && mode != "transaction" {
		return nil, userErrorf("pool_mode must be session or transaction (got %q)", mode)
	}
	n := int32(1)
	if a.Instances != nil {
		if err := checkRange("instances", *a.Instances, 0, 10); err != nil {
			return nil, err
		}
		n = int32(*a.Instances)
	}
	if a.Name == a.ClusterName+"-rw" || a.Name == a.ClusterName+"-ro" || a.Name == a.ClusterName+"-r" {
		return nil, userErrorf("pooler name %q would clash with the cluster's own Service; choose e.g. %q", a.Name, "pooler-"+a.ClusterName+"-"+typ)
	}
	if _, err := c.getCluster(ctx, ns, a.ClusterName); err != nil {
		return nil, err
	}
	params := map[string]string{}
	if a.MaxClientConn != nil {
		params["max_client_conn"] = strconv.Itoa(*a.MaxClientConn)
	}
	if a.DefaultPoolSize != nil {
		params["default_pool_size"] = strconv.Itoa(*a.DefaultPoolSize)
	}
	p := &cnpgv1.Pooler{
		TypeMeta:   typeMeta(cnpgv1.PoolerKind),
		ObjectMeta: metav1.ObjectMeta{Name: a.Name, Namespace: ns, Labels: managedLabels(a.ClusterName)},
		Spec: cnpgv1.PoolerSpec{Cluster: cnpgv1.LocalObjectReference{Name: a.ClusterName}, Type: cnpgv1.PoolerType(typ), Instances: &n,
			PgBouncer: &cnpgv1.PgBouncerSpec{PoolMode: cnpgv1.PgBouncerPoolMode(mode)}},
	}
	if len(params) > 0 {
		p.Spec.PgBouncer.Parameters = params
	}
	pSent, err := c.create(ctx, p, a.DryRun)
	if err != nil {
		return nil, err
	}
	return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("Pooler %s (%s, %d PgBouncer instance(s), %s pooling) created for cluster %s; clients connect to Service %s.", fmtObj(ns, a.Name), typ, n, mode, a.ClusterName, a.Name)),
		Data: map[string]any{"dry_run": a.DryRun, "action": "create", "object": pSent}}, nil
}

func listPoolers(ctx context.Context, c *call, a *listBackupsArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	var list cnpgv1.PoolerList
	if err := c.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var rows []any
	var b strings.Builder
	fmt.Fprintf(&b, "Poolers in %s:\n", ns)
	for _, p := range list.Items {
		if a.ClusterName != "" && p.Spec.Cluster.Name != a.ClusterName {
			continue
		}
		inst := int32(1)
		if p.Spec.Instances != nil {
			inst = *p.Spec.Instances
		}
		mode := ""
		if p.Spec.PgBouncer != nil {
			mode = string(p.Spec.PgBouncer.PoolMode)
		}
		rows = append(rows, map[string]any{"name": p.Name, "cluster": p.Spec.Cluster.Name, "type": string(p.Spec.Type), "instances": inst, "ready_instances": p.Status.Instances, "pool_mode": mode})
		fmt.Fprintf(&b, "  %s cluster=%s type=%s instances=%d/%d mode=%s\n", p.Name, p.Spec.Cluster.Name, p.Spec.Type, p.Status.Instances, inst, firstNonEmpty(mode, "session"))
	}
	rows, truncated := limitList(rows)
	return &Result{Text: b.String(), JSONText: a.Format == "json", Data: map[string]any{"namespace": ns, "count": len(rows), "poolers": rows, "truncated": truncated}}, nil
}

type deletePoolerArgs struct {
	Name      string `json:"name"`
	Confirm   bool   `json:"confirm"`
	Namespace string `json:"namespace"`
	DryRun    bool   `json:"dry_run"`
}

func deletePooler(ctx context.Context, c *call, a *deletePoolerArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if err := checkName("name", a.Name); err != nil {
		return nil, err
	}
	var p cnpgv1.Pooler
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: a.Name}, &p); err != nil {
		return nil, err
	}
	if !a.DryRun {
		if res, ok := c.confirm(ctx, a.Confirm, fmt.Sprintf("delete pooler %s of cluster %s (its clients are disconnected)", fmtObj(ns, a.Name), p.Spec.Cluster.Name)); !ok {
			return &Result{raw: res}, nil
		}
	}
	if err := c.Client.Delete(ctx, &p, deleteOpts(a.DryRun)...); err != nil {
		return nil, err
	}
	return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("Pooler %s deleted.", fmtObj(ns, a.Name))), Data: map[string]any{"dry_run": a.DryRun, "deleted": "Pooler/" + a.Name, "namespace": ns}}, nil
}
