package tools_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools/rbac"
)

type step struct {
	tool string
	args map[string]any
}

// workflow calls every tool once, in an order that works on the fixtures of rbacFixtures.
func workflow(readOnly bool) []step {
	read := []step{
		{"list_postgres_clusters", nil},
		{"get_cluster_status", map[string]any{"name": "pg", "detail_level": "detailed"}},
		{"get_cluster_resize_status", map[string]any{"name": "pg"}},
		{"list_postgres_roles", map[string]any{"cluster_name": "pg"}},
		{"get_postgres_role_status", map[string]any{"cluster_name": "pg", "role_name": "fixture"}},
		{"list_postgres_databases", map[string]any{"cluster_name": "pg"}},
		{"get_postgres_database_status", map[string]any{"cluster_name": "pg", "database_name": "fixture"}},
		{"list_backups", nil},
		{"get_backup", map[string]any{"name": "fixture"}},
		{"list_scheduled_backups", nil},
		{"list_poolers", nil},
		{"get_cluster_logs", map[string]any{"name": "pg", "instance": "pg-1", "tail_lines": 5}},
		{"diagnose_postgres_cluster", map[string]any{"name": "pg", "log_lines": 2}},
		{"get_cluster_recoverability", map[string]any{"name": "pgb"}},
		{"get_my_permissions", nil},
	}
	if readOnly {
		return read
	}
	return append(read,
		step{"create_postgres_cluster", map[string]any{"name": "pg2", "instances": 1}},
		step{"scale_postgres_cluster", map[string]any{"name": "pg2", "instances": 2}},
		step{"resize_postgres_cluster", map[string]any{"name": "pg2", "storage_size": "20Gi"}},
		step{"create_postgres_role", map[string]any{"cluster_name": "pg", "role_name": "app"}},
		step{"update_postgres_role", map[string]any{"cluster_name": "pg", "role_name": "app", "password": "another-pass", "createdb": true}},
		step{"delete_postgres_role", map[string]any{"cluster_name": "pg", "role_name": "app", "confirm": true}},
		step{"create_postgres_database", map[string]any{"cluster_name": "pg", "database_name": "app", "owner": "app"}},
		step{"delete_postgres_database", map[string]any{"cluster_name": "pg", "database_name": "app"}},
		step{"create_backup", map[string]any{"cluster_name": "pg", "method": "volumeSnapshot"}},
		step{"restore_postgres_cluster", map[string]any{"name": "pgb-restored", "source_cluster": "pgb", "dry_run": true}},
		step{"create_scheduled_backup", map[string]any{"cluster_name": "pg", "name": "daily", "schedule": "0 0 2 * * *", "method": "volumeSnapshot"}},
		step{"suspend_scheduled_backup", map[string]any{"name": "daily"}},
		step{"resume_scheduled_backup", map[string]any{"name": "daily"}},
		step{"create_pooler", map[string]any{"cluster_name": "pg", "name": "pooler-pg"}},
		step{"delete_pooler", map[string]any{"name": "pooler-pg", "confirm": true}},
		step{"restart_postgres_cluster", map[string]any{"name": "pg"}},
		step{"reload_postgres_cluster", map[string]any{"name": "pg"}},
		step{"hibernate_postgres_cluster", map[string]any{"name": "pg", "state": "on", "confirm": true}},
		step{"hibernate_postgres_cluster", map[string]any{"name": "pg", "state": "off"}},
		step{"fence_postgres_instances", map[string]any{"name": "pg", "state": "on", "instance": "pg-2", "confirm": true}},
		step{"fence_postgres_instances", map[string]any{"name": "pg", "state": "off", "instance": "pg-2"}},
		step{"set_cluster_maintenance", map[string]any{"name": "pg", "state": "set"}},
		step{"set_cluster_maintenance", map[string]any{"name": "pg", "state": "unset"}},
		step{"restart_postgres_cluster", map[string]any{"name": "pg", "instance": "pg-3"}},
		step{"delete_cluster_instance", map[string]any{"name": "pg", "instance": "pg-2", "confirm": true}},
		step{"promote_cluster_instance", map[string]any{"name": "pg", "instance": "pg-4"}},
		step{"restart_postgres_cluster", map[string]any{"name": "pg", "instance": "pg-1"}},
		step{"delete_postgres_cluster", map[string]any{"name": "pg2", "confirm": true}},
	)
}

