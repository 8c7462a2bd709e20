// Package chart_test renders chart/cnpg-mcp with the pinned Helm and checks what an operator relies on:
// the security context, the store/replica rules, least-privilege RBAC, Secrets referenced not created,
// and the oidc.yaml keys the server reads. Helm comes from $HELM (mk/e2e.mk builds it from the Go
// module proxy); without it the tests skip, unless CNPG_MCP_REQUIRE_ALL=1.
package chart_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

const chartDir = "cnpg-mcp"

func helmBin(t *testing.T) string {
	t.Helper()
	h := os.Getenv("HELM")
	if h == "" {
		if p, err := exec.LookPath("helm"); err == nil {
			h = p
		}
	}
	if h == "" {
		if os.Getenv("CNPG_MCP_REQUIRE_ALL") == "1" {
			t.Fatal("helm not found: run `make helm` and set HELM=$CACHE_DIR/tools/helm-<version>/helm (make test does)")
		}
		t.Skip("helm not found: run `make helm` and set HELM to it (or put helm on PATH)")
	}
	return h
}

// object is one rendered manifest: its kind and name, and the raw YAML to decode into a typed struct.
type object struct {
	Kind, Name, Namespace string
	raw                   []byte
}

func (o object) decode(t *testing.T, into any) {
	t.Helper()
	if err := yaml.Unmarshal(o.raw, into); err != nil {
		t.Fatalf("decode %s/%s: %v", o.Kind, o.Name, err)
	}
}

type rendered []object

func (r rendered) all(kind string) []object {
	var out []object
	for _, o := range r {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func (r rendered) one(t *testing.T, kind string) object {
	t.Helper()
	objs := r.all(kind)
	if len(objs) != 1 {
		t.Fatalf("want exactly one %s, got %d", kind, len(objs))
	}
	return objs[0]
}

func render(t *testing.T, args ...string) (rendered, error) {
	t.Helper()
	cmd := exec.Command(helmBin(t), append([]string{"template", "rel", chartDir, "--namespace", "mcp", "--kube-version", "1.37.2"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, &renderError{msg: stderr.String()}
	}
	var out rendered
	for _, doc := range strings.Split(stdout.String(), "\n---\n") {
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, doc)
		}
		if meta.Kind == "" {
			continue
		}
		out = append(out, object{Kind: meta.Kind, Name: meta.Metadata.Name, Namespace: meta.Metadata.Namespace, raw: []byte(doc)})
	}
	return out, nil
}

type renderError struct{ msg string }

func (e *renderError) Error() string { return e.msg }

func mustRender(t *testing.T, args ...string) rendered {
	t.Helper()
	r, err := render(t, args...)
	if err != nil {
		t.Fatalf("helm template %v: %v", args, err)
	}
	return r
}

func values(name string) string { return "--values=" + filepath.Join("testdata", name) }

func TestRefusesValuesThatCannotWork(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no public URL", nil, "publicURL is required"},
		{"public URL with trailing slash", []string{"--set", "publicURL=https://mcp.example.com/"}, `must not end with "/"`},
		{"public URL with query", []string{"--set", "publicURL=https://mcp.example.com/?a=b"}, "/publicURL"},
		{"public URL not a URL", []string{"--set", "publicURL=mcp.example.com"}, "publicURL"},
		{"file store with two replicas", []string{"--set", "publicURL=https://m.example", "--set", "replicaCount=2"}, "set replicaCount=1"},
		{"postgres store without a database", []string{"--set", "publicURL=https://m.example", "--set", "store.type=postgres"}, "store.postgres.existingSecret"},
		{"unknown store", []string{"--set", "publicURL=https://m.example", "--set", "store.type=sqlite"}, "store/type"},
		{"misspelt top-level key", []string{"--set", "publicURL=https://m.example", "--set", "replicas=2"}, "additional properties"},
		{"zero replicas", []string{"--set", "publicURL=https://m.example", "--set", "replicaCount=0"}, "replicaCount"},
		{"unknown identity mode", []string{"--set", "publicURL=https://m.example", "--set", "identity.mode=root"}, "identity/mode"},
		{"system: user prefix", []string{"--set", "publicURL=https://m.example", "--set", "identity.mode=impersonate", "--set", "identity.impersonation.userPrefix=system:"}, "userPrefix"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := render(t, c.args...)
			if err == nil {
				t.Fatalf("helm template accepted %v", c.args)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error does not say %q:\n%s", c.want, err)
			}
		})
	}
}

