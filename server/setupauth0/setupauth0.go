// Package setupauth0 is `cnpg-mcp-server setup-auth0`: it prepares an Auth0 tenant for the reference server
// through the Management API and writes what the Helm chart needs.
//
// Idempotently (objects are found by identifier or name and changed only when they differ):
//   - the API (resource server): identifier = the audience, RS256, scopes mcp:read/mcp:write, offline access;
//   - the server's application: regular web app, client_secret_post, callback <public-url>/auth/callback,
//     grants authorization_code + refresh_token, rotating refresh tokens;
//   - its client grant for the API;
//   - the application enabled on the database connection.
//
// Then it writes a Helm values file and a Secret manifest holding the client secret (mode 0600). The secret
// is never printed. A second run with the same options sends no write request.
package setupauth0

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/cnpg-mcp/cnpg-mcp/server/config"
)

// appAuthMethod is how the server's application authenticates at the token endpoint; the values file
// carries it into the server's client_auth_method.
const appAuthMethod = "client_secret_post"

// Options of one setup run.
type Options struct {
	// Domain is the tenant's domain ("tenant.eu.auth0.com") or base URL ("http://127.0.0.1:8081" for the mock).
	Domain string
	// ManagementAudience defaults to <base>/api/v2/.
	ManagementAudience string
	// ManagementClientID/Secret: a machine-to-machine application authorized for the Management API.
	ManagementClientID, ManagementClientSecret string

	// PublicURL is where MCP clients reach the server (the chart's publicURL).
	PublicURL string
	// Audience is the API identifier; defaults to PublicURL + "/mcp".
	Audience string
	APIName  string   // default "cnpg-mcp"
	AppName  string   // default "cnpg-mcp-server"
	Scopes   []string // default mcp:read mcp:write
	// Connection is the database connection the application is enabled on ("" = leave connections alone).
	Connection string

	// ValuesFile and SecretFile are written; SecretName/Namespace go into the Secret manifest.
	ValuesFile, SecretFile string
	SecretName, Namespace  string

	HTTPClient *http.Client // default: 30 s timeout
	Out        io.Writer    // progress lines; default os.Stdout
}

func (o *Options) defaults() {
	if o.APIName == "" {
		o.APIName = "cnpg-mcp"
	}
	if o.AppName == "" {
		o.AppName = "cnpg-mcp-server"
	}
	if len(o.Scopes) == 0 {
		o.Scopes = []string{"mcp:read", "mcp:write"}
	}
	if o.Audience == "" && o.PublicURL != "" {
		o.Audience = strings.TrimRight(o.PublicURL, "/") + "/mcp"
	}
	if o.ValuesFile == "" {
		o.ValuesFile = "cnpg-mcp-values.yaml"
	}
	if o.SecretFile == "" {
		o.SecretFile = "cnpg-mcp-oidc-client-secret.yaml"
	}
	if o.SecretName == "" {
		o.SecretName = "cnpg-mcp-oidc-client"
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
}

// baseURL turns Domain into a scheme://host[:port] URL without a trailing slash.
func (o Options) baseURL() (string, error) {
	d := strings.TrimRight(strings.TrimSpace(o.Domain), "/")
	if d == "" {
		return "", errors.New("--domain is required (your tenant, e.g. YOUR_TENANT.eu.auth0.com)")
	}
	if !strings.Contains(d, "://") {
		d = "https://" + d
	}
	u, err := url.Parse(d)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", fmt.Errorf("--domain %q: want a host name like YOUR_TENANT.eu.auth0.com", o.Domain)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return "", fmt.Errorf("--domain %q: https is required (http only for a loopback test tenant)", o.Domain)
	}
	return u.Scheme + "://" + u.Host, nil
}

