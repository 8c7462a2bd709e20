package rbac

import (
	"maps"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

// grants flattens rules into "group resource verb" triples (rules naming objects are kept apart).
func grants(rules []rbacv1.PolicyRule) map[string]bool {
	out := map[string]bool{}
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					k := g + " " + res + " " + v
					if len(r.ResourceNames) > 0 {
						k += " " + strings.Join(r.ResourceNames, ",")
					}
					out[k] = true
				}
			}
		}
	}
	return out
}

func diff(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// The example roles of docs/rbac.md follow the server's own roles, which rbac_test.go in
// server/tools proves exactly enough against a real kube-apiserver: a tool that gains a permission
// (pods/proxy, objectstores came with the backup tools) must reach the people's roles too.
func TestExampleRolesFollowServerRoles(t *testing.T) {
	roles, err := ClusterRoles()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		example, server string
		extra           []string // what the example has beyond the server role
	}{
		{DBARole, ClusterRole, nil},
		{ViewerRole, ReadOnlyClusterRole, nil},
		{DeveloperRole, ReadOnlyClusterRole, []string{"postgresql.cnpg.io databases create", "postgresql.cnpg.io databases delete"}},
	} {
		ex, srv := grants(roles[tc.example].Rules), grants(roles[tc.server].Rules)
		for _, e := range tc.extra {
			srv[e] = true
		}
		if missing, more := diff(srv, ex), diff(ex, srv); len(missing) > 0 || len(more) > 0 {
			t.Errorf("%s differs from %s%v: lacks %v, has more %v", tc.example, tc.server, tc.extra, missing, more)
		}
	}
	// The impersonation role: impersonate users and groups, nothing else.
	imp := grants(roles[ImpersonatorClusterRole].Rules)
	if want := map[string]bool{" users impersonate": true, " groups impersonate": true}; !maps.Equal(imp, want) {
		t.Errorf("%s grants %v, want exactly %v", ImpersonatorClusterRole, imp, want)
	}
}
