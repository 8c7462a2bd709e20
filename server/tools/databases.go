package tools

import (
	"context"
	"fmt"
	"strings"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	"github.com/mark3labs/mcp-go/mcp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func databaseTools(d *Deps) []Tool {
	cluster := pName("cluster_name", "Cluster name.", true)
	db := pName("database_name", "Database name (RFC 1123; the Database object is <cluster>-<database>).", true)
	str := func(name, desc string) mcp.ToolOption {
		return mcp.WithString(name, mcp.MaxLength(256), mcp.Description(desc))
	}
	return []Tool{
		build(d, spec{
			name: "list_postgres_databases", title: "List databases", area: "databases", readOnly: true, idempotent: true,
			desc:   "List the Database objects of a cluster with owner, ensure, reclaim policy, locale options and whether they were applied.",
			calls:  []string{"list databases"},
			params: []mcp.ToolOption{cluster, pNamespace(), pFormat()},
		}, listDatabases),
		build(d, spec{
			name: "get_postgres_database_status", title: "Get database status", area: "databases", readOnly: true, idempotent: true,
			desc:   "Show whether a Database was applied in PostgreSQL (status.applied, message, observed generation, schema/extension status).",
			calls:  []string{"get databases", "list databases"},
			params: []mcp.ToolOption{cluster, db, pNamespace(), pFormat()},
		}, databaseStatus),
		build(d, spec{
			name: "create_postgres_database", title: "Create a database", area: "databases",
			desc:  "Create a PostgreSQL database declaratively with a CloudNativePG Database object <cluster>-<database>. Locale and encoding options are immutable after creation.",
			calls: []string{"get clusters", "create databases"},
			params: []mcp.ToolOption{cluster, db,
				mcp.WithString("owner", mcp.Required(), mcp.MinLength(1), mcp.MaxLength(63), mcp.Description("Role that owns the database.")),
				mcp.WithString("reclaim_policy", mcp.Enum("retain", "delete"), mcp.DefaultString("retain"), mcp.Description("When the Database object is deleted: 'retain' keeps the database, 'delete' drops it.")),
				str("encoding", "ENCODING, e.g. UTF8."), str("locale", "LOCALE."),
				mcp.WithString("locale_provider", mcp.Enum("builtin", "icu", "libc"), mcp.Description("LOCALE_PROVIDER (PostgreSQL 16+).")),
				str("locale_collate", "LC_COLLATE."), str("locale_ctype", "LC_CTYPE."),
				str("icu_locale", "ICU_LOCALE (needs locale_provider icu)."), str("icu_rules", "ICU_RULES (needs locale_provider icu)."),
				str("builtin_locale", "BUILTIN_LOCALE (needs locale_provider builtin)."), str("collation_version", "COLLATION_VERSION."),
				pNamespace(), pDryRun()},
		}, createDatabase),
		build(d, spec{
			name: "delete_postgres_database", title: "Delete a database", area: "databases", destructive: true, idempotent: true,
			desc:   "Delete a Database object. With reclaim policy 'delete' the operator drops the database and its data (needs confirmation); with 'retain' it stays in PostgreSQL, unmanaged.",
			calls:  []string{"get databases", "list databases", "delete databases"},
			params: []mcp.ToolOption{cluster, db, pConfirm(" (needed when the reclaim policy is delete)"), pNamespace(), pDryRun()},
		}, deleteDatabase),
	}
}

type dbArgs struct {
	ClusterName  string `json:"cluster_name"`
	DatabaseName string `json:"database_name"`
	Namespace    string `json:"namespace"`
	Format       string `json:"format"`
}