func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Validate reports the first option a run cannot work with, saying what to do.
func (o Options) Validate() error {
	if _, err := o.baseURL(); err != nil {
		return err
	}
	if o.ManagementClientID == "" || o.ManagementClientSecret == "" {
		return errors.New("the management application's credentials are required: --mgmt-client-id and AUTH0_MGMT_CLIENT_SECRET (or --mgmt-client-secret-file)")
	}
	u, err := url.Parse(o.PublicURL)
	if o.PublicURL == "" || err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--public-url %q: want the absolute URL MCP clients reach the server at, e.g. https://mcp.example.com", o.PublicURL)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return fmt.Errorf("--public-url %q: https is required (http only on loopback)", o.PublicURL)
	}
	if strings.HasSuffix(o.PublicURL, "/") {
		return fmt.Errorf("--public-url %q must not end with \"/\"", o.PublicURL)
	}
	for _, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\"") {
			return fmt.Errorf("scope %q is not a valid scope token", s)
		}
	}
	return nil
}

// ParseArgs reads the options of `cnpg-mcp-server setup-auth0` from args and the environment
// (AUTH0_DOMAIN, AUTH0_MGMT_CLIENT_ID, AUTH0_MGMT_CLIENT_SECRET). Secrets are not taken as flag values,
// which would leave them in shell history and process listings. Returns flag.ErrHelp for -h.
func ParseArgs(args []string, getenv func(string) string, helpOut io.Writer) (Options, error) {
	var o Options
	var scopes, secretFile string
	fs := flag.NewFlagSet("setup-auth0", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; --help goes to helpOut
	fs.Usage = func() {}
	usage := func() {
		fmt.Fprint(helpOut, `Usage: cnpg-mcp-server setup-auth0 --domain TENANT --public-url URL [flags]

Creates or updates, in an Auth0 tenant, the API, the server's application, its client grant and its database
connection, then writes a Helm values file and a Secret manifest with the client secret (never printed):

  kubectl apply -f cnpg-mcp-oidc-client-secret.yaml
  helm upgrade --install cnpg-mcp chart/cnpg-mcp -f cnpg-mcp-values.yaml

Run it again at any time: it changes only what differs. The management application is a machine-to-machine
application authorized for the Management API (scopes read/create/update:clients, :resource_servers,
:client_grants, read/update:connections, read:client_keys). Its secret comes from AUTH0_MGMT_CLIENT_SECRET
or --mgmt-client-secret-file.

Flags:
`)
		config.PrintFlags(helpOut, fs)
	}
	fs.StringVar(&o.Domain, "domain", getenv("AUTH0_DOMAIN"), "Auth0 tenant domain, e.g. YOUR_TENANT.eu.auth0.com (env AUTH0_DOMAIN)")
	fs.StringVar(&o.ManagementClientID, "mgmt-client-id", getenv("AUTH0_MGMT_CLIENT_ID"), "client ID of the management application (env AUTH0_MGMT_CLIENT_ID)")
	fs.StringVar(&secretFile, "mgmt-client-secret-file", "", "file holding the management application's secret (default: env AUTH0_MGMT_CLIENT_SECRET)")
	fs.StringVar(&o.ManagementAudience, "mgmt-audience", "", "Management API audience (default https://<domain>/api/v2/)")
	fs.StringVar(&o.PublicURL, "public-url", "", "URL MCP clients reach the server at, e.g. https://mcp.example.com (required)")
	fs.StringVar(&o.Audience, "audience", "", "API identifier (default <public-url>/mcp)")
	fs.StringVar(&o.APIName, "api-name", "cnpg-mcp", "name of the API in Auth0")
	fs.StringVar(&o.AppName, "app-name", "cnpg-mcp-server", "name of the server's application in Auth0 (how it is found)")
	fs.StringVar(&scopes, "scopes", "mcp:read mcp:write", "space-separated API scopes")
	fs.StringVar(&o.Connection, "connection", "Username-Password-Authentication", "database connection to enable the application on (\"\" to skip)")
	fs.StringVar(&o.ValuesFile, "values-file", "cnpg-mcp-values.yaml", "Helm values file to write")
	fs.StringVar(&o.SecretFile, "secret-file", "cnpg-mcp-oidc-client-secret.yaml", "Secret manifest to write (mode 0600)")
	fs.StringVar(&o.SecretName, "secret-name", "cnpg-mcp-oidc-client", "name of the Secret holding the client secret")
	fs.StringVar(&o.Namespace, "namespace", "", "namespace written into the Secret manifest (default: none, kubectl's)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return Options{}, err
		}
		return Options{}, config.FlagError(fs, err, "cnpg-mcp-server setup-auth0 --help")
	}
	if fs.NArg() > 0 {
		return Options{}, fmt.Errorf("unexpected arguments: %v (cnpg-mcp-server setup-auth0 --help lists the flags)", fs.Args())
	}
	o.Scopes = strings.Fields(scopes)
	o.ManagementClientSecret = getenv("AUTH0_MGMT_CLIENT_SECRET")
	if secretFile != "" {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return Options{}, fmt.Errorf("--mgmt-client-secret-file: %w", err)
		}
		o.ManagementClientSecret = strings.TrimSpace(string(b))
	}
	return o, o.Validate()
}

