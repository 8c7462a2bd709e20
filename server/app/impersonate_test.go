package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cnpg-mcp/cnpg-mcp/internal/kubetest"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
	mconfig "github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools/kube"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools/rbac"
)

// impersonationCluster starts a kube-apiserver with an audit log and sets up the scenario:
// namespaces team-a and team-b, a Cluster "pg" in each, the example roles, team-a's DBA role bound to
// the group oidc:team-a-dba, team-b's viewer role bound to the user oidc:bob@example.com, and a server
// identity (system:serviceaccount:cnpg-mcp:cnpg-mcp) that may only impersonate. It returns the env, an
// admin client and a kubeconfig file for the server identity.
func impersonationCluster(t *testing.T, dir string) (*kubetest.Env, client.Client, string) {
	t.Helper()
	if !kubetest.Available() {
		if os.Getenv("CNPG_MCP_REQUIRE_ALL") == "1" {
			t.Fatal(kubetest.ErrNoBinaries)
		}
		t.Skip(kubetest.ErrNoBinaries.Error())
	}
	env, err := kubetest.StartWith(context.Background(), kubetest.Options{AuditPolicy: kubetest.DefaultAuditPolicy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Stop)
	scheme, err := kube.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	if err := rbacv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := authzv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(env.Admin, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	roles, err := rbac.ClusterRoles()
	must(err)
	for _, name := range []string{rbac.ImpersonatorClusterRole, rbac.DBARole, rbac.ViewerRole} {
		must(admin.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: roles[name].Rules}))
	}
	const sa = "system:serviceaccount:cnpg-mcp:cnpg-mcp"
	bind := func(ns, name, role string, subject rbacv1.Subject) {
		subject.APIGroup = "rbac.authorization.k8s.io"
		ref := rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role}
		if ns == "" {
			must(admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, RoleRef: ref, Subjects: []rbacv1.Subject{subject}}))
			return
		}
		must(admin.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, RoleRef: ref, Subjects: []rbacv1.Subject{subject}}))
	}
	bind("", "cnpg-mcp-impersonator", rbac.ImpersonatorClusterRole, rbacv1.Subject{Kind: "User", Name: sa})
	for _, ns := range []string{"team-a", "team-b"} {
		must(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
		must(admin.Create(ctx, &cnpgv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "pg", Namespace: ns},
			Spec: cnpgv1.ClusterSpec{Instances: 1, StorageConfiguration: cnpgv1.StorageConfiguration{Size: "1Gi"}}}))
	}
	bind("team-a", "team-a-dba", rbac.DBARole, rbacv1.Subject{Kind: "Group", Name: "oidc:team-a-dba"})
	bind("team-b", "bob-views", rbac.ViewerRole, rbacv1.Subject{Kind: "User", Name: "oidc:bob@example.com"})
	saCfg, err := env.UserConfig(sa)
	must(err)
	kc := filepath.Join(dir, "kubeconfig-sa")
	must(env.WriteKubeconfigFor(saCfg, kc))
	// RBAC reaches the authorizer through an informer: wait until the last binding is in effect.
	deadline := time.Now().Add(20 * time.Second)
	for {
		sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{User: "oidc:bob@example.com",
			ResourceAttributes: &authzv1.ResourceAttributes{Namespace: "team-b", Verb: "get", Group: "postgresql.cnpg.io", Resource: "clusters"}}}
		if err := admin.Create(ctx, sar); err == nil && sar.Status.Allowed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("RBAC bindings not in effect after 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return env, admin, kc
}

