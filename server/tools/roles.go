package tools

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	"github.com/mark3labs/mcp-go/mcp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const databaseRoleKind = "DatabaseRole"

func roleTools(d *Deps) []Tool {
	cluster := pName("cluster_name", "Cluster name.", true)
	role := pName("role_name", "PostgreSQL role name (RFC 1123: lowercase letters, digits, '-').", true)
	attrs := func(required bool) []mcp.ToolOption {
		b := func(name, desc string, def bool) mcp.ToolOption {
			if required {
				return mcp.WithBoolean(name, mcp.DefaultBool(def), mcp.Description(desc))
			}
			return mcp.WithBoolean(name, mcp.Description(desc+" Omit to leave unchanged."))
		}
		return []mcp.ToolOption{
			b("login", "Role can log in.", true), b("superuser", "Superuser.", false), b("inherit", "Inherits privileges of roles it is a member of.", true),
			b("createdb", "Can create databases.", false), b("createrole", "Can create roles.", false), b("replication", "Can start streaming replication.", false),
		}
	}
	create := append([]mcp.ToolOption{cluster, role}, attrs(true)...)
	create = append(create,
		mcp.WithString("reclaim_policy", mcp.Enum("retain", "delete"), mcp.DefaultString("retain"), mcp.Description("What happens in PostgreSQL when the DatabaseRole object is deleted: 'retain' keeps the role, 'delete' drops it.")),
		mcp.WithArray("in_roles", mcp.WithStringItems(), mcp.Description("Roles this role is a member of.")),
		mcp.WithInteger("connection_limit", mcp.Min(-1), mcp.Description("Maximum concurrent connections (-1 = unlimited).")),
		pNamespace(), pDryRun())
	update := append([]mcp.ToolOption{cluster, role}, attrs(false)...)
	update = append(update, mcp.WithString("password", mcp.Description("New password, stored in the role's password Secret. Never echoed back or logged.")), pNamespace(), pDryRun())
	return []Tool{
		build(d, spec{
			name: "list_postgres_roles", title: "List PostgreSQL roles", area: "roles", readOnly: true, idempotent: true,
			desc:   "List the PostgreSQL roles of a cluster: DatabaseRole objects (CloudNativePG 1.30) and roles in the Cluster's spec.managed.roles.",
			calls:  []string{"get clusters", "list databaseroles"},
			params: []mcp.ToolOption{cluster, pNamespace(), pFormat()},
		}, listRoles),
		build(d, spec{
			name: "get_postgres_role_status", title: "Get role status", area: "roles", readOnly: true, idempotent: true,
			desc:   "Show whether a role was applied in PostgreSQL (DatabaseRole status: applied, message, conditions, password Secret version) or, for a role in spec.managed.roles, the cluster's managedRolesStatus.",
			calls:  []string{"get databaseroles", "list databaseroles", "get clusters"},
			params: []mcp.ToolOption{cluster, role, pNamespace(), pFormat()},
		}, roleStatus),
		build(d, spec{
			name: "create_postgres_role", title: "Create a PostgreSQL role", area: "roles",
			desc: "Create a PostgreSQL role (a DatabaseRole object <cluster>-<role>). A login role gets a random password in the Secret " +
				"cnpg-<cluster>-user-<role>; the password is never returned, read it from the Secret.",
			calls:  []string{"get clusters", "get databaseroles", "list databaseroles", "create secrets", "create databaseroles", "delete secrets (rollback)"},
			params: create,
		}, createRole),
		build(d, spec{
			name: "update_postgres_role", title: "Update a PostgreSQL role", area: "roles", idempotent: true,
			desc:   "Change attributes of a role with a merge patch of its DatabaseRole spec, and optionally its password (merge patch of the password Secret).",
			calls:  []string{"get databaseroles", "list databaseroles", "patch databaseroles (merge: spec)", "patch secrets (merge: data.password)"},
			params: update,
		}, updateRole),
		build(d, spec{
			name: "delete_postgres_role", title: "Drop a PostgreSQL role", area: "roles", destructive: true, idempotent: true,
			desc: "Drop a role in PostgreSQL (keep_in_database=true only deletes its DatabaseRole object), whether a DatabaseRole or in spec.managed.roles, " +
				"and the password Secret this server created. Destructive: needs confirmation.",
			calls: []string{"get databaseroles", "list databaseroles", "patch databaseroles (merge: spec.databaseRoleReclaimPolicy)", "delete databaseroles", "get clusters", "patch clusters (json: spec.managed.roles[i].ensure)", "get secrets", "delete secrets"},
			params: []mcp.ToolOption{cluster, role,
				mcp.WithBoolean("keep_in_database", mcp.DefaultBool(false), mcp.Description("Stop managing the role but keep it in PostgreSQL.")),
				pConfirm(""), pNamespace(), pDryRun()},
		}, deleteRole),
	}
}

