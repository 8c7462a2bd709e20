package checks

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/evidence"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
)

// Discovery is what a strict MCP client learns before it can authorize: the 401 challenge, the
// protected-resource metadata and the authorization server's metadata. It runs once per run; the
// PRM-* and ASM-* checks repeat the requests they grade with their own evidence.
type Discovery struct {
	Unauth    *oauthclient.Response
	Challenge *oauthclient.Challenge
	// PRMSource says how the PRM was found: "WWW-Authenticate", "well-known (path)" or "well-known (root)".
	PRMSource string
	PRM       *oauthclient.ProtectedResourceMetadata
	Issuer    string
	AS        *oauthclient.ASMetadata
	ASProbes  []oauthclient.Probe
	// Err is the first error that stopped discovery.
	Err error
	// DefaultScope is the scope a client would request (see Config.Scope).
	DefaultScope string
}

// Discovery runs discovery once and returns it.
func (e *Env) Discovery(ctx context.Context) *Discovery {
	e.discoveryOnce.Do(func() {
		start := time.Now()
		rec := &evidence.Record{}
		c := e.newClient(rec)
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 4*e.cfg.HTTPTimeout)
		defer cancel()
		e.discovery = discover(dctx, c, e.cfg)
		e.addTiming("discovery", time.Since(start))
	})
	return e.discovery
}

func discover(ctx context.Context, c *oauthclient.Client, cfg Config) *Discovery {
	d := &Discovery{}
	resp, err := c.CallMCP(ctx, cfg.Target, oauthclient.MCPCall{})
	if err != nil {
		d.Err = fmt.Errorf("unauthenticated MCP request: %w", err)
		return d
	}
	d.Unauth = resp
	var prmURLs []string
	if ch, ok, _ := oauthclient.BearerChallenge(resp.Header.Values("WWW-Authenticate")); ok {
		d.Challenge = &ch
		if u, ok := ch.Param("resource_metadata"); ok && u != "" {
			prmURLs = append(prmURLs, u)
		}
	}
	wk, err := oauthclient.PRMURLs(cfg.Target)
	if err != nil {
		d.Err = err
		return d
	}
	sources := map[string]string{}
	if len(prmURLs) > 0 {
		sources[prmURLs[0]] = "WWW-Authenticate"
	}
	for i, u := range wk {
		if _, dup := sources[u]; !dup {
			sources[u] = map[bool]string{true: "well-known (path)", false: "well-known (root)"}[i == 0 && len(wk) == 2]
			prmURLs = append(prmURLs, u)
		}
	}
	var errs []string
	for _, u := range prmURLs {
		prm, _, err := c.FetchPRM(ctx, u)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		d.PRM, d.PRMSource = prm, sources[u]
		break
	}
	if d.PRM == nil {
		d.Err = fmt.Errorf("no protected-resource metadata: %s", strings.Join(errs, "; "))
		return d
	}
	if len(d.PRM.AuthorizationServers) == 0 {
		d.Err = fmt.Errorf("protected-resource metadata at %s lists no authorization_servers", d.PRM.URL)
		return d
	}
	d.Issuer = d.PRM.AuthorizationServers[0]
	d.AS, d.ASProbes, err = c.DiscoverAS(ctx, d.Issuer)
	if err != nil {
		d.Err = err
		return d
	}
	d.DefaultScope = defaultScope(cfg, d)
	return d
}

func defaultScope(cfg Config, d *Discovery) string {
	if cfg.Scope != "" {
		return cfg.Scope
	}
	if d.Challenge != nil {
		if s, ok := d.Challenge.Param("scope"); ok && s != "" {
			return s
		}
	}
	var out []string
	for _, s := range d.PRM.ScopesSupported {
		if s != "offline_access" {
			out = append(out, s)
		}
	}
	return strings.Join(out, " ")
}

// Discovery returns the run's discovery, stopping the check when it failed.
func (t *T) Discovery() *Discovery {
	d := t.env.Discovery(t.ctx)
	if d.Err != nil {
		owner, step := "ASM-01", "discover the authorization server's metadata"
		switch {
		case d.Unauth == nil:
			owner, step = "", "reach the MCP endpoint"
		case d.PRM == nil:
			owner, step = "PRM-01", "find the protected-resource metadata"
		case len(d.PRM.AuthorizationServers) == 0:
			owner, step = "PRM-02", "read the authorization servers from the protected-resource metadata"
		}
		t.Inconclusive(step, d.Err.Error(), "", owner)
	}
	return d
}

// AS returns the authorization server metadata, stopping the check when discovery failed.
func (t *T) AS() *oauthclient.ASMetadata { return t.Discovery().AS }

// Resource is the canonical resource URI the suite sends: the PRM's resource when there is one,
// else the configured target.
func (t *T) Resource() string {
	d := t.env.Discovery(t.ctx)
	if d.PRM != nil && d.PRM.Resource != "" {
		return d.PRM.Resource
	}
	return t.env.cfg.Target
}
