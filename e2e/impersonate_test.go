//go:build e2e

package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/cnpg-mcp/cnpg-mcp/e2e/kube"
	"github.com/cnpg-mcp/cnpg-mcp/e2e/mcpauth"
	mockconfig "github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
)

// Where the release in impersonate mode lives (kind/cluster.yaml publishes NodePort 30083 on loopback).
const (
	impNamespace = "cnpg-mcp-impersonate"
	impNodePort  = 30083
	impURL       = "http://127.0.0.1:30083"
	impPrefix    = "oidc:" // user and group prefix of the impersonated names
	teamA, teamB = "team-a", "team-b"
)

// impSession is one signed-in user's MCP session with the impersonating release.
type impSession struct {
	user  string // the Kubernetes user the server acts as
	token string // the access token the server issued
	c     *client.Client
}

// impSignIn gets a token as the user would (registration, consent, the upstream login in a real
// Chromium, code exchange) and opens an MCP session with it.
func impSignIn(ctx context.Context, email, password string) *impSession {
	GinkgoHelper()
	start := time.Now()
	tok, err := mcpauth.Authorize(ctx, mcpauth.Options{
		PublicURL: impURL, Resource: impURL + "/mcp", Scope: "mcp:read mcp:write",
		Username: email, Password: password, Chromium: chromium(),
	})
	Expect(err).NotTo(HaveOccurred(), "browser sign-in of %s", email)
	AddReportEntry("impersonate-sign-in "+email, time.Since(start).Round(time.Millisecond).String())
	Expect(strings.Fields(tok.Scope)).To(ContainElements("mcp:read", "mcp:write"))
	mc, err := client.NewStreamableHttpClient(impURL+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok.AccessToken}))
	Expect(err).NotTo(HaveOccurred())
	Expect(mc.Start(ctx)).To(Succeed())
	_, err = mc.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: "2025-06-18", ClientInfo: mcp.Implementation{Name: "cnpg-mcp-e2e-" + strings.Split(email, "@")[0], Version: "dev"},
	}})
	Expect(err).NotTo(HaveOccurred())
	return &impSession{user: impPrefix + email, token: tok.AccessToken, c: mc}
}

// call returns whether the tool succeeded, its text and its structured content.
func (s *impSession) call(ctx context.Context, tool string, args map[string]any) (bool, string, map[string]any) {
	GinkgoHelper()
	res, err := s.c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: tool, Arguments: args}})
	Expect(err).NotTo(HaveOccurred(), "%s: tool %s", s.user, tool)
	var text strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			text.WriteString(t.Text)
		}
	}
	var data map[string]any
	if res.StructuredContent != nil {
		b, err := json.Marshal(res.StructuredContent)
		Expect(err).NotTo(HaveOccurred())
		Expect(json.Unmarshal(b, &data)).To(Succeed(), "tool %s: structuredContent %s", tool, b)
	}
	fmt.Fprintf(logw, "as %s: tool %s(%v): error=%t %.400s\n", s.user, tool, args, res.IsError, text.String())
	return !res.IsError, text.String(), data
}

// ok calls a tool that must succeed.
func (s *impSession) ok(ctx context.Context, tool string, args map[string]any) (string, map[string]any) {
	GinkgoHelper()
	ok, text, data := s.call(ctx, tool, args)
	Expect(ok).To(BeTrue(), "%s: tool %s answered an error: %s", s.user, tool, text)
	return text, data
}

// refused calls a tool that Kubernetes must refuse, and returns its message.
func (s *impSession) refused(ctx context.Context, tool string, args map[string]any) string {
	GinkgoHelper()
	ok, text, _ := s.call(ctx, tool, args)
	Expect(ok).To(BeFalse(), "%s: tool %s succeeded: %s", s.user, tool, text)
	Expect(text).To(ContainSubstring("403 Forbidden"))
	return text
}

