// Package rbac holds the Kubernetes RBAC rules the tools need (clusterrole.yaml), the impersonation
// rule of a server that acts as its users (impersonator.yaml) and example roles for people in that
// mode (examples.yaml), for the Helm chart, the docs and the tests that prove they are exactly enough.
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

// ImpersonatorYAML is impersonator.yaml: the ClusterRole cnpg-mcp-server-impersonator.
//
//go:embed impersonator.yaml
var ImpersonatorYAML []byte

// ExamplesYAML is examples.yaml: the ClusterRoles cnpg-dba, cnpg-developer and cnpg-viewer.
//
//go:embed examples.yaml
var ExamplesYAML []byte

// Names of the ClusterRoles.
const (
	ClusterRole             = "cnpg-mcp-server"
	ReadOnlyClusterRole     = "cnpg-mcp-server-readonly"
	ImpersonatorClusterRole = "cnpg-mcp-server-impersonator"
	DBARole                 = "cnpg-dba"
	DeveloperRole           = "cnpg-developer"
	ViewerRole              = "cnpg-viewer"
)

// ClusterRoles parses YAML, ImpersonatorYAML and ExamplesYAML.
func ClusterRoles() (map[string]*rbacv1.ClusterRole, error) {
	out := map[string]*rbacv1.ClusterRole{}
	for _, doc := range bytes.Split(bytes.Join([][]byte{YAML, ImpersonatorYAML, ExamplesYAML}, []byte("\n---\n")), []byte("\n---\n")) {
		var cr rbacv1.ClusterRole
		if err := yaml.UnmarshalStrict(doc, &cr); err != nil {
			return nil, fmt.Errorf("rbac: %w", err)
		}
		if cr.Kind != "ClusterRole" || cr.Name == "" {
			return nil, fmt.Errorf("rbac: unexpected document %q/%q", cr.Kind, cr.Name)
		}
		out[cr.Name] = &cr
	}
	for _, name := range []string{ClusterRole, ReadOnlyClusterRole, ImpersonatorClusterRole, DBARole, DeveloperRole, ViewerRole} {
		if out[name] == nil {
			return nil, fmt.Errorf("rbac: ClusterRole %s is not defined", name)
		}
	}
	return out, nil
}