// The one required value installs a hardened pod that references (never creates) its Secrets and whose
// oidc.yaml leaves the upstream empty, so the server refuses to start until it is configured.
func TestMinimalInstallIsLockedDownAndUnconfigured(t *testing.T) {
	r := mustRender(t, values("minimal.yaml"))

	if s := r.all("Secret"); len(s) != 0 {
		t.Fatalf("default install must not create Secrets, got %d", len(s))
	}
	for _, k := range []string{"Ingress", "NetworkPolicy", "ServiceMonitor", "PodDisruptionBudget", "Cluster", "Role"} {
		if n := len(r.all(k)); n != 0 {
			t.Errorf("default install renders %d %s, want none (opt-in)", n, k)
		}
	}

	var dep appsv1.Deployment
	r.one(t, "Deployment").decode(t, &dep)
	if dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("file store: strategy %q, want Recreate (one process per store file)", dep.Spec.Strategy.Type)
	}
	if *dep.Spec.Replicas != 1 {
		t.Errorf("replicas %d, want 1", *dep.Spec.Replicas)
	}
	pod := dep.Spec.Template.Spec
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod must run as a non-root uid: %+v", psc)
	}
	if pod.SecurityContext.SeccompProfile == nil || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod seccomp profile must be RuntimeDefault")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("root filesystem must be read-only")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("privilege escalation must be off")
	}
	if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) != 0 {
		t.Errorf("all capabilities must be dropped, none added")
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe must be GET /healthz")
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe must be GET /readyz")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("cpu/memory requests and a memory limit must be set: %+v", c.Resources)
	}
	if !slices.Contains(c.Args, "--config=/etc/cnpg-mcp/oidc.yaml") {
		t.Errorf("server must be pointed at the rendered oidc.yaml: %v", c.Args)
	}

	// Secrets are referenced and optional: the pod starts and the server names what is missing.
	secretVols := map[string]string{}
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			if v.Secret.Optional == nil || !*v.Secret.Optional {
				t.Errorf("secret volume %s must be optional", v.Name)
			}
			secretVols[v.Name] = v.Secret.SecretName
		}
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName != "rel-cnpg-mcp-data" {
			t.Errorf("data volume claims %q", v.PersistentVolumeClaim.ClaimName)
		}
	}
	if secretVols["client-secret"] != "rel-cnpg-mcp-oidc-client" || secretVols["keys"] != "rel-cnpg-mcp-keys" {
		t.Errorf("secret volumes: %v", secretVols)
	}
	r.one(t, "PersistentVolumeClaim")

	cfg := oidcConfig(t, r)
	for _, k := range []string{"issuer", "audience", "client_id", "client_secret_file", "public_url", "jwks_uri", "scope"} {
		if _, ok := cfg[k]; !ok {
			t.Errorf("oidc.yaml lacks the seed key %q", k)
		}
	}
	if cfg["public_url"] != "https://mcp.example.com" {
		t.Errorf("public_url = %v", cfg["public_url"])
	}
	if cfg["issuer"] != "" || cfg["client_id"] != "" {
		t.Errorf("the upstream must stay unconfigured by default: issuer=%v client_id=%v", cfg["issuer"], cfg["client_id"])
	}
	if st, _ := cfg["storage"].(map[string]any); st["driver"] != "bolt" || st["path"] != "/var/lib/cnpg-mcp/cnpg-mcp.db" {
		t.Errorf("storage = %v, want the bolt file on the PVC", cfg["storage"])
	}
	if cfg["listen"] != ":8080" || cfg["signing_key_file"] != "/etc/cnpg-mcp/keys/signing-key" || cfg["sealing_key_file"] != "/etc/cnpg-mcp/keys/sealing-key" {
		t.Errorf("listen/key files: %v %v %v", cfg["listen"], cfg["signing_key_file"], cfg["sealing_key_file"])
	}
	if !strings.HasPrefix(cfg["client_secret_file"].(string), "/etc/cnpg-mcp/client/") {
		t.Errorf("client_secret_file = %v, want a file under the mounted Secret", cfg["client_secret_file"])
	}
}

func oidcConfig(t *testing.T, r rendered) map[string]any {
	t.Helper()
	var cm corev1.ConfigMap
	r.one(t, "ConfigMap").decode(t, &cm)
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["oidc.yaml"]), &cfg); err != nil {
		t.Fatalf("oidc.yaml: %v", err)
	}
	return cfg
}