// The issue-15 scenario on kind, through the browser sign-in of each user: a second release of the
// chart in impersonate mode against the mock Auth0 (whose post-login Action puts the users' groups
// into their tokens: alice is in team-a-dba, bob in team-b-viewers), the example roles of
// docs/rbac.md bound to those groups, and for each user an MCP client holding the token the
// server issued after that user's login. alice administers team-a; bob only views team-b; each
// gets exactly their own rights, and the release's ServiceAccount may do nothing but impersonate
// them. (The API server's audit log and a group removed upstream are checked against a real
// kube-apiserver in server/app, TestImpersonationEndToEnd.)
var _ = Describe("each signed-in user acts as themselves in Kubernetes (impersonate mode)", Ordered, Label("impersonate"), SpecPriority(50), func() {
	const specs = 5 // the Its below: cleanup only when every one passed
	var (
		alice, bob           *impSession
		aliceUser, bobUser   = impPrefix + mockconfig.AliceEmail, impPrefix + mockconfig.BobEmail
		aliceGroup, bobGroup = impPrefix + mockconfig.AliceGroups[0], impPrefix + mockconfig.BobGroups[0]
		serviceAccount       = "system:serviceaccount:" + impNamespace + ":cnpg-mcp"
		passed               int
	)
	rbacGVR := func(resource string) schema.GroupVersionResource {
		return schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: resource}
	}
	instances := func(ctx context.Context, ns string) int64 {
		GinkgoHelper()
		o, err := kc.Get(ctx, clusterGVR, ns, "pg")
		Expect(err).NotTo(HaveOccurred())
		n, _, _ := unstructured.NestedInt64(o.Object, "spec", "instances")
		return n
	}
	// sar asks the API server whether the release's ServiceAccount may do something.
	sar := func(ctx context.Context, a authzv1.ResourceAttributes) bool {
		GinkgoHelper()
		r, err := kc.Typed.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User: serviceAccount, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + impNamespace, "system:authenticated"},
			ResourceAttributes: &a,
		}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		return r.Status.Allowed
	}

	BeforeAll(func(ctx SpecContext) {
		start := time.Now()
		// the release's callback is in the upstream application since the suite's setup (setupUpstream)
		By("namespaces team-a and team-b, the example roles of docs/rbac.md bound to the users' groups")
		for _, ns := range []string{teamA, teamB} {
			_, err := kc.Typed.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				Fail(err.Error())
			}
		}
		Expect(kc.ApplyFile(ctx, filepath.Join(cfg.RepoRoot, "server", "tools", "rbac", "examples.yaml"), "")).To(Succeed())
		Expect(kc.ApplyYAML(ctx, "", fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: team-a-dba, namespace: %s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cnpg-dba}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: %q}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: team-b-viewers, namespace: %s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cnpg-viewer}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: %q}]