// rbacFixtures creates, as the admin (user or operator), what the workflow reads.
func rbacFixtures(t *testing.T, h *harness) {
	t.Helper()
	ctx := context.Background()
	h.cluster("pg", 4, nil)
	h.pod("pg", "pg-1", true)
	env.Kubelet().SetLog(h.ns, "pg-1", "postgres", "{\"msg\":\"ready\"}\n")
	for _, n := range []string{"pg-2", "pg-3", "pg-4"} {
		h.pod("pg", n, false)
	}
	// a cluster backed up through the Barman Cloud plugin, with its ObjectStore's recovery window
	h.pluginCluster("pgb", "store", 1)
	h.pod("pgb", "pgb-1", false)
	h.objectStore("store", "pgb", fixedNow.Add(-time.Hour), fixedNow.Add(-time.Hour))
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "pg-2", Namespace: h.ns, Labels: map[string]string{tools.LabelCluster: "pg", tools.LabelInstance: "pg-2"}},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	for _, o := range []clientObject{
		pvc,
		&cnpgv1.DatabaseRole{ObjectMeta: metav1.ObjectMeta{Name: "pg-fixture", Namespace: h.ns}, Spec: cnpgv1.DatabaseRoleSpec{RoleConfiguration: cnpgv1.RoleConfiguration{Name: "fixture"}, ClusterRef: corev1.LocalObjectReference{Name: "pg"}}},
		&cnpgv1.Database{ObjectMeta: metav1.ObjectMeta{Name: "pg-fixture", Namespace: h.ns}, Spec: cnpgv1.DatabaseSpec{Name: "fixture", Owner: "app", ClusterRef: corev1.LocalObjectReference{Name: "pg"}}},
		&cnpgv1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "fixture", Namespace: h.ns}, Spec: cnpgv1.BackupSpec{Cluster: cnpgv1.LocalObjectReference{Name: "pg"}, Method: cnpgv1.BackupMethodVolumeSnapshot}},
	} {
		if err := admin.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
}

// bindRules grants user exactly rules in the harness namespace.
func bindRules(t *testing.T, h *harness, user string, rules []rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "cnpg-mcp-under-test", Namespace: h.ns}, Rules: rules}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "cnpg-mcp-under-test", Namespace: h.ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}}}
	if err := rbacC.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := rbacC.Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
	// The authorizer sees new bindings through an informer: wait until every granted permission is
	// in effect, so a failing call below means a missing rule, not a propagation delay.
	deadline := time.Now().Add(15 * time.Second)
	for _, r := range rules {
		for _, res := range r.Resources {
			resource, sub, _ := strings.Cut(res, "/")
			for _, verb := range r.Verbs {
				for {
					sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{User: user,
						ResourceAttributes: &authzv1.ResourceAttributes{Namespace: h.ns, Verb: verb, Group: r.APIGroups[0], Resource: resource, Subresource: sub}}}
					if err := rbacC.Create(ctx, sar); err != nil {
						t.Fatal(err)
					}
					if sar.Status.Allowed {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("RBAC grant %s %s not in effect after 15s", verb, res)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}
	}
}

// runWorkflow returns the steps that failed, with their messages. A step fails if the tool
// reports an error or mentions a 403 (diagnose reports unavailable events inline).
func runWorkflow(t *testing.T, h *harness, steps []step) []string {
	t.Helper()
	var failed []string
	for _, s := range steps {
		res, err := h.callErr(s.tool, s.args)
		switch {
		case err != nil:
			failed = append(failed, fmt.Sprintf("%s: %v", s.tool, err))
		case res.IsError || strings.Contains(text(res), "403 Forbidden"):
			failed = append(failed, fmt.Sprintf("%s: %s", s.tool, firstLine(text(res))))
		}
	}
	return failed
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "403") {
			return l
		}
	}
	return strings.SplitN(s, "\n", 2)[0]
}

func rbacHarness(t *testing.T, rules []rbacv1.PolicyRule, readOnly bool) *harness {
	t.Helper()
	needEnv(t)
	user := fmt.Sprintf("system:serviceaccount:cnpg-mcp:server-%d", nsSerial.Add(1))
	cfg, err := env.UserConfig(user)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, hopt{config: cfg, readOnly: readOnly})
	rbacFixtures(t, h)
	bindRules(t, h, user, rules)
	return h
}

