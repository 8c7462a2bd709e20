package tools_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/cnpg-mcp/cnpg-mcp/server/tools/rbac"
)

const (
	alice      = "oidc:alice@example.com"
	aliceGroup = "oidc:team-a-dba"
	bob        = "oidc:bob@example.com"
)

// impersonator returns a server identity (a client certificate for a service-account-like user)
// that has exactly the given cluster-wide rules (the impersonation ClusterRole) and nothing else.
func impersonator(t testing.TB, rules []rbacv1.PolicyRule) *rest.Config {
	t.Helper()
	ctx := context.Background()
	n := nsSerial.Add(1)
	user := fmt.Sprintf("system:serviceaccount:cnpg-mcp:impersonator-%d", n)
	cfg, err := env.UserConfig(user)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("cnpg-mcp-impersonator-%d", n)
	cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}}}
	if err := rbacC.Create(ctx, cr); err != nil {
		t.Fatal(err)
	}
	if err := rbacC.Create(ctx, crb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rbacC.Delete(ctx, crb); _ = rbacC.Delete(ctx, cr) })
	for _, r := range rules {
		for _, res := range r.Resources {
			ra := &authzv1.ResourceAttributes{Verb: r.Verbs[0], Resource: res}
			if len(r.ResourceNames) > 0 {
				ra.Name = r.ResourceNames[0]
			}
			waitAllowed(t, authzv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: ra})
		}
	}
	return cfg
}

// waitAllowed waits until the authorizer allows spec (new bindings reach it through an informer).
func waitAllowed(t testing.TB, spec authzv1.SubjectAccessReviewSpec) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		sar := &authzv1.SubjectAccessReview{Spec: spec}
		if err := rbacC.Create(context.Background(), sar); err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("RBAC grant %+v not in effect after 15s", spec.ResourceAttributes)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// grantRole binds rules in ns to subject (a User or a Group) and waits until they are in effect.
func grantRole(t testing.TB, ns, name string, rules []rbacv1.PolicyRule, subject rbacv1.Subject) {
	t.Helper()
	ctx := context.Background()
	subject.APIGroup = "rbac.authorization.k8s.io"
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Rules: rules}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name}, Subjects: []rbacv1.Subject{subject}}
	if err := rbacC.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := rbacC.Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
	spec := authzv1.SubjectAccessReviewSpec{User: subject.Name}
	if subject.Kind == "Group" {
		spec = authzv1.SubjectAccessReviewSpec{User: "someone", Groups: []string{subject.Name}}
	}
	for _, r := range rules {
		for _, res := range r.Resources {
			resource, sub, _ := strings.Cut(res, "/")
			s := spec
			s.ResourceAttributes = &authzv1.ResourceAttributes{Namespace: ns, Verb: r.Verbs[len(r.Verbs)-1], Group: r.APIGroups[0], Resource: resource, Subresource: sub}
			waitAllowed(t, s)
		}
	}
}