type roleArgs struct {
	ClusterName string `json:"cluster_name"`
	RoleName    string `json:"role_name"`
	Namespace   string `json:"namespace"`
	Format      string `json:"format"`
}

func listRoles(ctx context.Context, c *call, a *roleArgs) (*Result, error) {
	ns, cl, err := c.namespacedCluster(ctx, a.Namespace, a.ClusterName)
	if err != nil {
		return nil, err
	}
	var list cnpgv1.DatabaseRoleList
	if err := c.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var rows []any
	var b strings.Builder
	fmt.Fprintf(&b, "PostgreSQL roles of cluster %s:\n", fmtObj(ns, a.ClusterName))
	for _, r := range list.Items {
		if r.Spec.ClusterRef.Name != a.ClusterName {
			continue
		}
		rows = append(rows, roleRow(&r.Spec.RoleConfiguration, "DatabaseRole/"+r.Name, string(r.Spec.ReclaimPolicy), r.Status.Applied))
		fmt.Fprintf(&b, "  %s (DatabaseRole %s): login=%s superuser=%s reclaim=%s applied=%s\n", r.Spec.Name, r.Name, yesNo(r.Spec.Login), yesNo(r.Spec.Superuser), firstNonEmpty(string(r.Spec.ReclaimPolicy), "retain"), appliedText(r.Status.Applied))
	}
	if cl.Spec.Managed != nil {
		for i := range cl.Spec.Managed.Roles {
			r := &cl.Spec.Managed.Roles[i]
			rows = append(rows, roleRow(r, "Cluster.spec.managed.roles", "", nil))
			fmt.Fprintf(&b, "  %s (spec.managed.roles): ensure=%s login=%s superuser=%s\n", r.Name, firstNonEmpty(string(r.Ensure), "present"), yesNo(r.Login), yesNo(r.Superuser))
		}
	}
	if len(rows) == 0 {
		b.WriteString("  none (create one with create_postgres_role)\n")
	}
	rows, truncated := limitList(rows)
	return &Result{Text: b.String(), JSONText: a.Format == "json", Data: map[string]any{"cluster": a.ClusterName, "namespace": ns, "count": len(rows), "roles": rows, "truncated": truncated}}, nil
}

func roleRow(r *cnpgv1.RoleConfiguration, source, reclaim string, applied *bool) map[string]any {
	m := map[string]any{"name": r.Name, "source": source, "ensure": firstNonEmpty(string(r.Ensure), "present"), "login": r.Login, "superuser": r.Superuser,
		"inherit": r.Inherit == nil || *r.Inherit, "createdb": r.CreateDB, "createrole": r.CreateRole, "replication": r.Replication, "in_roles": r.InRoles}
	if r.PasswordSecret != nil {
		m["password_secret"] = r.PasswordSecret.Name
	}
	if reclaim != "" {
		m["reclaim_policy"] = reclaim
	}
	if applied != nil {
		m["applied"] = *applied
	}
	return m
}

func appliedText(b *bool) string {
	if b == nil {
		return "pending"
	}
	return yesNo(*b)
}

// findRole returns the DatabaseRole of cluster/role, whatever the object is called.
func (c *call) findRole(ctx context.Context, ns, cluster, role string) (*cnpgv1.DatabaseRole, error) {
	var r cnpgv1.DatabaseRole
	err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: cluster + "-" + role}, &r)
	if err == nil && r.Spec.ClusterRef.Name == cluster && r.Spec.Name == role {
		return &r, nil
	}
	if err != nil && !isNotFound(err) {
		return nil, err
	}
	var list cnpgv1.DatabaseRoleList
	if err := c.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	for i := range list.Items {
		if list.Items[i].Spec.ClusterRef.Name == cluster && list.Items[i].Spec.Name == role {
			return &list.Items[i], nil
		}
	}
	return nil, nil
}