func dbRow(d *cnpgv1.Database) map[string]any {
	s := d.Spec
	m := map[string]any{"object": d.Name, "database_name": s.Name, "owner": s.Owner, "ensure": firstNonEmpty(string(s.Ensure), "present"),
		"reclaim_policy": firstNonEmpty(string(s.ReclaimPolicy), "retain"), "applied": d.Status.Applied, "message": d.Status.Message}
	for k, v := range map[string]string{"encoding": s.Encoding, "locale": s.Locale, "locale_provider": s.LocaleProvider, "locale_collate": s.LcCollate,
		"locale_ctype": s.LcCtype, "icu_locale": s.IcuLocale, "icu_rules": s.IcuRules, "builtin_locale": s.BuiltinLocale, "collation_version": s.CollationVersion} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

func listDatabases(ctx context.Context, c *call, a *dbArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if err := checkName("cluster_name", a.ClusterName); err != nil {
		return nil, err
	}
	var list cnpgv1.DatabaseList
	if err := c.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var rows []any
	var b strings.Builder
	fmt.Fprintf(&b, "Databases of cluster %s:\n", fmtObj(ns, a.ClusterName))
	for i := range list.Items {
		d := &list.Items[i]
		if d.Spec.ClusterRef.Name != a.ClusterName {
			continue
		}
		rows = append(rows, dbRow(d))
		fmt.Fprintf(&b, "  %s (Database %s): owner=%s ensure=%s reclaim=%s applied=%s\n", d.Spec.Name, d.Name, d.Spec.Owner, firstNonEmpty(string(d.Spec.Ensure), "present"), firstNonEmpty(string(d.Spec.ReclaimPolicy), "retain"), appliedText(d.Status.Applied))
	}
	if len(rows) == 0 {
		b.WriteString("  none (create one with create_postgres_database)\n")
	}
	rows, truncated := limitList(rows)
	return &Result{Text: b.String(), JSONText: a.Format == "json", Data: map[string]any{"cluster": a.ClusterName, "namespace": ns, "count": len(rows), "databases": rows, "truncated": truncated}}, nil
}

func (c *call) findDatabase(ctx context.Context, ns, cluster, db string) (*cnpgv1.Database, error) {
	if err := checkName("cluster_name", cluster); err != nil {
		return nil, err
	}
	if err := checkName("database_name", db); err != nil {
		return nil, err
	}
	var d cnpgv1.Database
	err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: cluster + "-" + db}, &d)
	if err == nil && d.Spec.ClusterRef.Name == cluster && d.Spec.Name == db {
		return &d, nil
	}
	if err != nil && !isNotFound(err) {
		return nil, err
	}
	var list cnpgv1.DatabaseList
	if err := c.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	for i := range list.Items {
		if list.Items[i].Spec.ClusterRef.Name == cluster && list.Items[i].Spec.Name == db {
			return &list.Items[i], nil
		}
	}
	return nil, userErrorf("cluster %s has no Database object for database %q; list them with list_postgres_databases", fmtObj(ns, cluster), db)
}

func databaseStatus(ctx context.Context, c *call, a *dbArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	d, err := c.findDatabase(ctx, ns, a.ClusterName, a.DatabaseName)
	if err != nil {
		return nil, err
	}
	row := dbRow(d)
	row["cluster"], row["namespace"] = a.ClusterName, ns
	row["generation"], row["observed_generation"], row["up_to_date"] = d.Generation, d.Status.ObservedGeneration, d.Status.ObservedGeneration == d.Generation
	row["schemas"], row["extensions"] = d.Status.Schemas, d.Status.Extensions
	return &Result{Text: fmt.Sprintf("Database %s of cluster %s (object %s): applied=%s, observed generation %d of %d. %s", d.Spec.Name, fmtObj(ns, a.ClusterName), d.Name, appliedText(d.Status.Applied), d.Status.ObservedGeneration, d.Generation, d.Status.Message),
		JSONText: a.Format == "json", Data: row}, nil
}

type createDatabaseArgs struct {
	ClusterName      string `json:"cluster_name"`
	DatabaseName     string `json:"database_name"`
	Owner            string `json:"owner"`
	ReclaimPolicy    string `json:"reclaim_policy"`
	Encoding         string `json:"encoding"`
	Locale           string `json:"locale"`
	LocaleProvider   string `json:"locale_provider"`
	LocaleCollate    string `json:"locale_collate"`
	LocaleCType      string `json:"locale_ctype"`
	IcuLocale        string `json:"icu_locale"`
	IcuRules         string `json:"icu_rules"`
	BuiltinLocale    string `json:"builtin_locale"`
	CollationVersion string `json:"collation_version"`
	Namespace        string `json:"namespace"`
	DryRun           bool   `json:"dry_run"`
}