func roles(t testing.TB) map[string]*rbacv1.ClusterRole {
	t.Helper()
	r, err := rbac.ClusterRoles()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// twoTeams sets up the scenario against the real API server: a server whose service
// account may only impersonate; namespace team-a where the group oidc:team-a-dba has the example
// DBA role, and team-b where the user bob has the example viewer role, each with the fixtures every
// tool works on. alice signs in with group team-a-dba; bob with none. The returned harnesses are
// alice's in team-a and bob's in team-b; both servers have the allow-list {team-a, team-b}.
func twoTeams(t *testing.T) (hA, hB *harness) {
	t.Helper()
	needEnv(t)
	r := roles(t)
	sa := impersonator(t, r[rbac.ImpersonatorClusterRole].Rules)
	n := nsSerial.Add(1)
	teamA, teamB := fmt.Sprintf("team-a-%d", n), fmt.Sprintf("team-b-%d", n)
	allowed := []string{teamA, teamB}
	hA = newHarness(t, hopt{config: sa, ns: teamA, allowedNS: allowed, impersonate: true, kubeUser: alice, kubeGroups: []string{aliceGroup}})
	hB = newHarness(t, hopt{config: sa, ns: teamB, allowedNS: allowed, impersonate: true, kubeUser: bob})
	rbacFixtures(t, hA)
	rbacFixtures(t, hB)
	grantRole(t, teamA, "dba", r[rbac.DBARole].Rules, rbacv1.Subject{Kind: "Group", Name: aliceGroup})
	grantRole(t, teamB, "viewer", r[rbac.ViewerRole].Rules, rbacv1.Subject{Kind: "User", Name: bob})
	return hA, hB
}

// writeSteps are mutating calls on the fixtures of rbacFixtures (each one's first Kubernetes write
// or read of a kind the viewer role lacks is what RBAC refuses).
var writeSteps = []step{
	{"create_postgres_cluster", map[string]any{"name": "pg2", "instances": 1}},
	{"scale_postgres_cluster", map[string]any{"name": "pg", "instances": 2}},
	{"resize_postgres_cluster", map[string]any{"name": "pg", "storage_size": "20Gi"}},
	{"create_postgres_role", map[string]any{"cluster_name": "pg", "role_name": "app"}},
	{"update_postgres_role", map[string]any{"cluster_name": "pg", "role_name": "fixture", "createdb": true}},
	{"create_postgres_database", map[string]any{"cluster_name": "pg", "database_name": "app", "owner": "app"}},
	{"delete_postgres_database", map[string]any{"cluster_name": "pg", "database_name": "fixture"}},
	{"create_backup", map[string]any{"cluster_name": "pg", "method": "volumeSnapshot"}},
	{"restore_postgres_cluster", map[string]any{"name": "pgb-restored", "source_cluster": "pgb"}},
	{"create_scheduled_backup", map[string]any{"cluster_name": "pg", "name": "daily", "schedule": "0 0 2 * * *", "method": "volumeSnapshot"}},
	{"create_pooler", map[string]any{"cluster_name": "pg", "name": "pooler-pg"}},
	{"restart_postgres_cluster", map[string]any{"name": "pg"}},
	{"reload_postgres_cluster", map[string]any{"name": "pg"}},
	{"hibernate_postgres_cluster", map[string]any{"name": "pg", "state": "on", "confirm": true}},
	{"fence_postgres_instances", map[string]any{"name": "pg", "state": "on", "instance": "pg-2", "confirm": true}},
	{"set_cluster_maintenance", map[string]any{"name": "pg", "state": "set"}},
	{"promote_cluster_instance", map[string]any{"name": "pg", "instance": "pg-4"}},
	{"delete_cluster_instance", map[string]any{"name": "pg", "instance": "pg-2", "confirm": true}},
	{"delete_postgres_cluster", map[string]any{"name": "pg", "confirm": true}},
}

// deniedEach calls every step and requires each to fail with the denial naming user, a verb and
// namespace ns; it returns the messages.
func deniedEach(t *testing.T, h *harness, steps []step, user, ns string) []string {
	t.Helper()
	var msgs []string
	for _, s := range steps {
		args := map[string]any{"namespace": ns}
		for k, v := range s.args {
			args[k] = v
		}
		res, err := h.callErr(s.tool, args)
		if err != nil {
			t.Fatalf("%s: %v", s.tool, err)
		}
		msg := text(res)
		want := fmt.Sprintf("Kubernetes denied this (403 Forbidden): %s may not ", user)
		if !res.IsError || !strings.Contains(msg, want) || !strings.Contains(msg, " in namespace "+ns+".") || !strings.Contains(msg, "docs/rbac.md") {
			t.Errorf("%s as %s in %s: want a denial naming the user, got error=%t: %s", s.tool, user, ns, res.IsError, msg)
		}
		msgs = append(msgs, msg)
	}
	return msgs
}

// The two users against a real kube-apiserver, through every tool family: alice (group
// team-a-dba → DBA role in team-a) can use every tool in team-a and nothing in team-b; bob (user →
// viewer role in team-b) can use every read tool in team-b, no write tool there, nothing in team-a.
// Every refusal names the user, the verb, the resource and the namespace; nothing changes where a
// user has no right; the server's own identity can do nothing but impersonate.
func TestImpersonationTwoUsersEveryToolFamily(t *testing.T) {
	hA, hB := twoTeams(t)
	teamA, teamB := hA.ns, hB.ns

	if failed := runWorkflow(t, hB, workflow(true)); len(failed) > 0 {
		t.Fatalf("bob, viewer in %s, could not use read tools:\n%s", teamB, strings.Join(failed, "\n"))
	}
	before := hB.getCluster("pg")
	msgs := deniedEach(t, hB, writeSteps, bob, teamB)
	if !slices.ContainsFunc(msgs, func(m string) bool {
		return strings.Contains(m, bob+" may not patch clusters.postgresql.cnpg.io in namespace "+teamB+".")
	}) {
		t.Errorf("no message says %q:\n%s", bob+" may not patch clusters.postgresql.cnpg.io in namespace "+teamB, strings.Join(msgs, "\n"))
	}
	if after := hB.getCluster("pg"); after.ResourceVersion != before.ResourceVersion {
		t.Fatalf("bob's refused calls changed the cluster (resourceVersion %s → %s)", before.ResourceVersion, after.ResourceVersion)
	}
	// bob in team-a, alice in team-b: not even reads.
	reads := []step{{"list_postgres_clusters", nil}, {"get_cluster_status", map[string]any{"name": "pg"}}, {"list_postgres_roles", map[string]any{"cluster_name": "pg"}},
		{"list_postgres_databases", map[string]any{"cluster_name": "pg"}}, {"list_backups", nil}, {"list_poolers", nil}, {"get_cluster_logs", map[string]any{"name": "pg"}},
		{"diagnose_postgres_cluster", map[string]any{"name": "pg"}}, {"get_cluster_recoverability", map[string]any{"name": "pgb"}}}
	deniedEach(t, hB, reads, bob, teamA)
	aliceInB := hB.as(alice, aliceGroup)
	deniedEach(t, aliceInB, append(reads, writeSteps[:3]...), alice, teamB)

	// alice: every tool in team-a (the full workflow creates, changes and deletes).
	if failed := runWorkflow(t, hA, workflow(false)); len(failed) > 0 {
		t.Fatalf("alice, DBA in %s, could not use:\n%s", teamA, strings.Join(failed, "\n"))
	}
	// The server itself may do nothing but impersonate: its own identity cannot read clusters.
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{User: saName(t, hA),
		ResourceAttributes: &authzv1.ResourceAttributes{Namespace: teamA, Verb: "list", Group: "postgresql.cnpg.io", Resource: "clusters"}}}
	if err := rbacC.Create(context.Background(), sar); err != nil || sar.Status.Allowed {
		t.Fatalf("the impersonating service account may list clusters itself: %v %v", sar.Status.Allowed, err)
	}
}