func TestConfiguredInstall(t *testing.T) {
	r := mustRender(t, values("auth0.yaml"))
	cfg := oidcConfig(t, r)
	if cfg["issuer"] != "https://example-tenant.eu.auth0.com/" || cfg["client_id"] != "abcdefghijklmnopqrstuvwxyz012345" {
		t.Errorf("upstream not rendered: %v", cfg)
	}
	if lt, _ := cfg["lifetimes"].(map[string]any); lt["access_token"] != "30m" {
		t.Errorf("config: extra keys are not merged into oidc.yaml: %v", cfg)
	}
	var dep appsv1.Deployment
	r.one(t, "Deployment").decode(t, &dep)
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Name == "client-secret" && v.Secret.SecretName != "cnpg-mcp-oidc-client" {
			t.Errorf("existing client secret not used: %s", v.Secret.SecretName)
		}
	}
	// The opt-in generator makes exactly the keys Secret, with 32 random bytes per key, kept on uninstall.
	var sec corev1.Secret
	r.one(t, "Secret").decode(t, &sec)
	if sec.Name != "rel-cnpg-mcp-keys" || sec.Annotations["helm.sh/resource-policy"] != "keep" {
		t.Errorf("generated keys Secret %q annotations %v", sec.Name, sec.Annotations)
	}
	for _, k := range []string{"signing-key", "sealing-key"} {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sec.Data[k])))
		if err != nil || len(raw) != 32 {
			t.Errorf("%s: want base64 of 32 bytes, got %q (%v)", k, sec.Data[k], err)
		}
	}
	again := mustRender(t, values("auth0.yaml"))
	var sec2 corev1.Secret
	again.one(t, "Secret").decode(t, &sec2)
	if bytes.Equal(sec.Data["signing-key"], sec2.Data["signing-key"]) {
		t.Errorf("generated signing keys are not random")
	}
}

func TestPostgresHighAvailability(t *testing.T) {
	r := mustRender(t, values("postgres-ha.yaml"))
	var dep appsv1.Deployment
	r.one(t, "Deployment").decode(t, &dep)
	if *dep.Spec.Replicas != 3 || dep.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Errorf("replicas %d strategy %s", *dep.Spec.Replicas, dep.Spec.Strategy.Type)
	}
	if n := len(r.all("PersistentVolumeClaim")); n != 0 {
		t.Errorf("postgres store must not create a PVC, got %d", n)
	}
	var found bool
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Name == "postgres" {
			found = v.Secret.SecretName == "rel-cnpg-mcp-state-app"
		}
	}
	if !found {
		t.Errorf("the state database's app Secret is not mounted")
	}
	cfg := oidcConfig(t, r)
	store, _ := cfg["storage"].(map[string]any)
	if store["driver"] != "postgres" || store["dsn_file"] != "/etc/cnpg-mcp/postgres/uri" {
		t.Errorf("store config %v", store)
	}
	cl := r.one(t, "Cluster")
	if cl.Name != "rel-cnpg-mcp-state" {
		t.Errorf("state cluster name %q", cl.Name)
	}
	r.one(t, "PodDisruptionBudget")
	r.one(t, "ServiceMonitor")

	var ing networkingv1.Ingress
	r.one(t, "Ingress").decode(t, &ing)
	if ing.Spec.Rules[0].Host != "mcp.example.com" {
		t.Errorf("ingress host %q, want the host of publicURL", ing.Spec.Rules[0].Host)
	}
	var np networkingv1.NetworkPolicy
	r.one(t, "NetworkPolicy").decode(t, &np)
	if len(np.Spec.PolicyTypes) != 2 {
		t.Errorf("network policy must restrict ingress and egress: %v", np.Spec.PolicyTypes)
	}

}

