package tools_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
)

func getRole(t *testing.T, h *harness, name string) *cnpgv1.DatabaseRole {
	t.Helper()
	var r cnpgv1.DatabaseRole
	if err := admin.Client.Get(context.Background(), clientKey(h.ns, name), &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func TestRoles(t *testing.T) {
	h := newHarness(t, hopt{})
	h.cluster("pg", 1, func(c *cnpgv1.Cluster) {
		c.Spec.Managed = &cnpgv1.ManagedConfiguration{Roles: []cnpgv1.RoleConfiguration{{Name: "legacy", Ensure: cnpgv1.EnsurePresent, Login: true}}}
	})
	// The managed roles must be in the spec, which h.cluster wrote before the status: re-apply.
	cl := h.getCluster("pg")
	cl.Spec.Managed = &cnpgv1.ManagedConfiguration{Roles: []cnpgv1.RoleConfiguration{{Name: "legacy", Ensure: cnpgv1.EnsurePresent, Login: true}, {Name: "keepme", Login: true}}}
	if err := admin.Client.Update(context.Background(), cl); err != nil {
		t.Fatal(err)
	}

	h.fails("create_postgres_role", map[string]any{"cluster_name": "pg", "role_name": "postgres"}, "reserved")
	h.fails("create_postgres_role", map[string]any{"cluster_name": "nope", "role_name": "app-user"}, "not found")
	d := h.ok("create_postgres_role", map[string]any{"cluster_name": "pg", "role_name": "app-user", "createdb": true, "dry_run": true})
	if h.exists(&cnpgv1.DatabaseRole{}, "pg-app-user") || h.exists(&corev1.Secret{}, "cnpg-pg-user-app-user") {
		t.Fatal("dry run created objects")
	}
	if !strings.Contains(d["secret"].(map[string]any)["data"].(map[string]any)["password"].(string), "redacted") {
		t.Fatalf("dry run leaks the password: %v", d["secret"])
	}
	res := h.call("create_postgres_role", map[string]any{"cluster_name": "pg", "role_name": "app-user", "createdb": true, "in_roles": []string{"pg_read_all_data"}})
	if res.IsError {
		t.Fatal(text(res))
	}
	r := getRole(t, h, "pg-app-user")
	if r.Spec.Name != "app-user" || !r.Spec.Login || !r.Spec.CreateDB || r.Spec.ClusterRef.Name != "pg" || r.Spec.PasswordSecret == nil || r.Spec.InRoles[0] != "pg_read_all_data" {
		t.Fatalf("DatabaseRole: %+v", r.Spec)
	}
	var sec corev1.Secret
	if err := admin.Client.Get(context.Background(), clientKey(h.ns, r.Spec.PasswordSecret.Name), &sec); err != nil {
		t.Fatal(err)
	}
	pw := string(sec.Data["password"])
	if sec.Type != corev1.SecretTypeBasicAuth || string(sec.Data["username"]) != "app-user" || len(pw) < 20 || sec.Labels[tools.LabelReload] != "true" {
		t.Fatalf("secret: %+v", sec)
	}
	raw, _ := json.Marshal(res)
	if strings.Contains(string(raw), pw) {
		t.Fatal("create_postgres_role returned the password")
	}
	h.fails("create_postgres_role", map[string]any{"cluster_name": "pg", "role_name": "app-user"}, "already exists")

	d = h.ok("list_postgres_roles", map[string]any{"cluster_name": "pg"})
	if d["count"] != float64(3) {
		t.Fatalf("list: %v", d)
	}
	// The operator reports the role applied.
	r.Status.Applied = ptr.To(true)
	r.Status.ObservedGeneration = r.Generation
	if err := admin.Client.Status().Update(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if d := h.ok("get_postgres_role_status", map[string]any{"cluster_name": "pg", "role_name": "app-user"}); d["applied"] != true || d["up_to_date"] != true {
		t.Fatalf("status: %v", d)
	}
	if d := h.ok("get_postgres_role_status", map[string]any{"cluster_name": "pg", "role_name": "legacy"}); d["object"] != "Cluster.spec.managed.roles" {
		t.Fatalf("managed role status: %v", d)
	}

	h.fails("update_postgres_role", map[string]any{"cluster_name": "pg", "role_name": "app-user"}, "nothing to change")
	res = h.call("update_postgres_role", map[string]any{"cluster_name": "pg", "role_name": "app-user", "createdb": false, "superuser": true, "password": "N3w-Secret-Value"})
	if res.IsError {
		t.Fatal(text(res))
	}
	raw, _ = json.Marshal(res)
	if strings.Contains(string(raw), "N3w-Secret-Value") {
		t.Fatal("update_postgres_role echoed the password")
	}
	r = getRole(t, h, "pg-app-user")
	if r.Spec.CreateDB || !r.Spec.Superuser || !r.Spec.Login {
		t.Fatalf("update: %+v", r.Spec)
	}
	_ = admin.Client.Get(context.Background(), clientKey(h.ns, sec.Name), &sec)
	if string(sec.Data["password"]) != "N3w-Secret-Value" {
		t.Fatal("password not updated in the Secret")
	}
	for _, line := range h.auditLines() {
		if b, _ := json.Marshal(line); strings.Contains(string(b), "N3w-Secret-Value") || strings.Contains(string(b), pw) {
			t.Fatalf("audit line leaks a password: %s", b)
		}
	}

	// Drop via the DatabaseRole reclaim policy. A finalizer (as the operator sets) keeps the object
	// readable after deletion so the test can see the policy it was deleted with.
	r.Finalizers = []string{"cnpg.io/test-hold"}
	if err := admin.Client.Update(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	h.fails("delete_postgres_role", map[string]any{"cluster_name": "pg", "role_name": "app-user"}, "confirm: true")
	h.ok("delete_postgres_role", map[string]any{"cluster_name": "pg", "role_name": "app-user", "confirm": true})
	r = getRole(t, h, "pg-app-user")
	if r.DeletionTimestamp == nil || r.Spec.ReclaimPolicy != cnpgv1.DatabaseRoleReclaimDelete {
		t.Fatalf("role must be deleted with reclaim policy delete: %+v", r.Spec.ReclaimPolicy)
	}
	if h.exists(&corev1.Secret{}, sec.Name) {
		t.Fatal("password secret not deleted")
	}
	r.Finalizers = nil
	_ = admin.Client.Update(context.Background(), r)

	// Roles in spec.managed.roles: ensure absent (removing them would leave them in PostgreSQL).
	h.ok("delete_postgres_role", map[string]any{"cluster_name": "pg", "role_name": "legacy", "confirm": true})
	h.ok("delete_postgres_role", map[string]any{"cluster_name": "pg", "role_name": "keepme", "keep_in_database": true, "confirm": true})
	roles := h.getCluster("pg").Spec.Managed.Roles
	if len(roles) != 1 || roles[0].Name != "legacy" || roles[0].Ensure != cnpgv1.EnsureAbsent {
		t.Fatalf("managed roles after delete: %+v", roles)
	}
	h.fails("delete_postgres_role", map[string]any{"cluster_name": "pg", "role_name": "ghost", "confirm": true}, "has no role")
}

func TestDatabases(t *testing.T) {
	h := newHarness(t, hopt{})
	h.cluster("pg", 1, nil)
	h.fails("create_postgres_database", map[string]any{"cluster_name": "pg", "database_name": "app", "owner": "app", "icu_locale": "en"}, "locale_provider")
	// The CRD's CEL rule refuses the reserved name: a real 422 from the API server, explained.
	h.fails("create_postgres_database", map[string]any{"cluster_name": "pg", "database_name": "postgres", "owner": "app"}, "422", "reserved")
	h.ok("create_postgres_database", map[string]any{"cluster_name": "pg", "database_name": "app", "owner": "app", "dry_run": true})
	if h.exists(&cnpgv1.Database{}, "pg-app") {
		t.Fatal("dry run created the Database")
	}
	h.ok("create_postgres_database", map[string]any{"cluster_name": "pg", "database_name": "app", "owner": "app", "encoding": "UTF8", "locale_provider": "icu", "icu_locale": "en-US"})
	h.ok("create_postgres_database", map[string]any{"cluster_name": "pg", "database_name": "scratch", "owner": "app", "reclaim_policy": "delete"})
	var db cnpgv1.Database
	if err := admin.Client.Get(context.Background(), clientKey(h.ns, "pg-app"), &db); err != nil {
		t.Fatal(err)
	}
	if db.Spec.Name != "app" || db.Spec.IcuLocale != "en-US" || db.Spec.Encoding != "UTF8" || db.Spec.ReclaimPolicy != cnpgv1.DatabaseReclaimRetain {
		t.Fatalf("database: %+v", db.Spec)
	}
	if d := h.ok("list_postgres_databases", map[string]any{"cluster_name": "pg"}); d["count"] != float64(2) {
		t.Fatalf("list: %v", d)
	}
	db.Status.Applied, db.Status.ObservedGeneration = ptr.To(true), db.Generation
	if err := admin.Client.Status().Update(context.Background(), &db); err != nil {
		t.Fatal(err)
	}
	if d := h.ok("get_postgres_database_status", map[string]any{"cluster_name": "pg", "database_name": "app"}); d["applied"] != true {
		t.Fatalf("status: %v", d)
	}
	// retain: no confirmation needed, the database stays.
	if d := h.ok("delete_postgres_database", map[string]any{"cluster_name": "pg", "database_name": "app"}); d["database_dropped"] != false {
		t.Fatalf("delete retain: %v", d)
	}
	h.fails("delete_postgres_database", map[string]any{"cluster_name": "pg", "database_name": "scratch"}, "confirm: true")
	if !h.exists(&cnpgv1.Database{}, "pg-scratch") {
		t.Fatal("deleted without confirmation")
	}
	h.ok("delete_postgres_database", map[string]any{"cluster_name": "pg", "database_name": "scratch", "confirm": true})
	if h.exists(&cnpgv1.Database{}, "pg-scratch") {
		t.Fatal("not deleted")
	}
}
