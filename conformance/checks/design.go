package checks

import (
	"fmt"
	"net/url"
	"sync"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
)

// designOnce is the target's design, detected once per run.
type designOnce struct {
	mu sync.Mutex
	d  *designInfo
}

// designInfo is what the suite learnt about how the target authorizes.
type designInfo struct {
	report.Design
	// consentPage: the AS shows a consent page of its own.
	consentPage bool
}

// Design detects how the target authorizes, once per run: an authorization request for the
// run's shared client, sent over plain HTTP, shows whether the AS has its own consent page or
// sends the browser straight to the upstream (under the client's own registration: pass-through;
// under another client ID: a static client without consent); where an approved consent leads (or
// where a browser authorization goes) shows whether an upstream leg follows (a proxy) or not (the
// AS logs the user in itself).
func (t *T) Design() report.Design { return t.design().Design }

func (t *T) design() *designInfo {
	s := &t.env.design
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.d != nil {
		return s.d
	}
	t.detecting = true
	defer func() { t.detecting = false }()
	c := t.RegisterClient(nil)
	f := &Flow{Client: c}
	p := t.ProbeAuthorize("design detection: where does an authorization request lead?", t.AuthParams(f), nil, c.RedirectURI)
	d := &designInfo{}
	switch {
	case p.Form != nil:
		d.consentPage = true
	case p.Kind == Proceed && p.Left != "":
		u, err := url.Parse(p.Left)
		if err != nil {
			break
		}
		q := u.Query()
		d.Upstream = u.Scheme + "://" + u.Host
		if q.Get("client_id") == c.ID && q.Get("redirect_uri") == c.RedirectURI {
			d.Kind = report.DesignPassThrough
			d.Evidence = fmt.Sprintf("an authorization request goes straight to %s with the client's own client_id and redirect URI", d.Upstream)
		} else {
			d.Kind = report.DesignStaticNoConsent
			d.Evidence = fmt.Sprintf("an authorization request goes straight to %s with client_id %q (not the client's own %q) and no consent page of the MCP server", d.Upstream, q.Get("client_id"), c.ID)
		}
		s.d = d
		return d
	case p.Kind == Rejected || p.Kind == ServerError:
		t.Inconclusive("design detection: send a plain authorization request for a registered client", p.Describe(),
			"the authorization server refused a valid authorization request, so the suite cannot tell its design", "AZ-01")
	}
	// The consent page (or the AS's own login page) is on the AS's origin: does the flow go on to
	// an upstream? Approving the consent form over HTTP shows where it sends the browser; without
	// a form the shared grant's navigations tell (or, when none was made, a plain browser flow
	// that need not succeed: a defect that breaks the callback still shows the upstream leg).
	up, how := "", ""
	if p.Form != nil {
		resp := t.SubmitConsent("design detection: where does an approved consent lead?", p.Form, true, p.jar, nil, nil)
		if resp.IsRedirect() {
			if loc, err := url.Parse(p.FinalURL); err == nil {
				if next, err := loc.Parse(resp.Location()); err == nil && !t.onAS(next.String()) && !matchesAny(next, []string{c.RedirectURI}) {
					up, how = next.Scheme+"://"+next.Host, "approving its consent page sends the browser to "
				}
			}
		}
	}
	if up == "" {
		var r *FlowResult
		if g := t.env.sharedGrantIfAny(); g != nil {
			r = g.Flow
		} else {
			r = t.Browse(Flow{Name: "design detection"})
		}
		if !d.consentPage && r.Outcome.SawConsent {
			d.consentPage = true
		}
		if u := t.upstreamAuthorizeURL(r); u != "" {
			pu, _ := url.Parse(u)
			up, how = pu.Scheme+"://"+pu.Host, "the browser authorization goes on to "
		}
	}
	if up != "" {
		d.Kind, d.Upstream = report.DesignProxy, up
		d.Evidence = how + up
		if d.consentPage {
			d.Evidence = "the authorization server shows its own consent page; " + d.Evidence
		}
	} else {
		d.Kind = report.DesignOwnAS
		d.Evidence = "the browser authorization never left the authorization server's origin: it logs the user in itself"
		if d.consentPage {
			d.Evidence += " and shows a consent page"
		}
	}
	s.d = d
	return d
}

// designKnown is the design detected so far (nil before detection).
func (e *Env) designKnown() *report.Design {
	e.design.mu.Lock()
	defer e.design.mu.Unlock()
	if e.design.d == nil {
		return nil
	}
	d := e.design.d.Design
	return &d
}

// requireConsentPage stops a check about the MCP server's own consent page when the design has
// none: not applicable to a pass-through design or an AS without consent, and inconclusive
// (graded by PXY-01) for a proxy that sends clients to the upstream under a static client ID
// without consent.
func (t *T) requireConsentPage() {
	d := t.design()
	switch {
	case d.Kind == report.DesignPassThrough:
		t.Skipf("not applicable to a pass-through design: %s, so the upstream's consent covers the client and the server has no consent page or callback of its own", d.Evidence)
	case d.Kind == report.DesignStaticNoConsent:
		t.Inconclusive("open the MCP server's consent page", d.Evidence,
			"the server shows no consent page to check; sending every client to the upstream under one client ID without consent is the confused-deputy hole PXY-01 grades", "PXY-01")
	case !d.consentPage:
		t.Skipf("not applicable: %s, without a consent page (the proxy-consent rows are for servers that show one)", d.Evidence)
	}
}

// requireUpstreamLeg stops a check about the proxy's own leg to the upstream when the design has
// none: a pass-through design (the upstream leg is the client's own authorization) or an AS that
// logs users in itself.
func (t *T) requireUpstreamLeg() {
	d := t.design()
	switch d.Kind {
	case report.DesignPassThrough:
		t.Skipf("not applicable to a pass-through design: %s; the upstream leg is the client's own authorization, not a leg of the proxy", d.Evidence)
	case report.DesignOwnAS:
		t.Skipf("not applicable: %s, so there is no upstream leg", d.Evidence)
	}
}

// isPassThrough reports the pass-through design.
func (t *T) isPassThrough() bool { return t.design().Kind == report.DesignPassThrough }

// sharedGrantIfAny is the run's shared grant when one was made.
func (e *Env) sharedGrantIfAny() *Grant {
	e.shared.mu.Lock()
	defer e.shared.mu.Unlock()
	return e.shared.g
}