func TestRBACIsLeastPrivilege(t *testing.T) {
	t.Run("cluster-wide", func(t *testing.T) {
		r := mustRender(t, values("minimal.yaml"))
		var cr rbacv1.ClusterRole
		r.one(t, "ClusterRole").decode(t, &cr)
		checkRules(t, cr.Rules, false)
		var crb rbacv1.ClusterRoleBinding
		r.one(t, "ClusterRoleBinding").decode(t, &crb)
		if crb.Subjects[0].Name != "rel-cnpg-mcp" || crb.Subjects[0].Namespace != "mcp" {
			t.Errorf("binding subject %+v", crb.Subjects[0])
		}
		// The same release name in another namespace must not collide with these cluster-wide objects.
		if cr.Name != "mcp-rel-cnpg-mcp" || crb.Name != cr.Name || crb.RoleRef.Name != cr.Name {
			t.Errorf("cluster-wide RBAC names must carry the release namespace: role %q, binding %q -> %q", cr.Name, crb.Name, crb.RoleRef.Name)
		}
	})
	t.Run("read-only in named namespaces", func(t *testing.T) {
		r := mustRender(t, values("readonly-namespaced.yaml"))
		if n := len(r.all("ClusterRole")) + len(r.all("ClusterRoleBinding")); n != 0 {
			t.Errorf("namespaced RBAC must not create cluster-wide objects, got %d", n)
		}
		roles := r.all("Role")
		if len(roles) != 2 || len(r.all("RoleBinding")) != 2 {
			t.Fatalf("want a Role and RoleBinding per namespace, got %d roles", len(roles))
		}
		cfg := oidcConfig(t, r)
		if k, _ := cfg["kubernetes"].(map[string]any); len(k["namespaces"].([]any)) != 2 {
			t.Errorf("the server's namespace allow-list must follow rbac.namespaces: %v", cfg["kubernetes"])
		}
		if m, _ := cfg["mcp"].(map[string]any); m["read_only"] != true {
			t.Errorf("read-only RBAC must put the server in read-only mode: %v", cfg["mcp"])
		}
		for _, o := range roles {
			var role rbacv1.Role
			o.decode(t, &role)
			if role.Namespace != "team-a" && role.Namespace != "team-b" {
				t.Errorf("role in namespace %q", role.Namespace)
			}
			if role.Name != "mcp-rel-cnpg-mcp" {
				t.Errorf("a Role in a managed namespace must name the release's namespace: %q", role.Name)
			}
			checkRules(t, role.Rules, true)
		}
	})
}

func checkRules(t *testing.T, rules []rbacv1.PolicyRule, readOnly bool) {
	t.Helper()
	reads := []string{"get", "list", "watch"}
	var secrets bool
	for _, r := range rules {
		for _, s := range append(append(append([]string{}, r.APIGroups...), r.Resources...), r.Verbs...) {
			if s == "*" {
				t.Errorf("wildcard in rule %+v", r)
			}
		}
		if slices.Contains(r.Resources, "secrets") {
			secrets = true
		}
		for _, v := range r.Verbs {
			if readOnly && !slices.Contains(reads, v) {
				t.Errorf("read-only RBAC grants %q on %v", v, r.Resources)
			}
			if v == "escalate" || v == "bind" || v == "impersonate" {
				t.Errorf("RBAC grants %q", v)
			}
		}
	}
	if readOnly && secrets {
		t.Errorf("read-only RBAC must not reach Secrets")
	}
}

// The chart's rules are the tools' rules: server/tools/rbac/clusterrole.yaml (verified by the tools'
// tests against a real kube-apiserver) holds cnpg-mcp-server and cnpg-mcp-server-readonly.
func TestRBACMatchesTheToolsRules(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "server", "tools", "rbac", "clusterrole.yaml"))
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("server/tools/rbac/clusterrole.yaml is not in this tree yet")
	}
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]rbacv1.PolicyRule{}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var cr rbacv1.ClusterRole
		if err := yaml.Unmarshal([]byte(doc), &cr); err != nil {
			t.Fatal(err)
		}
		want[cr.Name] = cr.Rules
	}
	for _, c := range []struct {
		role string
		args []string
	}{
		{"cnpg-mcp-server", []string{values("minimal.yaml")}},
		{"cnpg-mcp-server-readonly", []string{values("minimal.yaml"), "--set", "rbac.readOnly=true"}},
	} {
		if want[c.role] == nil {
			t.Fatalf("%s not in clusterrole.yaml", c.role)
		}
		var got rbacv1.ClusterRole
		mustRender(t, c.args...).one(t, "ClusterRole").decode(t, &got)
		if !slices.EqualFunc(got.Rules, want[c.role], func(a, b rbacv1.PolicyRule) bool {
			return slices.Equal(a.APIGroups, b.APIGroups) && slices.Equal(a.Resources, b.Resources) && slices.Equal(a.Verbs, b.Verbs)
		}) {
			t.Errorf("%s: chart rules differ from server/tools/rbac:\nchart: %+v\ntools: %+v", c.role, got.Rules, want[c.role])
		}
	}
}