// Result says what a run did to each object: "created", "updated" or "unchanged".
type Result struct {
	API, Application, ClientGrant, Connection string
	ClientID                                  string
}

// Run prepares the tenant and writes the files. See the package comment.
func Run(ctx context.Context, o Options) error {
	_, err := Reconcile(ctx, o)
	return err
}

// Reconcile is Run, also saying what it did to each object.
func Reconcile(ctx context.Context, o Options) (Result, error) {
	o.defaults()
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	base, _ := o.baseURL()
	mgmtAud := o.ManagementAudience
	if mgmtAud == "" {
		mgmtAud = base + "/api/v2/"
	}
	m, err := login(ctx, o.HTTPClient, base, mgmtAud, o.ManagementClientID, o.ManagementClientSecret)
	if err != nil {
		return Result{}, err
	}
	var res Result
	if res.API, err = ensureAPI(ctx, m, o); err != nil {
		return res, err
	}
	fmt.Fprintf(o.Out, "api %s (%s): %s\n", o.Audience, o.APIName, res.API)
	app, state, err := ensureApp(ctx, m, o)
	if err != nil {
		return res, err
	}
	res.Application, res.ClientID = state, app.ClientID
	fmt.Fprintf(o.Out, "application %s (client_id %s): %s\n", o.AppName, app.ClientID, state)
	if res.ClientGrant, err = ensureGrant(ctx, m, o, app.ClientID); err != nil {
		return res, err
	}
	fmt.Fprintf(o.Out, "client grant %s -> %s: %s\n", app.ClientID, o.Audience, res.ClientGrant)
	if o.Connection != "" {
		if res.Connection, err = ensureConnection(ctx, m, o.Connection, app.ClientID); err != nil {
			return res, err
		}
		fmt.Fprintf(o.Out, "connection %s: %s\n", o.Connection, res.Connection)
	}
	if app.ClientSecret == "" {
		return res, errors.New("the application's client secret was not returned: grant the management application read:client_keys")
	}
	if err := writeFiles(o, base+"/", app); err != nil {
		return res, err
	}
	fmt.Fprintf(o.Out, "wrote %s and %s (the client secret is only in the latter)\nnext: kubectl apply -f %s && helm upgrade --install cnpg-mcp chart/cnpg-mcp -f %s\n",
		o.ValuesFile, o.SecretFile, o.SecretFile, o.ValuesFile)
	return res, nil
}

func desiredScopes(o Options) []scope {
	out := make([]scope, 0, len(o.Scopes))
	for _, s := range o.Scopes {
		d := "MCP access: " + s
		switch s {
		case "mcp:read":
			d = "Read PostgreSQL clusters through MCP"
		case "mcp:write":
			d = "Change PostgreSQL clusters through MCP"
		}
		out = append(out, scope{Value: s, Description: d})
	}
	return out
}

