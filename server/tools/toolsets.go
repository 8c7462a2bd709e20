package tools

import (
	"fmt"
	"slices"
	"strings"
)

// Toolset is a group of tools a server can expose or leave out (config mcp.toolsets), like
// containers/kubernetes-mcp-server's toolsets: fewer tools make a shorter tools/list, so less of
// every conversation's context, and a narrower choice for the model. A tool's toolset is its Area.
type Toolset struct {
	Name        string
	Description string
}

// Toolsets lists every toolset, in documentation order. The default is all of them.
func Toolsets() []Toolset {
	return []Toolset{
		{"clusters", "list, inspect, create, scale, resize and delete PostgreSQL clusters"},
		{"instances", "switch over to another instance; destroy one instance to have it recreated"},
		{"roles", "PostgreSQL roles (managed roles of a cluster) and their passwords"},
		{"databases", "PostgreSQL databases (Database objects)"},
		{"backups", "on-demand and scheduled backups"},
		{"poolers", "PgBouncer poolers"},
		{"operations", "restart, reload, hibernate, fence, maintenance window"},
		{"observability", "instance logs, a cluster diagnosis and what you may do (Kubernetes permissions)"},
	}
}

// ToolsetNames returns the names of Toolsets, in order.
func ToolsetNames() []string {
	var out []string
	for _, ts := range Toolsets() {
		out = append(out, ts.Name)
	}
	return out
}

// SelectToolsets returns the tools of the named toolsets (all tools when names is empty), in the
// order of all. An unknown name is an error that lists the valid ones.
func SelectToolsets(all []Tool, names []string) ([]Tool, error) {
	if len(names) == 0 {
		return all, nil
	}
	valid := ToolsetNames()
	if benchToolset != "" {
		valid = append(valid, benchToolset) // only in the benchmark's build (benchtool.go)
	}
	var unknown []string
	for _, n := range names {
		if !slices.Contains(valid, n) {
			unknown = append(unknown, fmt.Sprintf("%q", n))
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("mcp.toolsets: unknown toolset %s: use any of %s (default: all)", strings.Join(unknown, ", "), strings.Join(valid, ", "))
	}
	var out []Tool
	for _, t := range all {
		if slices.Contains(names, t.Area) {
			out = append(out, t)
		}
	}
	return out, nil
}