func roleStatus(ctx context.Context, c *call, a *roleArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if err := checkName("cluster_name", a.ClusterName); err != nil {
		return nil, err
	}
	r, err := c.findRole(ctx, ns, a.ClusterName, a.RoleName)
	if err != nil {
		return nil, err
	}
	if r != nil {
		st := r.Status
		data := map[string]any{"cluster": a.ClusterName, "namespace": ns, "role": a.RoleName, "object": "DatabaseRole/" + r.Name,
			"applied": st.Applied, "message": st.Message, "observed_generation": st.ObservedGeneration, "generation": r.Generation,
			"up_to_date": st.ObservedGeneration == r.Generation, "password_secret_version": st.SecretResourceVersion, "conditions": conditionList(st.Conditions)}
		text := fmt.Sprintf("Role %s of cluster %s (DatabaseRole %s): applied=%s, observed generation %d of %d. %s", a.RoleName, fmtObj(ns, a.ClusterName), r.Name, appliedText(st.Applied), st.ObservedGeneration, r.Generation, st.Message)
		return &Result{Text: text, JSONText: a.Format == "json", Data: data}, nil
	}
	cl, err := c.getCluster(ctx, ns, a.ClusterName)
	if err != nil {
		return nil, err
	}
	if cl.Spec.Managed != nil {
		for _, mr := range cl.Spec.Managed.Roles {
			if mr.Name == a.RoleName {
				ms := cl.Status.ManagedRolesStatus
				data := map[string]any{"cluster": a.ClusterName, "namespace": ns, "role": a.RoleName, "object": "Cluster.spec.managed.roles",
					"ensure": firstNonEmpty(string(mr.Ensure), "present"), "by_status": ms.ByStatus, "cannot_reconcile": ms.CannotReconcile[a.RoleName]}
				return &Result{Text: fmt.Sprintf("Role %s is managed in cluster %s spec.managed.roles (ensure=%s); reconcile errors: %s", a.RoleName, fmtObj(ns, a.ClusterName), firstNonEmpty(string(mr.Ensure), "present"), joinOr(ms.CannotReconcile[a.RoleName], "none")), JSONText: a.Format == "json", Data: data}, nil
			}
		}
	}
	return nil, userErrorf("cluster %s has no role %q (neither a DatabaseRole nor in spec.managed.roles); list them with list_postgres_roles", fmtObj(ns, a.ClusterName), a.RoleName)
}

var reservedRoles = map[string]string{"postgres": "the superuser", "streaming_replica": "replication", "app": ""}

type createRoleArgs struct {
	ClusterName     string   `json:"cluster_name"`
	RoleName        string   `json:"role_name"`
	Login           *bool    `json:"login"`
	Superuser       bool     `json:"superuser"`
	Inherit         *bool    `json:"inherit"`
	CreateDB        bool     `json:"createdb"`
	CreateRole      bool     `json:"createrole"`
	Replication     bool     `json:"replication"`
	ReclaimPolicy   string   `json:"reclaim_policy"`
	InRoles         []string `json:"in_roles"`
	ConnectionLimit *int64   `json:"connection_limit"`
	Namespace       string   `json:"namespace"`
	DryRun          bool     `json:"dry_run"`
}

