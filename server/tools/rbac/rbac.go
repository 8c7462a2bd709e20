// Package rbac holds the Kubernetes RBAC rules the tools need (clusterrole.yaml), for the Helm
// chart and for the test that proves they are exactly enough.
package rbac

import (
	"bytes"
	_ "embed"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// YAML is clusterrole.yaml: the ClusterRoles cnpg-mcp-server and cnpg-mcp-server-readonly.
//
//go:embed clusterrole.yaml
var YAML []byte

// Names of the two ClusterRoles.
const (
	ClusterRole         = "cnpg-mcp-server"
	ReadOnlyClusterRole = "cnpg-mcp-server-readonly"
)

// ClusterRoles parses YAML.
func ClusterRoles() (map[string]*rbacv1.ClusterRole, error) {
	out := map[string]*rbacv1.ClusterRole{}
	for _, doc := range bytes.Split(YAML, []byte("\n---\n")) {
		var cr rbacv1.ClusterRole
		if err := yaml.UnmarshalStrict(doc, &cr); err != nil {
			return nil, fmt.Errorf("rbac: %w", err)
		}
		if cr.Kind != "ClusterRole" || cr.Name == "" {
			return nil, fmt.Errorf("rbac: unexpected document %q/%q", cr.Kind, cr.Name)
		}
		out[cr.Name] = &cr
	}
	if out[ClusterRole] == nil || out[ReadOnlyClusterRole] == nil {
		return nil, fmt.Errorf("rbac: clusterrole.yaml must define %s and %s", ClusterRole, ReadOnlyClusterRole)
	}
	return out, nil
}