// impersonatorRules reads server/tools/rbac/impersonator.yaml (verified against a real
// kube-apiserver by the tools' tests).
func impersonatorRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "server", "tools", "rbac", "impersonator.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cr rbacv1.ClusterRole
	if err := yaml.Unmarshal(b, &cr); err != nil {
		t.Fatal(err)
	}
	return cr.Rules
}

// Impersonate mode: the ServiceAccount gets impersonate on users and groups and nothing else (a
// ClusterRole even with rbac.namespaces: no Role grants it anything in a namespace), restricted by
// resourceNames to the configured users/groups; the server's config gets the same mode and lists.
func TestRBACImpersonateMode(t *testing.T) {
	only := func(t *testing.T, r rendered) rbacv1.ClusterRole {
		t.Helper()
		if n := len(r.all("Role")) + len(r.all("RoleBinding")); n != 0 {
			t.Errorf("impersonate mode renders %d namespaced Roles/RoleBindings; the ServiceAccount must have nothing but impersonation", n)
		}
		var cr rbacv1.ClusterRole
		r.one(t, "ClusterRole").decode(t, &cr)
		var crb rbacv1.ClusterRoleBinding
		r.one(t, "ClusterRoleBinding").decode(t, &crb)
		if crb.RoleRef.Name != cr.Name || crb.Subjects[0].Kind != "ServiceAccount" || crb.Subjects[0].Name != "rel-cnpg-mcp" {
			t.Errorf("binding %+v", crb)
		}
		for _, rule := range cr.Rules {
			if !slices.Equal(rule.APIGroups, []string{""}) || !slices.Equal(rule.Verbs, []string{"impersonate"}) {
				t.Errorf("rule beyond impersonation: %+v", rule)
			}
			for _, res := range rule.Resources {
				if res != "users" && res != "groups" {
					t.Errorf("impersonates %q (only users and groups; no uids, userextras or service accounts)", res)
				}
			}
		}
		return cr
	}
	t.Run("any user and group", func(t *testing.T) {
		r := mustRender(t, values("minimal.yaml"), "--set", "identity.mode=impersonate")
		cr := only(t, r)
		want := impersonatorRules(t)
		if !slices.EqualFunc(cr.Rules, want, func(a, b rbacv1.PolicyRule) bool {
			return slices.Equal(a.APIGroups, b.APIGroups) && slices.Equal(a.Resources, b.Resources) && slices.Equal(a.Verbs, b.Verbs) && len(a.ResourceNames) == 0
		}) {
			t.Errorf("chart rules differ from server/tools/rbac/impersonator.yaml:\nchart: %+v\ntools: %+v", cr.Rules, want)
		}
		k, _ := oidcConfig(t, r)["kubernetes"].(map[string]any)
		if k["identity"] != "impersonate" {
			t.Errorf("the server is not told to impersonate: %v", k)
		}
	})
	t.Run("restricted, namespaced", func(t *testing.T) {
		r := mustRender(t, values("impersonate.yaml"))
		cr := only(t, r)
		var groups, users *rbacv1.PolicyRule
		for i, rule := range cr.Rules {
			switch {
			case slices.Equal(rule.Resources, []string{"groups"}):
				groups = &cr.Rules[i]
			case slices.Equal(rule.Resources, []string{"users"}):
				users = &cr.Rules[i]
			}
		}
		if groups == nil || !slices.Equal(groups.ResourceNames, []string{"oidc:team-a-dba", "oidc:team-b-viewers"}) || users == nil || len(users.ResourceNames) != 0 {
			t.Fatalf("restricted rules: %+v", cr.Rules)
		}
		k, _ := oidcConfig(t, r)["kubernetes"].(map[string]any)
		im, _ := k["impersonation"].(map[string]any)
		if k["identity"] != "impersonate" || len(k["namespaces"].([]any)) != 2 || im["groups_claim"] != "https://mcp.example.com/groups" ||
			im["user_prefix"] != "oidc:" || im["max_identity_age"] != "10m" || len(im["groups"].([]any)) != 2 {
			t.Errorf("server config: %v", k)
		}
	})
	t.Run("service-account mode renders no impersonation", func(t *testing.T) {
		var cr rbacv1.ClusterRole
		mustRender(t, values("minimal.yaml")).one(t, "ClusterRole").decode(t, &cr)
		checkRules(t, cr.Rules, false)
	})
}
