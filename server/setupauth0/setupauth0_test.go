package setupauth0_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
	"github.com/cnpg-mcp/cnpg-mcp/server/setupauth0"
)

const (
	setupClientID = "cnpg-mcp-setup"
	setupSecret   = "cnpg-mcp-setup-dev-secret"
	publicURL     = "http://127.0.0.1:30080"
)

func startMock(t *testing.T) *mockauth0.Server {
	t.Helper()
	srv, err := mockauth0.Start(context.Background(), mockauth0.DefaultConfig(), mockauth0.WithRSABits(2048))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func options(t *testing.T, srv *mockauth0.Server, out io.Writer) setupauth0.Options {
	dir := t.TempDir()
	return setupauth0.Options{
		Domain:             strings.TrimSuffix(srv.Issuer(), "/"),
		ManagementClientID: setupClientID, ManagementClientSecret: setupSecret,
		PublicURL:  publicURL,
		AppName:    "cnpg-mcp-server (test)",
		APIName:    "cnpg-mcp (test)",
		Connection: "Username-Password-Authentication",
		ValuesFile: filepath.Join(dir, "values.yaml"), SecretFile: filepath.Join(dir, "secret.yaml"),
		SecretName: "cnpg-mcp-oidc-client", Namespace: "mcp",
		Out: out,
	}
}

// writes lists the Management API requests that change something.
func writes(srv *mockauth0.Server) []string {
	var out []string
	for _, r := range srv.Requests() {
		if strings.HasPrefix(r.Path, "/api/v2/") && r.Method != http.MethodGet {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

// mgmt is a tiny Management API client for checking the mock's state from the test.
type mgmt struct {
	t     *testing.T
	base  string
	token string
}

func newMgmt(t *testing.T, srv *mockauth0.Server) *mgmt {
	t.Helper()
	resp, err := http.PostForm(srv.Issuer()+"oauth/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {setupClientID}, "client_secret": {setupSecret},
		"audience": {srv.ManagementAudience()},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("management token: %d %v", resp.StatusCode, err)
	}
	return &mgmt{t: t, base: srv.Issuer() + "api/v2/", token: tok.AccessToken}
}

func (m *mgmt) call(method, path string, in, out any) {
	m.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, m.base+path, body)
	req.Header.Set("Authorization", "Bearer "+m.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		m.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode > 299 {
		m.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			m.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

type app struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret"`
	Name                    string   `json:"name"`
	AppType                 string   `json:"app_type"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Callbacks               []string `json:"callbacks"`
	GrantTypes              []string `json:"grant_types"`
}

func (m *mgmt) appNamed(name string) app {
	m.t.Helper()
	var apps []app
	m.call(http.MethodGet, "clients?per_page=100", nil, &apps)
	for _, a := range apps {
		if a.Name == name {
			return a
		}
	}
	m.t.Fatalf("no application named %q", name)
	return app{}
}

func TestSetupCreatesEverythingThenChangesNothing(t *testing.T) {
	srv := startMock(t)
	var out bytes.Buffer
	o := options(t, srv, &out)

	res, err := setupauth0.Reconcile(context.Background(), o)
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	want := setupauth0.Result{API: "created", Application: "created", ClientGrant: "created", Connection: "updated", ClientID: res.ClientID}
	if res != want {
		t.Fatalf("first run: %+v, want %+v", res, want)
	}

	// The objects are as the server needs them.
	m := newMgmt(t, srv)
	a := m.appNamed(o.AppName)
	if a.AppType != "regular_web" || a.TokenEndpointAuthMethod != "client_secret_post" ||
		!slices.Equal(a.Callbacks, []string{publicURL + "/auth/callback"}) ||
		!slices.Equal(a.GrantTypes, []string{"authorization_code", "refresh_token"}) {
		t.Errorf("application: %+v", a)
	}
	var apis []struct {
		Identifier         string `json:"identifier"`
		SigningAlg         string `json:"signing_alg"`
		AllowOfflineAccess bool   `json:"allow_offline_access"`
		Scopes             []struct {
			Value string `json:"value"`
		} `json:"scopes"`
	}
	m.call(http.MethodGet, "resource-servers", nil, &apis)
	var apiOK bool
	for _, api := range apis {
		if api.Identifier == publicURL+"/mcp" {
			apiOK = api.SigningAlg == "RS256" && api.AllowOfflineAccess && len(api.Scopes) == 2 &&
				api.Scopes[0].Value == "mcp:read" && api.Scopes[1].Value == "mcp:write"
		}
	}
	if !apiOK {
		t.Errorf("API %s/mcp missing or wrong: %+v", publicURL, apis)
	}
	var grants []struct {
		Scope []string `json:"scope"`
	}
	m.call(http.MethodGet, "client-grants?client_id="+a.ClientID+"&audience="+url.QueryEscape(publicURL+"/mcp"), nil, &grants)
	if len(grants) != 1 || !slices.Equal(grants[0].Scope, []string{"mcp:read", "mcp:write"}) {
		t.Errorf("client grant: %+v", grants)
	}

	// The files: values without the secret, the Secret manifest with it, private.
	checkFiles(t, o, srv.Issuer(), a)
	if strings.Contains(out.String(), a.ClientSecret) {
		t.Errorf("the client secret was printed")
	}

	// A second run sends no write request and reports nothing changed.
	srv.ResetRequests()
	out.Reset()
	res2, err := setupauth0.Reconcile(context.Background(), o)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	want2 := setupauth0.Result{API: "unchanged", Application: "unchanged", ClientGrant: "unchanged", Connection: "unchanged", ClientID: res.ClientID}
	if res2 != want2 {
		t.Errorf("second run: %+v, want %+v", res2, want2)
	}
	if w := writes(srv); len(w) != 0 {
		t.Errorf("second run changed the tenant: %v", w)
	}
	checkFiles(t, o, srv.Issuer(), a)
	if strings.Contains(out.String(), a.ClientSecret) {
		t.Errorf("the client secret was printed on the second run")
	}
}

func checkFiles(t *testing.T, o setupauth0.Options, issuer string, a app) {
	t.Helper()
	vb, err := os.ReadFile(o.ValuesFile)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(vb, []byte(a.ClientSecret)) {
		t.Errorf("the values file contains the client secret")
	}
	var values struct {
		PublicURL string `json:"publicURL"`
		OIDC      struct {
			Issuer, Audience, ClientID string
			ClientSecret               struct{ ExistingSecret, Key string }
		} `json:"oidc"`
		Config map[string]any `json:"config"`
	}
	if err := yaml.Unmarshal(vb, &values); err != nil {
		t.Fatal(err)
	}
	if values.PublicURL != publicURL || values.OIDC.Issuer != issuer || values.OIDC.Audience != publicURL+"/mcp" ||
		values.OIDC.ClientID != a.ClientID || values.OIDC.ClientSecret.ExistingSecret != "cnpg-mcp-oidc-client" ||
		values.OIDC.ClientSecret.Key != "client-secret" {
		t.Errorf("values file:\n%s", vb)
	}
	// The server must use the method the application was configured with (its default is basic).
	if values.Config["client_auth_method"] != a.TokenEndpointAuthMethod || a.TokenEndpointAuthMethod == "" {
		t.Errorf("values config.client_auth_method %v, application %q", values.Config["client_auth_method"], a.TokenEndpointAuthMethod)
	}
	st, err := os.Stat(o.SecretFile)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("secret manifest mode %v, want 0600", st.Mode().Perm())
	}
	sb, _ := os.ReadFile(o.SecretFile)
	var secret struct {
		Kind       string `json:"kind"`
		Metadata   struct{ Name, Namespace string }
		StringData map[string]string `json:"stringData"`
	}
	if err := yaml.Unmarshal(sb, &secret); err != nil {
		t.Fatal(err)
	}
	if secret.Kind != "Secret" || secret.Metadata.Name != "cnpg-mcp-oidc-client" || secret.Metadata.Namespace != "mcp" ||
		secret.StringData["client-secret"] != a.ClientSecret || a.ClientSecret == "" {
		t.Errorf("secret manifest: %+v", secret.Metadata)
	}
}

func TestSetupRepairsDrift(t *testing.T) {
	srv := startMock(t)
	o := options(t, srv, io.Discard)
	if _, err := setupauth0.Reconcile(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	m := newMgmt(t, srv)
	a := m.appNamed(o.AppName)
	// Someone switched the auth method, dropped refresh tokens and added a callback of their own.
	m.call(http.MethodPatch, "clients/"+a.ClientID, map[string]any{
		"token_endpoint_auth_method": "client_secret_basic", "grant_types": []string{"authorization_code"},
		"callbacks": []string{"https://staging.example.com/auth/callback"},
	}, nil)

	res, err := setupauth0.Reconcile(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Application != "updated" || res.API != "unchanged" {
		t.Errorf("result %+v", res)
	}
	a = m.appNamed(o.AppName)
	if a.TokenEndpointAuthMethod != "client_secret_post" || !slices.Equal(a.GrantTypes, []string{"authorization_code", "refresh_token"}) {
		t.Errorf("drift not repaired: %+v", a)
	}
	if !slices.Equal(a.Callbacks, []string{"https://staging.example.com/auth/callback", publicURL + "/auth/callback"}) {
		t.Errorf("callbacks: %v (others' callbacks must be kept, ours added)", a.Callbacks)
	}
}

func TestSetupErrorsSayWhatToDo(t *testing.T) {
	srv := startMock(t)
	cases := []struct {
		name   string
		modify func(*setupauth0.Options)
		want   string
	}{
		{"wrong management secret", func(o *setupauth0.Options) { o.ManagementClientSecret = "wrong" }, "--mgmt-client-id"},
		{"no domain", func(o *setupauth0.Options) { o.Domain = "" }, "--domain is required"},
		{"plain http tenant", func(o *setupauth0.Options) { o.Domain = "http://tenant.example.com" }, "https is required"},
		{"plain http public URL", func(o *setupauth0.Options) { o.PublicURL = "http://mcp.example.com" }, "https is required"},
		{"public URL with slash", func(o *setupauth0.Options) { o.PublicURL = "https://mcp.example.com/" }, `must not end with "/"`},
		{"no management credentials", func(o *setupauth0.Options) { o.ManagementClientID = "" }, "credentials are required"},
		{"unknown connection", func(o *setupauth0.Options) { o.Connection = "nope" }, `no connection named "nope"`},
		{"API name taken by another identifier", func(o *setupauth0.Options) { o.APIName = "cnpg-mcp-taken" }, "identifiers cannot change"},
	}
	// An API with the name "cnpg-mcp-taken" and another identifier.
	m := newMgmt(t, srv)
	m.call(http.MethodPost, "resource-servers", map[string]any{"name": "cnpg-mcp-taken", "identifier": "https://other.example/api"}, nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := options(t, srv, io.Discard)
			c.modify(&o)
			err := setupauth0.Run(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to say %q", err, c.want)
			}
			if strings.Contains(err.Error(), setupSecret) {
				t.Errorf("error contains the management secret")
			}
			if _, statErr := os.Stat(o.SecretFile); !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("a failed run wrote the secret file")
			}
		})
	}
}

func TestParseArgs(t *testing.T) {
	env := map[string]string{"AUTH0_DOMAIN": "tenant.eu.auth0.com", "AUTH0_MGMT_CLIENT_ID": "m2m", "AUTH0_MGMT_CLIENT_SECRET": "s3cret"}
	getenv := func(k string) string { return env[k] }
	o, err := setupauth0.ParseArgs([]string{"--public-url", "https://mcp.example.com", "--scopes", "mcp:read mcp:write mcp:admin"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Domain != "tenant.eu.auth0.com" || o.ManagementClientID != "m2m" || o.ManagementClientSecret != "s3cret" ||
		len(o.Scopes) != 3 || o.AppName != "cnpg-mcp-server" || o.ValuesFile != "cnpg-mcp-values.yaml" {
		t.Errorf("options %+v", o)
	}

	secretFile := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(secretFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err = setupauth0.ParseArgs([]string{"--public-url", "https://mcp.example.com", "--mgmt-client-secret-file", secretFile}, getenv, io.Discard)
	if err != nil || o.ManagementClientSecret != "from-file" {
		t.Errorf("secret file: %q %v", o.ManagementClientSecret, err)
	}

	if _, err := setupauth0.ParseArgs([]string{"--mgmt-client-secret", "x"}, getenv, io.Discard); err == nil {
		t.Errorf("a secret as a flag value must be refused")
	}
	if _, err := setupauth0.ParseArgs(nil, getenv, io.Discard); err == nil || !strings.Contains(err.Error(), "--public-url") {
		t.Errorf("missing --public-url: %v", err)
	}
	if _, err := setupauth0.ParseArgs([]string{"-h"}, getenv, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}
