package tools

import (
	"slices"
	"testing"

	authzv1 "k8s.io/api/authorization/v1"
)

// neededBy reads each documented call into the API group, resource and verb RBAC checks: CNPG
// resources, core ones (with subresources) and resources named with their own group.
func TestNeededBy(t *testing.T) {
	got := neededBy(Tool{Calls: []string{
		"get clusters", "get objectstores.barmancloud.cnpg.io", "get pods/proxy (instance manager /pg/status)",
		"create clusters", "get clusters (wait)", "create selfsubjectrulesreviews", "get clusters",
	}})
	want := []needed{
		{verb: "get", group: cnpgGroup, resource: "clusters"},
		{verb: "get", group: pluginGroup, resource: "objectstores"},
		{verb: "get", group: "", resource: "pods/proxy"},
		{verb: "create", group: cnpgGroup, resource: "clusters"},
		{verb: "create", group: "authorization.k8s.io", resource: "selfsubjectrulesreviews"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("neededBy:\n got %+v\nwant %+v", got, want)
	}
	if s := got[1].String(); s != "get objectstores.barmancloud.cnpg.io" {
		t.Errorf("String() = %q", s)
	}
	if s := got[2].String(); s != "get pods/proxy" {
		t.Errorf("String() = %q", s)
	}
}

func TestRulePermits(t *testing.T) {
	rules := []authzv1.ResourceRule{
		{Verbs: []string{"get"}, APIGroups: []string{pluginGroup}, Resources: []string{"objectstores"}},
		{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"*/proxy"}},
		{Verbs: []string{"delete"}, APIGroups: []string{cnpgGroup}, Resources: []string{"clusters"}, ResourceNames: []string{"pg"}},
	}
	for _, tc := range []struct {
		verb, group, resource string
		want                  bool
	}{
		{"get", pluginGroup, "objectstores", true},
		{"get", cnpgGroup, "objectstores", false}, // the same name in another group
		{"list", pluginGroup, "objectstores", false},
		{"get", "", "pods/proxy", true}, // */proxy
		{"get", "", "pods/log", false},
		{"delete", cnpgGroup, "clusters", false}, // only a named object
	} {
		if got := rulePermits(rules, tc.verb, tc.group, tc.resource); got != tc.want {
			t.Errorf("rulePermits(%s %s %s) = %v, want %v", tc.verb, tc.group, tc.resource, got, tc.want)
		}
	}
}