func ensureAPI(ctx context.Context, m *mgmtClient, o Options) (string, error) {
	apis, err := list[resourceServer](ctx, m, "resource-servers", "resource_servers", nil)
	if err != nil {
		return "", err
	}
	want := resourceServer{Name: o.APIName, Identifier: o.Audience, SigningAlg: "RS256", Scopes: desiredScopes(o), AllowOfflineAccess: true}
	for _, a := range apis {
		if a.Identifier != o.Audience && a.Name == o.APIName {
			return "", fmt.Errorf("an API named %q already exists with identifier %q (identifiers cannot change): pass --audience %s or another --api-name", a.Name, a.Identifier, a.Identifier)
		}
	}
	for _, a := range apis {
		if a.Identifier != o.Audience {
			continue
		}
		// Keep scopes someone added; make sure ours are there with our descriptions.
		scopes := append([]scope{}, want.Scopes...)
		for _, s := range a.Scopes {
			if !slices.ContainsFunc(scopes, func(x scope) bool { return x.Value == s.Value }) {
				scopes = append(scopes, s)
			}
		}
		if a.Name == want.Name && a.SigningAlg == "RS256" && a.AllowOfflineAccess && sameScopes(a.Scopes, scopes) {
			return "unchanged", nil
		}
		upd := resourceServer{Name: want.Name, SigningAlg: "RS256", Scopes: scopes, AllowOfflineAccess: true}
		if err := m.do(ctx, http.MethodPatch, "resource-servers/"+url.PathEscape(a.ID), nil, upd, nil); err != nil {
			return "", err
		}
		return "updated", nil
	}
	if err := m.do(ctx, http.MethodPost, "resource-servers", nil, want, nil); err != nil {
		return "", err
	}
	return "created", nil
}

func sameScopes(a, b []scope) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range b {
		if !slices.Contains(a, s) {
			return false
		}
	}
	return true
}