// TestRBACExactRules: the tools work with exactly the documented rules, and every rule is needed:
// taking one away makes a tool fail with a message that names the 403 and where the rules are.
func TestRBACExactRules(t *testing.T) {
	needEnv(t)
	roles, err := rbac.ClusterRoles()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		role     string
		readOnly bool
	}{{"full", rbac.ClusterRole, false}, {"read-only", rbac.ReadOnlyClusterRole, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rules := roles[tc.role].Rules
			t.Run("exact rules pass", func(t *testing.T) {
				t.Parallel()
				h := rbacHarness(t, rules, tc.readOnly)
				if failed := runWorkflow(t, h, workflow(tc.readOnly)); len(failed) > 0 {
					t.Fatalf("with the documented rules these calls failed:\n%s", strings.Join(failed, "\n"))
				}
			})
			exhaustive := os.Getenv("CNPG_MCP_RBAC_EXHAUSTIVE") == "1"
			for _, less := range reductions(rules, exhaustive) {
				t.Run("without "+less.what, func(t *testing.T) {
					t.Parallel()
					h := rbacHarness(t, less.rules, tc.readOnly)
					failed := runWorkflow(t, h, workflow(tc.readOnly))
					if len(failed) == 0 {
						t.Fatalf("every tool still works without %s: the rule is not needed", less.what)
					}
					msg := strings.Join(failed, "\n")
					if !strings.Contains(msg, "403 Forbidden") || !strings.Contains(msg, "docs/rbac.md") {
						t.Fatalf("failures do not explain the missing permission:\n%s", msg)
					}
				})
			}
		})
	}
}

type reduction struct {
	what  string
	rules []rbacv1.PolicyRule
}

// reductions removes one resource of one rule at a time, or (exhaustive) one verb at a time.
func reductions(rules []rbacv1.PolicyRule, exhaustive bool) []reduction {
	var out []reduction
	for i, r := range rules {
		for _, res := range r.Resources {
			verbSets := [][]string{nil}
			if exhaustive {
				verbSets = nil
				for _, v := range r.Verbs {
					verbSets = append(verbSets, slices.DeleteFunc(slices.Clone(r.Verbs), func(x string) bool { return x == v }))
				}
			}
			for _, verbs := range verbSets {
				cut := slices.Clone(rules)
				cut[i].Resources = slices.DeleteFunc(slices.Clone(r.Resources), func(x string) bool { return x == res })
				what := res
				if verbs != nil {
					removed := slices.DeleteFunc(slices.Clone(r.Verbs), func(v string) bool { return slices.Contains(verbs, v) })
					what = strings.Join(removed, ",") + " " + res
					if len(verbs) == 0 && len(r.Resources) == 1 {
						continue // same as removing the resource, covered by the default run
					}
					if len(verbs) > 0 {
						cut = append(cut, rbacv1.PolicyRule{APIGroups: r.APIGroups, Resources: []string{res}, Verbs: verbs})
					}
				}
				if len(cut[i].Resources) == 0 {
					cut = slices.Delete(cut, i, i+1)
				}
				out = append(out, reduction{what: what, rules: cut})
			}
		}
	}
	return out
}

// rbacImpersonating is a server in impersonate mode whose service account has exactly saRules,
// acting as a user in a group that has exactly userRules in the harness namespace.
func rbacImpersonating(t *testing.T, saRules, userRules []rbacv1.PolicyRule, readOnly bool) *harness {
	t.Helper()
	n := nsSerial.Add(1)
	user, group := fmt.Sprintf("oidc:user-%d@example.com", n), fmt.Sprintf("oidc:team-%d", n)
	h := newHarness(t, hopt{config: impersonator(t, saRules), readOnly: readOnly, impersonate: true, kubeUser: user, kubeGroups: []string{group}})
	rbacFixtures(t, h)
	grantRole(t, h.ns, "cnpg-mcp-user", userRules, rbacv1.Subject{Kind: "Group", Name: group})
	return h
}