func createDatabase(ctx context.Context, c *call, a *createDatabaseArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if err := checkName("database_name", a.DatabaseName); err != nil {
		return nil, err
	}
	if strings.TrimSpace(a.Owner) == "" {
		return nil, userErrorf("owner is required: name the PostgreSQL role that owns the database (e.g. \"app\")")
	}
	if (a.IcuLocale != "" || a.IcuRules != "") && a.LocaleProvider != "icu" {
		return nil, userErrorf("icu_locale and icu_rules need locale_provider: \"icu\"")
	}
	if a.BuiltinLocale != "" && a.LocaleProvider != "builtin" {
		return nil, userErrorf("builtin_locale needs locale_provider: \"builtin\"")
	}
	policy := firstNonEmpty(a.ReclaimPolicy, "retain")
	if _, err := c.getCluster(ctx, ns, a.ClusterName); err != nil {
		return nil, err
	}
	name := a.ClusterName + "-" + a.DatabaseName
	d := &cnpgv1.Database{
		TypeMeta:   typeMeta(cnpgv1.DatabaseKind),
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: managedLabels(a.ClusterName)},
		Spec: cnpgv1.DatabaseSpec{
			ClusterRef: corev1.LocalObjectReference{Name: a.ClusterName}, Ensure: cnpgv1.EnsurePresent,
			Name: a.DatabaseName, Owner: a.Owner, ReclaimPolicy: cnpgv1.DatabaseReclaimPolicy(policy),
			Encoding: a.Encoding, Locale: a.Locale, LocaleProvider: a.LocaleProvider, LcCollate: a.LocaleCollate, LcCtype: a.LocaleCType,
			IcuLocale: a.IcuLocale, IcuRules: a.IcuRules, BuiltinLocale: a.BuiltinLocale, CollationVersion: a.CollationVersion,
		},
	}
	dSent, err := c.create(ctx, d, a.DryRun)
	if err != nil {
		return nil, err
	}
	obj := dSent
	if a.DryRun {
		return &Result{Text: dryRunText(true, "would create Database "+name+":\n"+yamlish(obj)), Data: map[string]any{"dry_run": true, "action": "create", "object": obj}}, nil
	}
	return &Result{Text: fmt.Sprintf("Database %s (object %s) created for cluster %s, owner %s, reclaim policy %s; the operator creates it in PostgreSQL (check with get_postgres_database_status).", a.DatabaseName, name, fmtObj(ns, a.ClusterName), a.Owner, policy),
		Data: map[string]any{"dry_run": false, "action": "create", "object": obj}}, nil
}

type deleteDatabaseArgs struct {
	ClusterName  string `json:"cluster_name"`
	DatabaseName string `json:"database_name"`
	Confirm      bool   `json:"confirm"`
	Namespace    string `json:"namespace"`
	DryRun       bool   `json:"dry_run"`
}

func deleteDatabase(ctx context.Context, c *call, a *deleteDatabaseArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	d, err := c.findDatabase(ctx, ns, a.ClusterName, a.DatabaseName)
	if err != nil {
		return nil, err
	}
	drops := d.Spec.ReclaimPolicy == cnpgv1.DatabaseReclaimDelete
	if drops && !a.DryRun {
		if res, ok := c.confirm(ctx, a.Confirm, fmt.Sprintf("drop database %s of cluster %s with all its data (reclaim policy delete)", a.DatabaseName, fmtObj(ns, a.ClusterName))); !ok {
			return &Result{raw: res}, nil
		}
	}
	if err := c.Client.Delete(ctx, d, deleteOpts(a.DryRun)...); err != nil {
		return nil, err
	}
	outcome := "the database stays in PostgreSQL, unmanaged (reclaim policy retain)"
	if drops {
		outcome = "the operator drops the database and its data (reclaim policy delete)"
	}
	return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("Database object %s deleted; %s.", d.Name, outcome)),
		Data: map[string]any{"dry_run": a.DryRun, "cluster": a.ClusterName, "namespace": ns, "deleted": "Database/" + d.Name, "database_dropped": drops}}, nil
}