func createRole(ctx context.Context, c *call, a *createRoleArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if err := checkName("role_name", a.RoleName); err != nil {
		return nil, err
	}
	if why, ok := reservedRoles[a.RoleName]; ok && why != "" {
		return nil, userErrorf("role name %q is reserved by CloudNativePG (%s role); choose another name", a.RoleName, why)
	}
	if _, err := c.getCluster(ctx, ns, a.ClusterName); err != nil {
		return nil, err
	}
	if existing, err := c.findRole(ctx, ns, a.ClusterName, a.RoleName); err != nil {
		return nil, err
	} else if existing != nil {
		return nil, userErrorf("role %q already exists in cluster %s (DatabaseRole %s); change it with update_postgres_role", a.RoleName, fmtObj(ns, a.ClusterName), existing.Name)
	}
	policy := firstNonEmpty(a.ReclaimPolicy, "retain")
	if policy != "retain" && policy != "delete" {
		return nil, userErrorf("reclaim_policy must be 'retain' or 'delete' (got %q)", policy)
	}
	login := a.Login == nil || *a.Login
	inherit := a.Inherit == nil || *a.Inherit
	objName := a.ClusterName + "-" + a.RoleName
	if len(objName) > 253 {
		return nil, userErrorf("cluster_name + role_name are too long for an object name; use shorter names")
	}
	dr := &cnpgv1.DatabaseRole{
		TypeMeta:   typeMeta(databaseRoleKind),
		ObjectMeta: metav1.ObjectMeta{Name: objName, Namespace: ns, Labels: managedLabels(a.ClusterName)},
		Spec: cnpgv1.DatabaseRoleSpec{
			RoleConfiguration: cnpgv1.RoleConfiguration{Name: a.RoleName, Login: login, Superuser: a.Superuser, Inherit: &inherit,
				CreateDB: a.CreateDB, CreateRole: a.CreateRole, Replication: a.Replication, InRoles: a.InRoles},
			ClusterRef:    corev1.LocalObjectReference{Name: a.ClusterName},
			ReclaimPolicy: cnpgv1.DatabaseRoleReclaimPolicy(policy),
		},
	}
	if a.ConnectionLimit != nil {
		dr.Spec.ConnectionLimit = *a.ConnectionLimit
	} else {
		dr.Spec.ConnectionLimit = -1
	}
	var secret *corev1.Secret
	var secretSent map[string]any
	if login {
		pw, err := randomPassword(24)
		if err != nil {
			return nil, err
		}
		secret = &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: "cnpg-" + a.ClusterName + "-user-" + a.RoleName, Namespace: ns, Labels: managedLabels(a.ClusterName)},
			Type:       corev1.SecretTypeBasicAuth,
			Data:       map[string][]byte{"username": []byte(a.RoleName), "password": []byte(pw)},
		}
		secret.Labels[LabelReload] = "true"
		secret.Labels["cnpg.io/role"] = a.RoleName
		if err := checkName("password Secret name", secret.Name); err != nil {
			return nil, userErrorf("the password Secret name %q would exceed 63 characters; use a shorter cluster or role name", secret.Name)
		}
		dr.Spec.PasswordSecret = &cnpgv1.LocalObjectReference{Name: secret.Name}
		secretSent = toMap(secret)
		if err := c.Client.Create(ctx, secret, createOpts(a.DryRun)...); err != nil {
			return nil, err
		}
	}
	drSent := toMap(dr)
	if err := c.Client.Create(ctx, dr, createOpts(a.DryRun)...); err != nil {
		if secret != nil && !a.DryRun {
			if derr := c.Client.Delete(context.WithoutCancel(ctx), secret); derr != nil && !isNotFound(derr) {
				return nil, fmt.Errorf("%w (and removing the password Secret %s created for it failed: %v)", err, secret.Name, derr)
			}
		}
		return nil, err
	}
	data := map[string]any{"dry_run": a.DryRun, "action": "create", "object": drSent}
	text := fmt.Sprintf("Role %s created for cluster %s as DatabaseRole %s (reclaim policy %s); the operator applies it in PostgreSQL (check with get_postgres_role_status).", a.RoleName, fmtObj(ns, a.ClusterName), objName, policy)
	if secret != nil {
		sm := secretSent
		sm["data"] = map[string]any{"username": a.RoleName, "password": "<redacted: generated, stored only in the Secret>"}
		data["secret"] = sm
		text += fmt.Sprintf(" Password: in Secret %s (key 'password'); it is not shown here.", secret.Name)
	}
	if a.DryRun {
		text = dryRunText(true, fmt.Sprintf("would create DatabaseRole %s:\n%s", objName, yamlish(data["object"])))
	}
	return &Result{Text: text, Data: data}, nil
}

func randomPassword(n int) (string, error) {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", err
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b), nil
}