// mcpSession initializes an MCP session with token and returns a caller of tools.
func (s *stack) mcpSession(in *instance, token string) func(tool string, args map[string]any) (bool, string) {
	s.t.Helper()
	st, hdr, body := s.rpc(in, token, "", initialize)
	if st != 200 {
		s.t.Fatalf("initialize: %d %s", st, body)
	}
	session := hdr.Get("Mcp-Session-Id")
	id := 1
	return func(tool string, args map[string]any) (bool, string) {
		s.t.Helper()
		id++
		params, _ := json.Marshal(map[string]any{"name": tool, "arguments": args})
		st, _, body := s.rpc(in, token, session, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":%s}`, id, params))
		if st != 200 {
			s.t.Fatalf("tools/call %s: HTTP %d %s", tool, st, body)
		}
		var msg struct {
			Result struct {
				IsError bool `json:"isError"`
				Content []struct {
					Text string `json:"text"`
				} `json:"content"`
			} `json:"result"`
		}
		for _, line := range strings.Split(body, "\n") {
			line = strings.TrimPrefix(line, "data: ")
			if json.Unmarshal([]byte(line), &msg) == nil && len(msg.Result.Content) > 0 {
				break
			}
		}
		if len(msg.Result.Content) == 0 {
			s.t.Fatalf("tools/call %s: no result in %s", tool, body)
		}
		return !msg.Result.IsError, msg.Result.Content[0].Text
	}
}

// The "done means", end to end: the real OAuth flow against the mock Auth0 (whose
// post-login Action puts the users' groups into their tokens), our server in impersonate mode, and
// a real kube-apiserver with an audit log.
//   - alice (group team-a-dba → DBA in team-a) changes team-a's cluster, may not read team-b's;
//   - bob (user → viewer in team-b) reads team-b's cluster, may not change it: the message names him;
//   - the API server's audit log names the impersonated users, the server's service account as the
//     one who impersonated;
//   - a request carrying Impersonate-* headers is refused;
//   - alice removed from team-a-dba upstream: her rights go at the next refresh (max_identity_age
//     forces the upstream refresh), for her old access token too, since the identity is read from
//     the grant on every request.
func TestImpersonationEndToEnd(t *testing.T) {
	s := newStack(t, nil)
	env, admin, kc := impersonationCluster(t, s.dir)
	in := s.start(func(c *config.Config) {
		c.Kubernetes.Kubeconfig = kc
		c.Kubernetes.Identity = config.IdentityImpersonate
		c.Kubernetes.Namespaces = []string{"team-a", "team-b"}
		c.Kubernetes.Impersonation = config.Impersonation{UserClaim: "email", UserPrefix: "oidc:", GroupsClaim: mconfig.DefaultGroupsClaim, GroupsPrefix: "oidc:",
			MaxIdentityAge: 10 * time.Minute}
	})
	signIn := func(email, password string) (clientID string, tok map[string]any) {
		t.Helper()
		clientID = s.register(in)
		loc := s.loginAs(in, in, clientID, nil, email, password)
		return clientID, s.exchange(in, clientID, loc.Query().Get("code"))
	}
	aliceID, aliceTok := signIn(mconfig.AliceEmail, mconfig.AlicePassword)
	_, bobTok := signIn(mconfig.BobEmail, mconfig.BobPassword)
	alice := s.mcpSession(in, aliceTok["access_token"].(string))
	bob := s.mcpSession(in, bobTok["access_token"].(string))

	if ok, txt := alice("scale_postgres_cluster", map[string]any{"name": "pg", "namespace": "team-a", "instances": 2}); !ok {
		t.Fatalf("alice scales team-a's cluster: %s", txt)
	}
	var pg cnpgv1.Cluster
	if err := admin.Get(context.Background(), client.ObjectKey{Namespace: "team-a", Name: "pg"}, &pg); err != nil || pg.Spec.Instances != 2 {
		t.Fatalf("team-a's cluster after alice's scale: %d %v", pg.Spec.Instances, err)
	}
	if ok, txt := alice("get_cluster_status", map[string]any{"name": "pg", "namespace": "team-b"}); ok ||
		!strings.Contains(txt, "oidc:alice@example.com may not get clusters.postgresql.cnpg.io in namespace team-b") {
		t.Fatalf("alice reads team-b: %v %s", ok, txt)
	}
	if ok, txt := bob("get_cluster_status", map[string]any{"name": "pg", "namespace": "team-b"}); !ok || !strings.Contains(txt, "Cluster team-b/pg") {
		t.Fatalf("bob reads team-b: %s", txt)
	}
	if ok, txt := bob("scale_postgres_cluster", map[string]any{"name": "pg", "namespace": "team-b", "instances": 3}); ok ||
		!strings.Contains(txt, "oidc:bob@example.com may not patch clusters.postgresql.cnpg.io in namespace team-b") {
		t.Fatalf("bob scales team-b: %v %s", ok, txt)
	}
	if ok, txt := bob("list_postgres_clusters", map[string]any{"all_namespaces": true}); !ok || !strings.Contains(txt, "Cluster team-b/pg") ||
		!strings.Contains(txt, "Skipped namespaces: team-a (oidc:bob@example.com may not list clusters.postgresql.cnpg.io there)") {
		t.Fatalf("bob lists everywhere: %s", txt)
	}
	if !strings.Contains(s.logs.String(), `"kube_user":"oidc:alice@example.com"`) {
		t.Fatal("the server's audit line does not name the Kubernetes user")
	}

	// The API server's audit log names the impersonated users.
	events, err := env.AuditEvents()
	if err != nil {
		t.Fatal(err)
	}
	find := func(user, verb, ns string, code int) bool {
		return slices.ContainsFunc(events, func(e kubetest.AuditEvent) bool {
			return e.ImpersonatedUser != nil && e.ImpersonatedUser.Username == user && e.User.Username == "system:serviceaccount:cnpg-mcp:cnpg-mcp" &&
				e.Verb == verb && e.ObjectRef != nil && e.ObjectRef.Resource == "clusters" && e.ObjectRef.Namespace == ns &&
				e.ResponseStatus != nil && e.ResponseStatus.Code == code
		})
	}
	if !find("oidc:alice@example.com", "patch", "team-a", 200) || !find("oidc:bob@example.com", "patch", "team-b", 403) || !find("oidc:bob@example.com", "get", "team-b", 200) {
		t.Fatalf("audit log (%d events) does not name the impersonated users for alice's patch, bob's refused patch and bob's read", len(events))
	}
	for _, e := range events {
		if e.ObjectRef != nil && e.ObjectRef.Resource == "clusters" && e.User.Username == "system:serviceaccount:cnpg-mcp:cnpg-mcp" && e.ImpersonatedUser == nil {
			t.Fatalf("the server acted as itself on clusters: %+v", e)
		}
	}
	aliceGroups := func() []string {
		for i := len(events) - 1; i >= 0; i-- {
			if e := events[i]; e.ImpersonatedUser != nil && e.ImpersonatedUser.Username == "oidc:alice@example.com" {
				return e.ImpersonatedUser.Groups
			}
		}
		return nil
	}
	if g := aliceGroups(); !slices.Contains(g, "oidc:team-a-dba") {
		t.Fatalf("alice impersonated with groups %v", g)
	}

	// A client sending Impersonate-* itself is refused.
	req, _ := http.NewRequest(http.MethodPost, in.base+"/mcp", strings.NewReader(initialize))
	req.Header.Set("Authorization", "Bearer "+bobTok["access_token"].(string))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Impersonate-User", "oidc:alice@example.com")
	req.Header.Add("Impersonate-Group", "system:masters")
	res, body := s.do(nil, req)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Impersonate-") || !strings.Contains(body, "never from request headers") {
		t.Fatalf("a request with Impersonate headers: %d %s", res.StatusCode, body)
	}

	// alice leaves team-a-dba upstream. Until her grant's identity is refreshed she keeps it.
	if err := s.mock.SetUserGroups(mconfig.AliceSub, nil); err != nil {
		t.Fatal(err)
	}
	if ok, txt := alice("get_cluster_status", map[string]any{"name": "pg", "namespace": "team-a"}); !ok {
		t.Fatalf("before the refresh (within the documented lag): %s", txt)
	}
	// A refresh before max_identity_age keeps the identity (no upstream call)...
	st, tok := s.refresh(in, aliceID, aliceTok["refresh_token"].(string))
	if st != 200 {
		t.Fatalf("refresh: %d %v", st, tok)
	}
	if ok, _ := s.mcpSession(in, tok["access_token"].(string))("get_cluster_status", map[string]any{"name": "pg", "namespace": "team-a"}); !ok {
		t.Fatal("a refresh younger than max_identity_age already dropped the group (it should not have asked upstream)")
	}
	// ...one after it re-reads the claims upstream: the group is gone for every token of the grant.
	s.clock.Advance(11 * time.Minute)
	st, tok = s.refresh(in, aliceID, tok["refresh_token"].(string))
	if st != 200 {
		t.Fatalf("refresh after max_identity_age: %d %v", st, tok)
	}
	for name, call := range map[string]func(string, map[string]any) (bool, string){
		"new token": s.mcpSession(in, tok["access_token"].(string)), "old token": alice} {
		if ok, txt := call("get_cluster_status", map[string]any{"name": "pg", "namespace": "team-a"}); ok ||
			!strings.Contains(txt, "oidc:alice@example.com may not get clusters.postgresql.cnpg.io in namespace team-a") {
			t.Fatalf("alice without team-a-dba, %s: %v %s", name, ok, txt)
		}
	}
	events, _ = env.AuditEvents()
	if g := aliceGroups(); slices.Contains(g, "oidc:team-a-dba") {
		t.Fatalf("after the refresh alice is still impersonated with %v", g)
	}
}

// An impersonating server refuses a sign-in whose identity cannot name a Kubernetes user (here the
// email is unverified), with the reason, instead of issuing a grant that could never call a tool.
func TestImpersonationRefusesUnusableIdentity(t *testing.T) {
	f := false
	s := newStack(t, func(c *mockauth0.Config) {
		for i := range c.Users {
			if c.Users[i].Email == mconfig.BobEmail {
				c.Users[i].EmailVerified = &f
			}
		}
	})
	in := s.start(func(c *config.Config) { c.Kubernetes.Identity = config.IdentityImpersonate })
	id := s.register(in)
	loc := s.loginAs(in, in, id, nil, mconfig.BobEmail, mconfig.BobPassword)
	if loc.Query().Get("error") != "access_denied" || loc.Query().Get("code") != "" || !strings.Contains(loc.Query().Get("error_description"), "not verified") {
		t.Fatalf("sign-in with an unverified email: %s", loc)
	}
}
