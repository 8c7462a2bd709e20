package tools

import (
	"strings"
	"testing"
)

// The RBAC authorizer's messages are parsed into who may not do what where, for every shape the
// tools meet: namespaced, cluster scope, subresource, core group, constrained impersonation.
func TestParseDenial(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want denial
	}{
		{`clusters.postgresql.cnpg.io "pg" is forbidden: User "oidc:bob@example.com" cannot patch resource "clusters" in API group "postgresql.cnpg.io" in the namespace "team-b"`,
			denial{"oidc:bob@example.com", "patch", "clusters.postgresql.cnpg.io", "in namespace team-b"}},
		{`clusters.postgresql.cnpg.io is forbidden: User "u" cannot list resource "clusters" in API group "postgresql.cnpg.io" at the cluster scope`,
			denial{"u", "list", "clusters.postgresql.cnpg.io", "in all namespaces (at the cluster scope)"}},
		{`clusters.postgresql.cnpg.io "pg" is forbidden: User "u" cannot patch resource "clusters/status" in API group "postgresql.cnpg.io" in the namespace "a"`,
			denial{"u", "patch", "clusters.postgresql.cnpg.io/status", "in namespace a"}},
		{`pods "pg-1" is forbidden: User "u" cannot get resource "pods/log" in API group "" in the namespace "a": RBAC: role "x" not found`,
			denial{"u", "get", "pods/log", "in namespace a"}},
		{`users "oidc:a" is forbidden: User "system:serviceaccount:m:s" cannot impersonate resource "users" in API group "" at the cluster scope`,
			denial{"system:serviceaccount:m:s", "impersonate", "users", "in all namespaces (at the cluster scope)"}},
		{`clusters.postgresql.cnpg.io is forbidden: User "sa" cannot impersonate-on:user-info:list resource "clusters" in API group "postgresql.cnpg.io" in the namespace "a"`,
			denial{"sa", "impersonate-on:user-info:list", "clusters.postgresql.cnpg.io", "in namespace a"}},
	} {
		got, ok := parseDenial(tc.msg)
		if !ok || got != tc.want {
			t.Errorf("%s\ngot %+v %v\nwant %+v", tc.msg, got, ok, tc.want)
		}
	}
	if _, ok := parseDenial("admission webhook denied the request"); ok {
		t.Error("a message of another shape parsed")
	}
}

// A 403 says who was denied what: the signed-in user by name when the server impersonates (or that
// the server may not act as them), the service account otherwise, with where to look.
func TestForbiddenMessages(t *testing.T) {
	m := `clusters.postgresql.cnpg.io "pg" is forbidden: User "oidc:alice@example.com" cannot patch resource "clusters" in API group "postgresql.cnpg.io" in the namespace "team-a"`
	if got := forbidden(m, "oidc:alice@example.com"); !strings.HasPrefix(got, "Kubernetes denied this (403 Forbidden): oidc:alice@example.com may not patch clusters.postgresql.cnpg.io in namespace team-a. ") {
		t.Errorf("impersonated: %s", got)
	}
	if got := forbidden(m, ""); !strings.Contains(got, "service account lacks the RBAC permission") || !strings.Contains(got, "docs/rbac.md") {
		t.Errorf("service account: %s", got)
	}
	imp := `users "oidc:alice@example.com" is forbidden: User "system:serviceaccount:m:s" cannot impersonate resource "users" in API group "" at the cluster scope`
	if got := forbidden(imp, "oidc:alice@example.com"); !strings.HasPrefix(got, "Kubernetes refused to let this server act as oidc:alice@example.com") || !strings.Contains(got, "deployment problem") {
		t.Errorf("impersonation refused: %s", got)
	}
	if got := forbidden("some webhook said no", "oidc:alice@example.com"); !strings.Contains(got, "to oidc:alice@example.com: some webhook said no") {
		t.Errorf("unparsed: %s", got)
	}
}