// saName is the server identity of h (its client certificate's user).
func saName(t *testing.T, h *harness) string {
	t.Helper()
	ssr, err := h.provider.Base().Core.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ssr.Status.UserInfo.Username
}

// Lists show what the user may see: over the allow-list, bob sees team-b's cluster and is told
// team-a was skipped, and why; without an allow-list, a user with rights in some namespaces only is
// told to name one (cluster-wide listing and listing namespaces are both refused).
func TestImpersonationListsSkipNamespaces(t *testing.T) {
	hA, hB := twoTeams(t)
	m := hB.ok("list_postgres_clusters", map[string]any{"all_namespaces": true})
	skipped, _ := m["skipped_namespaces"].([]any)
	if m["count"] != float64(2) || !allIn(m, hB.ns) || len(skipped) != 1 || skipped[0].(map[string]any)["namespace"] != hA.ns {
		t.Fatalf("bob's all-namespaces list (the two clusters of rbacFixtures in %s): %v", hB.ns, m)
	}
	txt := text(hB.call("list_postgres_clusters", map[string]any{"all_namespaces": true}))
	if !strings.Contains(txt, "Cluster "+hB.ns+"/pg") || !strings.Contains(txt, "Skipped namespaces: "+hA.ns+" ("+bob+" may not list clusters.postgresql.cnpg.io there)") {
		t.Fatalf("bob's list text:\n%s", txt)
	}
	m = hA.ok("list_postgres_clusters", map[string]any{"all_namespaces": true, "format": "json"})
	if skipped, _ := m["skipped_namespaces"].([]any); m["count"] != float64(2) || !allIn(m, hA.ns) || len(skipped) != 1 || skipped[0].(map[string]any)["namespace"] != hB.ns {
		t.Fatalf("alice's all-namespaces list: %v", m)
	}
	// Without an allow-list.
	sa := impersonator(t, roles(t)[rbac.ImpersonatorClusterRole].Rules)
	h := newHarness(t, hopt{config: sa, ns: hB.ns, noNamespace: true, impersonate: true, kubeUser: bob})
	h.fails("list_postgres_clusters", map[string]any{"all_namespaces": true}, bob+" may not list clusters.postgresql.cnpg.io in all namespaces, nor list the namespaces", "name a namespace")
	h.fails("list_postgres_clusters", map[string]any{"all_namespaces": true, "namespace": hB.ns}, "either namespace or all_namespaces")
}