type updateRoleArgs struct {
	ClusterName string  `json:"cluster_name"`
	RoleName    string  `json:"role_name"`
	Login       *bool   `json:"login"`
	Superuser   *bool   `json:"superuser"`
	Inherit     *bool   `json:"inherit"`
	CreateDB    *bool   `json:"createdb"`
	CreateRole  *bool   `json:"createrole"`
	Replication *bool   `json:"replication"`
	Password    *string `json:"password"`
	Namespace   string  `json:"namespace"`
	DryRun      bool    `json:"dry_run"`
}

func updateRole(ctx context.Context, c *call, a *updateRoleArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if err := checkName("cluster_name", a.ClusterName); err != nil {
		return nil, err
	}
	r, err := c.findRole(ctx, ns, a.ClusterName, a.RoleName)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, userErrorf("cluster %s has no DatabaseRole for role %q; create it with create_postgres_role (roles in spec.managed.roles are edited on the Cluster)", fmtObj(ns, a.ClusterName), a.RoleName)
	}
	specPatch := map[string]any{}
	var changes []string
	for _, f := range []struct {
		key string
		v   *bool
	}{{"login", a.Login}, {"superuser", a.Superuser}, {"inherit", a.Inherit}, {"createdb", a.CreateDB}, {"createrole", a.CreateRole}, {"replication", a.Replication}} {
		if f.v != nil {
			specPatch[f.key] = *f.v
			changes = append(changes, fmt.Sprintf("%s=%t", f.key, *f.v))
		}
	}
	if len(specPatch) == 0 && a.Password == nil {
		return nil, userErrorf("nothing to change: pass at least one of login, superuser, inherit, createdb, createrole, replication, password")
	}
	data := map[string]any{"dry_run": a.DryRun, "cluster": a.ClusterName, "namespace": ns, "role": a.RoleName, "object": "DatabaseRole/" + r.Name, "patch_type": mergePatchType}
	if len(specPatch) > 0 {
		patch, err := c.mergePatch(ctx, r, map[string]any{"spec": specPatch}, a.DryRun)
		if err != nil {
			return nil, err
		}
		data["patch"] = patch
	}
	if a.Password != nil {
		if *a.Password == "" {
			return nil, userErrorf("password must not be empty")
		}
		if r.Spec.PasswordSecret == nil {
			return nil, userErrorf("role %q has no password Secret (spec.passwordSecret); it cannot take a password through this tool", a.RoleName)
		}
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: r.Spec.PasswordSecret.Name, Namespace: ns}}
		raw, _ := json.Marshal(map[string]any{"data": map[string]any{"password": base64.StdEncoding.EncodeToString([]byte(*a.Password))}})
		if err := c.Client.Patch(ctx, sec, client.RawPatch(types.MergePatchType, raw), objPatchOpts(a.DryRun)...); err != nil {
			return nil, err
		}
		data["secret_patch"] = map[string]any{"secret": sec.Name, "patch": map[string]any{"data": map[string]any{"password": "<redacted>"}}}
		changes = append(changes, "password (Secret "+sec.Name+")")
	}
	return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("Role %s of cluster %s updated: %s. The operator applies it in PostgreSQL.", a.RoleName, fmtObj(ns, a.ClusterName), strings.Join(changes, ", "))), Data: data}, nil
}

type deleteRoleArgs struct {
	ClusterName    string `json:"cluster_name"`
	RoleName       string `json:"role_name"`
	KeepInDatabase bool   `json:"keep_in_database"`
	Confirm        bool   `json:"confirm"`
	Namespace      string `json:"namespace"`
	DryRun         bool   `json:"dry_run"`
}

