package tools

import (
	"slices"
	"strings"
	"testing"
)

// Every tool belongs to a toolset and every toolset has tools; selecting toolsets keeps exactly
// their tools, and an unknown name lists the valid ones.
func TestToolsets(t *testing.T) {
	all := All(&Deps{})
	count := map[string]int{}
	for _, tl := range all {
		if !slices.Contains(ToolsetNames(), tl.Area) {
			t.Errorf("%s: area %q is not a toolset", tl.Def.Name, tl.Area)
		}
		count[tl.Area]++
	}
	for _, ts := range Toolsets() {
		if count[ts.Name] == 0 || ts.Description == "" {
			t.Errorf("toolset %s: %d tools, description %q", ts.Name, count[ts.Name], ts.Description)
		}
	}
	if got, _ := SelectToolsets(all, nil); len(got) != len(all) {
		t.Errorf("no selection: %d tools, want all %d", len(got), len(all))
	}
	got, err := SelectToolsets(all, []string{"roles", "observability"})
	if err != nil || len(got) != count["roles"]+count["observability"] {
		t.Fatalf("roles+observability: %d tools, %v", len(got), err)
	}
	for _, tl := range got {
		if tl.Area != "roles" && tl.Area != "observability" {
			t.Errorf("%s (%s) selected", tl.Def.Name, tl.Area)
		}
	}
	_, err = SelectToolsets(all, []string{"clusters", "backup", "pods"})
	if err == nil || !strings.Contains(err.Error(), `unknown toolset "backup", "pods": use any of clusters, instances, roles, databases, backups, poolers, operations, observability`) {
		t.Fatalf("unknown toolsets: %v", err)
	}
}