`, teamA, aliceGroup, teamB, bobGroup))).To(Succeed())

		By("a PostgreSQL cluster in team-b for bob to look at, created by the cluster admin")
		spec := map[string]any{"instances": int64(1), "storage": map[string]any{"size": "1Gi"}}
		if cfg.PGImage != "" {
			spec["imageName"], spec["imagePullPolicy"] = cfg.PGImage, "IfNotPresent"
		}
		Expect(kc.Apply(ctx, teamB, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
			"metadata": map[string]any{"name": "pg", "namespace": teamB}, "spec": spec,
		}})).To(Succeed())

		By("installing the chart in impersonate mode, restricted to impersonating alice, bob and their groups")
		installServer(ctx, impNamespace, impURL, impNodePort, map[string]any{
			"identity": map[string]any{"mode": "impersonate", "impersonation": map[string]any{
				"userClaim": "email", "userPrefix": impPrefix, "groupsClaim": mockconfig.DefaultGroupsClaim, "groupsPrefix": impPrefix,
				"users": []any{aliceUser, bobUser}, "groups": []any{aliceGroup, bobGroup},
			}},
			"config": map[string]any{"kubernetes": map[string]any{"namespaces": []any{teamA, teamB}}},
		})

		// RBAC reaches the authorizer through an informer: wait until the bindings are in effect.
		Expect(kube.WaitFor(ctx, "the RoleBindings in effect", time.Minute, func(ctx context.Context) (bool, string, error) {
			for _, c := range []struct{ user, group, ns, verb string }{{aliceUser, aliceGroup, teamA, "create"}, {bobUser, bobGroup, teamB, "get"}} {
				r, err := kc.Typed.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
					User: c.user, Groups: []string{c.group, "system:authenticated"},
					ResourceAttributes: &authzv1.ResourceAttributes{Namespace: c.ns, Verb: c.verb, Group: "postgresql.cnpg.io", Resource: "clusters"},
				}}, metav1.CreateOptions{})
				if err != nil {
					return false, "", err
				}
				if !r.Status.Allowed {
					return false, c.user + " not yet allowed", nil
				}
			}
			return true, "", nil
		})).To(Succeed())
		AddReportEntry("impersonate-setup", time.Since(start).Round(time.Second).String())
	}, NodeTimeout(10*time.Minute))

	AfterAll(func(ctx SpecContext) {
		for _, s := range []*impSession{alice, bob} {
			if s != nil {
				_ = s.c.Close()
			}
		}
		if passed != specs {
			fmt.Fprintf(logw, "impersonate: %d of %d specs passed; leaving %s, %s and %s for the dump\n", passed, specs, impNamespace, teamA, teamB)
			return
		}
		_ = hc.Uninstall(ctx, "cnpg-mcp", impNamespace)
		delete(installed, impNamespace)
		for _, ns := range []string{teamA, teamB, impNamespace} {
			_ = kc.Typed.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		}
		for _, role := range []string{"cnpg-dba", "cnpg-developer", "cnpg-viewer"} {
			_ = kc.Dynamic.Resource(rbacGVR("clusterroles")).Delete(ctx, role, metav1.DeleteOptions{})
		}
	}, NodeTimeout(3*time.Minute))

	It("signs alice and bob in through the browser, and get_my_permissions tells each their own rights", func(ctx SpecContext) {
		alice = impSignIn(ctx, mockconfig.AliceEmail, mockconfig.AlicePassword)
		bob = impSignIn(ctx, mockconfig.BobEmail, mockconfig.BobPassword)

		start := time.Now()
		text, m := alice.ok(ctx, "get_my_permissions", map[string]any{"namespace": teamA})
		AddReportEntry("impersonate-get-my-permissions", time.Since(start).Round(time.Millisecond).String())
		Expect(text).To(ContainSubstring("the tools act as you: Kubernetes user " + aliceUser))
		Expect(m["user"]).To(Equal(aliceUser))
		Expect(m["impersonated"]).To(Equal(true))
		Expect(m["groups"]).To(ContainElement(aliceGroup))
		Expect(m["groups"]).NotTo(ContainElement(bobGroup))
		Expect(m["denied_tools"]).To(BeEmpty(), "alice, DBA in team-a, may use every tool there")
		_, m = alice.ok(ctx, "get_my_permissions", map[string]any{"namespace": teamB})
		Expect(m["usable_tools"]).To(ConsistOf("get_my_permissions"), "alice has no rights in team-b")

		text, m = bob.ok(ctx, "get_my_permissions", map[string]any{"namespace": teamB})
		Expect(text).To(ContainSubstring("the tools act as you: Kubernetes user " + bobUser))
		Expect(text).To(ContainSubstring("scale_postgres_cluster: needs patch clusters.postgresql.cnpg.io\n"))
		Expect(m["user"]).To(Equal(bobUser))
		Expect(m["groups"]).To(ContainElement(bobGroup))
		Expect(m["groups"]).NotTo(ContainElement(aliceGroup))
		Expect(m["usable_tools"]).To(ContainElements("get_cluster_status", "list_postgres_clusters", "get_cluster_logs"))
		Expect(m["usable_tools"]).NotTo(ContainElement("scale_postgres_cluster"))
		Expect(m["usable_tools"]).NotTo(ContainElement("create_postgres_cluster"))
		_, m = bob.ok(ctx, "get_my_permissions", map[string]any{"namespace": teamA})
		Expect(m["usable_tools"]).To(ConsistOf("get_my_permissions"), "bob has no rights in team-a")
		passed++
	}, SpecTimeout(4*time.Minute))

	It("lets alice create a cluster in team-a and change it, and nothing in team-b", func(ctx SpecContext) {
		start := time.Now()
		text, _ := alice.ok(ctx, "create_postgres_cluster", map[string]any{"name": "pg", "namespace": teamA, "instances": 1, "storage_size": "1Gi", "wait": true, "timeout": 480})
		AddReportEntry("impersonate-alice-create-cluster-wait", time.Since(start).Round(time.Second).String())
		Expect(text).To(ContainSubstring("healthy"))
		text, _ = alice.ok(ctx, "get_cluster_status", map[string]any{"name": "pg", "namespace": teamA})
		Expect(text).To(ContainSubstring("Cluster team-a/pg"))
		alice.ok(ctx, "scale_postgres_cluster", map[string]any{"name": "pg", "namespace": teamA, "instances": 2})
		Expect(instances(ctx, teamA)).To(Equal(int64(2)), "alice's scale reached the cluster")

		Expect(alice.refused(ctx, "get_cluster_status", map[string]any{"name": "pg", "namespace": teamB})).
			To(ContainSubstring(aliceUser + " may not get clusters.postgresql.cnpg.io in namespace team-b"))
		Expect(alice.refused(ctx, "scale_postgres_cluster", map[string]any{"name": "pg", "namespace": teamB, "instances": 3})).
			To(ContainSubstring(aliceUser + " may not get clusters.postgresql.cnpg.io in namespace team-b"))
		Expect(instances(ctx, teamB)).To(Equal(int64(1)))
		passed++
	}, SpecTimeout(10*time.Minute))

	It("lets bob read team-b but not change it, and not read team-a; refusals name bob", func(ctx SpecContext) {
		text, _ := bob.ok(ctx, "get_cluster_status", map[string]any{"name": "pg", "namespace": teamB})
		Expect(text).To(ContainSubstring("Cluster team-b/pg"))
		text, _ = bob.ok(ctx, "list_postgres_clusters", map[string]any{"namespace": teamB})
		Expect(text).To(ContainSubstring("pg"))

		Expect(bob.refused(ctx, "scale_postgres_cluster", map[string]any{"name": "pg", "namespace": teamB, "instances": 3})).
			To(ContainSubstring(bobUser + " may not patch clusters.postgresql.cnpg.io in namespace team-b"))
		Expect(instances(ctx, teamB)).To(Equal(int64(1)), "bob's refused scale changed nothing")
		Expect(bob.refused(ctx, "create_postgres_cluster", map[string]any{"name": "bobs", "namespace": teamB, "instances": 1, "storage_size": "1Gi"})).
			To(ContainSubstring(bobUser + " may not create clusters.postgresql.cnpg.io in namespace team-b"))
		_, err := kc.Get(ctx, clusterGVR, teamB, "bobs")
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "bob's refused create made a cluster: %v", err)

		Expect(bob.refused(ctx, "get_cluster_status", map[string]any{"name": "pg", "namespace": teamA})).
			To(ContainSubstring(bobUser + " may not get clusters.postgresql.cnpg.io in namespace team-a"))
		Expect(bob.refused(ctx, "list_postgres_clusters", map[string]any{"namespace": teamA})).
			To(ContainSubstring(bobUser + " may not list clusters.postgresql.cnpg.io in namespace team-a"))
		text, _ = bob.ok(ctx, "list_postgres_clusters", map[string]any{"all_namespaces": true})
		Expect(text).To(ContainSubstring("Cluster team-b/pg"))
		Expect(text).NotTo(ContainSubstring("Cluster team-a/pg"))
		Expect(text).To(ContainSubstring("Skipped namespaces: team-a (" + bobUser + " may not list clusters.postgresql.cnpg.io there)"))

		By("the server's own audit lines name the Kubernetes user of each call")
		pods, err := kc.Typed.CoreV1().Pods(impNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=cnpg-mcp,app.kubernetes.io/instance=cnpg-mcp"})
		Expect(err).NotTo(HaveOccurred())
		Expect(pods.Items).To(HaveLen(1))
		logs, err := kc.Typed.CoreV1().Pods(impNamespace).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{Container: "server"}).DoRaw(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(logs)).To(ContainSubstring(`"kube_user":"` + aliceUser + `"`))
		Expect(string(logs)).To(ContainSubstring(`"kube_user":"` + bobUser + `"`))
		passed++
	}, SpecTimeout(3*time.Minute))

	It("refuses a client's own Impersonate-* headers", func(ctx SpecContext) {
		// bob's token, with headers asking to be alice in system:masters
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, impURL+"/mcp", strings.NewReader(
			`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"dev"}}}`))
		Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Authorization", "Bearer "+bob.token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Impersonate-User", aliceUser)
		req.Header.Add("Impersonate-Group", "system:masters")
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusBadRequest), "%s", body)
		Expect(string(body)).To(ContainSubstring("never from request headers"))
		passed++
	}, SpecTimeout(3*time.Minute))

	It("gives the release's ServiceAccount nothing but impersonation of the configured users and groups", func(ctx SpecContext) {
		By("the ServiceAccount's only binding is the chart's impersonation ClusterRole")
		// (bindings of every service account, such as system:service-account-issuer-discovery, are
		// left to the SubjectAccessReviews below)
		isSA := func(subjects []rbacv1.Subject) bool {
			return slices.ContainsFunc(subjects, func(s rbacv1.Subject) bool {
				return (s.Kind == "ServiceAccount" && s.Name == "cnpg-mcp" && s.Namespace == impNamespace) || (s.Kind == "User" && s.Name == serviceAccount) ||
					(s.Kind == "Group" && s.Name == "system:serviceaccounts:"+impNamespace)
			})
		}
		crbs, err := kc.Typed.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred())
		var roles []string
		for _, b := range crbs.Items {
			if isSA(b.Subjects) {
				roles = append(roles, b.RoleRef.Kind+"/"+b.RoleRef.Name)
			}
		}
		rbs, err := kc.Typed.RbacV1().RoleBindings("").List(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred())
		for _, b := range rbs.Items {
			if isSA(b.Subjects) {
				roles = append(roles, b.Namespace+":"+b.RoleRef.Kind+"/"+b.RoleRef.Name)
			}
		}
		const role = impNamespace + "-cnpg-mcp"
		Expect(roles).To(ConsistOf("ClusterRole/" + role))
		cr, err := kc.Typed.RbacV1().ClusterRoles().Get(ctx, role, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(cr.Rules).To(ConsistOf(
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}, ResourceNames: []string{aliceUser, bobUser}},
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"groups"}, Verbs: []string{"impersonate"}, ResourceNames: []string{aliceGroup, bobGroup}},
		))

		By("what the API server lets the ServiceAccount do (SubjectAccessReview, as kubectl auth can-i --as)")
		allowed := []authzv1.ResourceAttributes{
			{Verb: "impersonate", Resource: "users", Name: aliceUser},
			{Verb: "impersonate", Resource: "users", Name: bobUser},
			{Verb: "impersonate", Resource: "groups", Name: aliceGroup},
			{Verb: "impersonate", Resource: "groups", Name: bobGroup},
		}
		for _, a := range allowed {
			Expect(sar(ctx, a)).To(BeTrue(), "the ServiceAccount may %s %s %s", a.Verb, a.Resource, a.Name)
		}
		denied := []authzv1.ResourceAttributes{
			{Verb: "impersonate", Resource: "users", Name: impPrefix + "mallory@example.com"},
			{Verb: "impersonate", Resource: "users", Name: "kubernetes-admin"},
			{Verb: "impersonate", Resource: "groups", Name: "system:masters"},
			{Verb: "impersonate", Resource: "serviceaccounts", Namespace: "kube-system", Name: "default"},
			{Verb: "impersonate", Group: "authentication.k8s.io", Resource: "uids"},
			{Verb: "impersonate", Group: "authentication.k8s.io", Resource: "userextras"},
		}
		for _, ns := range []string{teamA, teamB, impNamespace, ""} {
			for _, verb := range []string{"get", "list", "create", "patch", "delete"} {
				denied = append(denied, authzv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: "postgresql.cnpg.io", Resource: "clusters"})
			}
			denied = append(denied,
				authzv1.ResourceAttributes{Namespace: ns, Verb: "list", Resource: "secrets"},
				authzv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "secrets"},
				authzv1.ResourceAttributes{Namespace: ns, Verb: "list", Resource: "pods"},
				authzv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "pods", Subresource: "log"},
				authzv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "pods", Subresource: "proxy"},
				authzv1.ResourceAttributes{Namespace: ns, Verb: "create", Resource: "rolebindings", Group: "rbac.authorization.k8s.io"},
			)
		}
		for _, a := range denied {
			Expect(sar(ctx, a)).To(BeFalse(), "the ServiceAccount must not %s %s.%s/%s %q in %q", a.Verb, a.Resource, a.Group, a.Subresource, a.Name, a.Namespace)
		}
		AddReportEntry("impersonate-service-account-checks", fmt.Sprintf("%d allowed, %d denied", len(allowed), len(denied)))
		passed++
	}, SpecTimeout(2*time.Minute))
})