// allIn reports whether every cluster of a list result is in namespace ns.
func allIn(m map[string]any, ns string) bool {
	cls, _ := m["clusters"].([]any)
	for _, c := range cls {
		if c.(map[string]any)["namespace"] != ns {
			return false
		}
	}
	return len(cls) > 0
}

// get_my_permissions tells each user who they are in Kubernetes and what they may do where.
func TestImpersonationMyPermissions(t *testing.T) {
	hA, hB := twoTeams(t)
	m := hB.ok("get_my_permissions", nil)
	usable := fmt.Sprint(m["usable_tools"])
	groups := fmt.Sprint(m["groups"])
	if m["user"] != bob || m["impersonated"] != true || !strings.Contains(groups, "system:authenticated") ||
		!strings.Contains(usable, "get_cluster_status") || strings.Contains(usable, "scale_postgres_cluster") {
		t.Fatalf("bob in team-b: %v", m)
	}
	txt := text(hB.call("get_my_permissions", nil))
	if !strings.Contains(txt, "the tools act as you: Kubernetes user "+bob) || !strings.Contains(txt, "scale_postgres_cluster: needs patch clusters.postgresql.cnpg.io\n") {
		t.Fatalf("bob's permissions text:\n%s", txt)
	}
	m = hA.ok("get_my_permissions", nil)
	denied, _ := m["denied_tools"].([]any)
	if m["user"] != alice || !strings.Contains(fmt.Sprint(m["groups"]), aliceGroup) || len(denied) != 0 {
		t.Fatalf("alice, DBA in team-a, should be able to use every tool: %v", m)
	}
	m = hA.ok("get_my_permissions", map[string]any{"namespace": hB.ns})
	if u, _ := m["usable_tools"].([]any); len(u) != 1 || u[0] != "get_my_permissions" {
		t.Fatalf("alice in team-b may use only get_my_permissions: %v", m["usable_tools"])
	}
}

// The server's service account without impersonation rights (or restricted away from this user):
// the call fails saying it is a deployment problem, names the user, and changes nothing.
func TestImpersonationNotAllowedToImpersonate(t *testing.T) {
	needEnv(t)
	restricted := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}, ResourceNames: []string{"oidc:someone-else@example.com"}}}
	sa := impersonator(t, restricted)
	h := newHarness(t, hopt{config: sa, impersonate: true, kubeUser: alice})
	msg := h.fails("list_postgres_clusters", nil, "Kubernetes refused to let this server act as "+alice, "deployment problem", "impersonation ClusterRole")
	t.Logf("user not impersonable: %s", msg)
	// Users allowed, groups not: a user with a group is refused too.
	sa = impersonator(t, []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}}})
	h = newHarness(t, hopt{config: sa, impersonate: true, kubeUser: alice, kubeGroups: []string{aliceGroup}})
	msg = h.fails("list_postgres_clusters", nil, "Kubernetes refused to let this server act as "+alice, "deployment problem")
	t.Logf("groups not impersonable: %s", msg)
}