func ensureApp(ctx context.Context, m *mgmtClient, o Options) (client, string, error) {
	callback := strings.TrimRight(o.PublicURL, "/") + "/auth/callback"
	clients, err := list[client](ctx, m, "clients", "clients", nil)
	if err != nil {
		return client{}, "", err
	}
	want := client{
		Name: o.AppName, AppType: "regular_web", TokenEndpointAuthMethod: appAuthMethod,
		Callbacks: []string{callback}, GrantTypes: []string{"authorization_code", "refresh_token"}, OIDCConformant: true,
		RefreshToken: &refreshPolicy{RotationType: "rotating", ExpirationType: "expiring"},
	}
	var found []client
	for _, c := range clients {
		if c.Name == o.AppName {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		var created client
		if err := m.do(ctx, http.MethodPost, "clients", nil, want, &created); err != nil {
			return client{}, "", err
		}
		if created.ClientID == "" {
			return client{}, "", errors.New("POST /api/v2/clients returned no client_id")
		}
		return created, "created", nil
	case 1:
	default:
		return client{}, "", fmt.Errorf("%d applications are named %q: rename or delete the extra ones, or pass another --app-name", len(found), o.AppName)
	}
	cur := found[0]
	// Keep callbacks someone added (other environments); ours must be there.
	callbacks := cur.Callbacks
	if !slices.Contains(callbacks, callback) {
		callbacks = append(append([]string{}, callbacks...), callback)
	}
	upd := want
	upd.Name = ""
	upd.Callbacks = callbacks
	rt := cur.RefreshToken
	if cur.AppType == upd.AppType && cur.TokenEndpointAuthMethod == upd.TokenEndpointAuthMethod &&
		slices.Equal(cur.Callbacks, callbacks) && sameSet(cur.GrantTypes, upd.GrantTypes) && cur.OIDCConformant &&
		rt != nil && rt.RotationType == "rotating" && rt.ExpirationType == "expiring" {
		if cur.ClientSecret == "" { // a list may omit secrets: read the one client
			if err := m.do(ctx, http.MethodGet, "clients/"+url.PathEscape(cur.ClientID), nil, nil, &cur); err != nil {
				return client{}, "", err
			}
		}
		return cur, "unchanged", nil
	}
	patch := map[string]any{
		"app_type": upd.AppType, "token_endpoint_auth_method": upd.TokenEndpointAuthMethod, "callbacks": upd.Callbacks,
		"grant_types": upd.GrantTypes, "oidc_conformant": true, "refresh_token": upd.RefreshToken,
	}
	var updated client
	if err := m.do(ctx, http.MethodPatch, "clients/"+url.PathEscape(cur.ClientID), nil, patch, &updated); err != nil {
		return client{}, "", err
	}
	if updated.ClientSecret == "" {
		if err := m.do(ctx, http.MethodGet, "clients/"+url.PathEscape(cur.ClientID), nil, nil, &updated); err != nil {
			return client{}, "", err
		}
	}
	return updated, "updated", nil
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range b {
		if !slices.Contains(a, s) {
			return false
		}
	}
	return true
}

func ensureGrant(ctx context.Context, m *mgmtClient, o Options, clientID string) (string, error) {
	grants, err := list[clientGrant](ctx, m, "client-grants", "client_grants", url.Values{"client_id": {clientID}, "audience": {o.Audience}})
	if err != nil {
		return "", err
	}
	for _, g := range grants {
		if g.ClientID != clientID || g.Audience != o.Audience {
			continue
		}
		if sameSet(g.Scope, o.Scopes) {
			return "unchanged", nil
		}
		if err := m.do(ctx, http.MethodPatch, "client-grants/"+url.PathEscape(g.ID), nil, clientGrant{Scope: o.Scopes}, nil); err != nil {
			return "", err
		}
		return "updated", nil
	}
	g := clientGrant{ClientID: clientID, Audience: o.Audience, Scope: o.Scopes}
	if err := m.do(ctx, http.MethodPost, "client-grants", nil, g, nil); err != nil {
		return "", err
	}
	return "created", nil
}

func ensureConnection(ctx context.Context, m *mgmtClient, name, clientID string) (string, error) {
	conns, err := list[connection](ctx, m, "connections", "connections", url.Values{"name": {name}})
	if err != nil {
		return "", err
	}
	for _, c := range conns {
		if c.Name != name {
			continue
		}
		if slices.Contains(c.EnabledClients, clientID) {
			return "unchanged", nil
		}
		enabled := append(append([]string{}, c.EnabledClients...), clientID)
		body := map[string]any{"enabled_clients": enabled}
		if err := m.do(ctx, http.MethodPatch, "connections/"+url.PathEscape(c.ID), nil, body, nil); err != nil {
			return "", err
		}
		return "updated", nil
	}
	return "", fmt.Errorf("no connection named %q in the tenant: pass --connection with an existing database connection, or --connection \"\" to skip", name)
}

// writeFiles writes the Helm values (no secret) and the Secret manifest (mode 0600).
func writeFiles(o Options, issuer string, app client) error {
	values := map[string]any{
		"publicURL": o.PublicURL,
		"oidc": map[string]any{
			"issuer":       issuer,
			"audience":     o.Audience,
			"clientID":     app.ClientID,
			"clientSecret": map[string]any{"existingSecret": o.SecretName, "key": "client-secret"},
		},
		// The server authenticates at the token endpoint the way the application is configured
		// (Auth0 refuses another method); its own default is client_secret_basic.
		"config": map[string]any{"client_auth_method": appAuthMethod},
	}
	vb, err := yaml.Marshal(values)
	if err != nil {
		return fmt.Errorf("encode values: %w", err)
	}
	head := fmt.Sprintf("# Written by `cnpg-mcp-server setup-auth0` for %s. No secret in this file.\n# helm upgrade --install cnpg-mcp chart/cnpg-mcp -f %s\n", issuer, filepath.Base(o.ValuesFile))
	if err := writeAtomic(o.ValuesFile, append([]byte(head), vb...), 0o644); err != nil {
		return err
	}
	meta := map[string]any{"name": o.SecretName, "labels": map[string]any{"app.kubernetes.io/part-of": "cnpg-mcp"}}
	if o.Namespace != "" {
		meta["namespace"] = o.Namespace
	}
	secret := map[string]any{
		"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": meta,
		"stringData": map[string]any{"client-secret": app.ClientSecret},
	}
	sb, err := yaml.Marshal(secret)
	if err != nil {
		return fmt.Errorf("encode secret manifest: %w", err)
	}
	return writeAtomic(o.SecretFile, append([]byte("# The upstream client secret of the cnpg-mcp server. Keep this file private.\n"), sb...), 0o600)
}

// writeAtomic replaces path with data through a temporary file in the same directory.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