func deleteRole(ctx context.Context, c *call, a *deleteRoleArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if err := checkName("cluster_name", a.ClusterName); err != nil {
		return nil, err
	}
	r, err := c.findRole(ctx, ns, a.ClusterName, a.RoleName)
	if err != nil {
		return nil, err
	}
	what := "drop PostgreSQL role " + a.RoleName + " of cluster " + fmtObj(ns, a.ClusterName)
	if a.KeepInDatabase {
		what = "stop managing PostgreSQL role " + a.RoleName + " of cluster " + fmtObj(ns, a.ClusterName) + " (kept in PostgreSQL)"
	}
	if r == nil {
		return c.deleteManagedRole(ctx, ns, a, what)
	}
	if !a.DryRun {
		if res, ok := c.confirm(ctx, a.Confirm, what); !ok {
			return &Result{raw: res}, nil
		}
	}
	want := cnpgv1.DatabaseRoleReclaimDelete
	if a.KeepInDatabase {
		want = cnpgv1.DatabaseRoleReclaimRetain
	}
	var patches []any
	if r.Spec.ReclaimPolicy != want && !(want == cnpgv1.DatabaseRoleReclaimRetain && r.Spec.ReclaimPolicy == "") {
		p, err := c.mergePatch(ctx, r, map[string]any{"spec": map[string]any{"databaseRoleReclaimPolicy": string(want)}}, a.DryRun)
		if err != nil {
			return nil, err
		}
		patches = append(patches, p)
	}
	if err := c.Client.Delete(ctx, r, deleteOpts(a.DryRun)...); err != nil {
		return nil, err
	}
	secretDeleted := ""
	if r.Spec.PasswordSecret != nil {
		var s corev1.Secret
		err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: r.Spec.PasswordSecret.Name}, &s)
		switch {
		case err == nil && s.Labels[LabelManagedBy] == ManagedByValue:
			if err := c.Client.Delete(ctx, &s, deleteOpts(a.DryRun)...); err != nil && !isNotFound(err) {
				return nil, err
			}
			secretDeleted = s.Name
		case err != nil && !isNotFound(err):
			return nil, err
		}
	}
	outcome := "the operator drops it from PostgreSQL (reclaim policy delete)"
	if a.KeepInDatabase {
		outcome = "it stays in PostgreSQL, unmanaged (reclaim policy retain)"
	}
	return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("DatabaseRole %s deleted; %s. Password Secret deleted: %s.", r.Name, outcome, firstNonEmpty(secretDeleted, "none"))),
		Data: map[string]any{"dry_run": a.DryRun, "cluster": a.ClusterName, "namespace": ns, "role": a.RoleName, "mechanism": "DatabaseRole reclaim policy " + string(want),
			"patches": patches, "deleted": "DatabaseRole/" + r.Name, "secret_deleted": secretDeleted}}, nil
}

// deleteManagedRole handles a role declared in Cluster.spec.managed.roles: CloudNativePG ignores
// roles removed from that list, so dropping one means ensure: absent.
func (c *call) deleteManagedRole(ctx context.Context, ns string, a *deleteRoleArgs, what string) (*Result, error) {
	cl, err := c.getCluster(ctx, ns, a.ClusterName)
	if err != nil {
		return nil, err
	}
	idx := -1
	if cl.Spec.Managed != nil {
		for i, r := range cl.Spec.Managed.Roles {
			if r.Name == a.RoleName {
				idx = i
			}
		}
	}
	if idx < 0 {
		return nil, userErrorf("cluster %s has no role %q (neither a DatabaseRole nor in spec.managed.roles); list them with list_postgres_roles", fmtObj(ns, a.ClusterName), a.RoleName)
	}
	if !a.DryRun {
		if res, ok := c.confirm(ctx, a.Confirm, what); !ok {
			return &Result{raw: res}, nil
		}
	}
	path := fmt.Sprintf("/spec/managed/roles/%d", idx)
	ops := []map[string]any{{"op": "test", "path": path + "/name", "value": a.RoleName}}
	mechanism := "spec.managed.roles ensure: absent"
	if a.KeepInDatabase {
		ops = append(ops, map[string]any{"op": "remove", "path": path})
		mechanism = "removed from spec.managed.roles (the operator leaves it in PostgreSQL)"
	} else {
		ops = append(ops, map[string]any{"op": "add", "path": path + "/ensure", "value": "absent"})
	}
	raw, _ := json.Marshal(ops)
	if err := c.Client.Patch(ctx, cl, client.RawPatch(types.JSONPatchType, raw), objPatchOpts(a.DryRun)...); err != nil {
		return nil, err
	}
	return &Result{Text: dryRunText(a.DryRun, fmt.Sprintf("Role %s of cluster %s: %s.", a.RoleName, fmtObj(ns, a.ClusterName), mechanism)),
		Data: map[string]any{"dry_run": a.DryRun, "cluster": a.ClusterName, "namespace": ns, "role": a.RoleName, "mechanism": mechanism, "patch": ops, "patch_type": "application/json-patch+json"}}, nil
}