// TestRBACExactRulesImpersonate is TestRBACExactRules for kubernetes.identity: impersonate. The
// service account has nothing but the impersonation ClusterRole and the user (through a group) the
// tools' rules: every tool works, and taking away impersonation of users or of groups, or any one
// resource of the user's rules, makes tools fail with a message that says who may not do what and
// where the rules are.
func TestRBACExactRulesImpersonate(t *testing.T) {
	needEnv(t)
	roles, err := rbac.ClusterRoles()
	if err != nil {
		t.Fatal(err)
	}
	sa := roles[rbac.ImpersonatorClusterRole].Rules
	if len(sa) != 1 || !slices.Equal(sa[0].Verbs, []string{"impersonate"}) || !slices.Equal(sa[0].Resources, []string{"users", "groups"}) || len(sa[0].APIGroups) != 1 || sa[0].APIGroups[0] != "" {
		t.Fatalf("the impersonation ClusterRole must grant exactly impersonate on users and groups: %+v", sa)
	}
	for _, tc := range []struct {
		name     string
		role     string
		readOnly bool
	}{{"full", rbac.ClusterRole, false}, {"read-only", rbac.ReadOnlyClusterRole, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rules := roles[tc.role].Rules
			t.Run("exact rules pass", func(t *testing.T) {
				t.Parallel()
				h := rbacImpersonating(t, sa, rules, tc.readOnly)
				if failed := runWorkflow(t, h, workflow(tc.readOnly)); len(failed) > 0 {
					t.Fatalf("with the documented rules these calls failed:\n%s", strings.Join(failed, "\n"))
				}
			})
			for _, less := range reductions(sa, false) {
				t.Run("service account without impersonating "+less.what, func(t *testing.T) {
					t.Parallel()
					h := rbacImpersonating(t, less.rules, rules, tc.readOnly)
					failed := runWorkflow(t, h, workflow(tc.readOnly))
					if len(failed) != len(workflow(tc.readOnly)) {
						t.Fatalf("%d of %d calls still work without impersonating %s", len(workflow(tc.readOnly))-len(failed), len(workflow(tc.readOnly)), less.what)
					}
					if msg := strings.Join(failed, "\n"); !strings.Contains(msg, "refused to let this server act as") || !strings.Contains(msg, "docs/rbac.md") {
						t.Fatalf("failures do not explain the missing impersonation right:\n%s", msg)
					}
				})
			}
			for _, less := range reductions(rules, os.Getenv("CNPG_MCP_RBAC_EXHAUSTIVE") == "1") {
				t.Run("user without "+less.what, func(t *testing.T) {
					t.Parallel()
					h := rbacImpersonating(t, sa, less.rules, tc.readOnly)
					failed := runWorkflow(t, h, workflow(tc.readOnly))
					if len(failed) == 0 {
						t.Fatalf("every tool still works without %s: the rule is not needed", less.what)
					}
					msg := strings.Join(failed, "\n")
					if !strings.Contains(msg, "403 Forbidden") || !strings.Contains(msg, h.kubeUser+" may not ") || !strings.Contains(msg, "docs/rbac.md") {
						t.Fatalf("failures do not say who may not do what:\n%s", msg)
					}
				})
			}
		})
	}
}

// TestExampleDeveloperRole: the developer example role reads everything the read tools read and
// creates and drops databases; every other write is refused with a message naming the user.
func TestExampleDeveloperRole(t *testing.T) {
	needEnv(t)
	roles, err := rbac.ClusterRoles()
	if err != nil {
		t.Fatal(err)
	}
	h := rbacImpersonating(t, roles[rbac.ImpersonatorClusterRole].Rules, roles[rbac.DeveloperRole].Rules, false)
	steps := append(workflow(true),
		step{"create_postgres_database", map[string]any{"cluster_name": "pg", "database_name": "app", "owner": "app"}},
		step{"delete_postgres_database", map[string]any{"cluster_name": "pg", "database_name": "app"}})
	if failed := runWorkflow(t, h, steps); len(failed) > 0 {
		t.Fatalf("the developer role could not:\n%s", strings.Join(failed, "\n"))
	}
	var others []step
	for _, s := range writeSteps {
		if !strings.Contains(s.tool, "database") {
			others = append(others, s)
		}
	}
	deniedEach(t, h, others, h.kubeUser, h.ns)
}
