package oauthproxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cnpg-mcp/cnpg-mcp/server/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/store"
)

// serveConsent is our consent page: every authorization of every client is approved by the user here
// before the browser goes upstream (confused-deputy defence).
//
//	PXY-01  consent before upstream, for every client                TestPXY01_ConsentBeforeUpstream
//	PXY-02, CIMD-09, BCP-31, SEC-02  names the client (escaped), redirect URI and host, scopes,
//	        verified domain for metadata clients, localhost warning       TestPXY02_ConsentPageContent
//	        each scope in plain words (ScopeDescriptions)                 TestConsentScopeDescriptions
//	SC-06   the user may grant less: every requested scope but the base ones has a ticked checkbox;
//	        the grant (and the token response's scope) holds what stayed ticked, never more than was
//	        requested                                                     TestConsentGrantLess
//	PXY-03  CSRF: server-side single-use record per render + double-submit cookie named after the
//	        token; (a) no cookie → 403, (b) other txn → 400, (c) replay → 400, (d) cross-site → 403
//	                                                                    TestPXY03_ConsentCSRF
//	PXY-04, BCP-22  X-Frame-Options DENY + CSP frame-ancestors 'none' header   TestPXY04_19_PageHeaders
//	PXY-05  cookies __Host-, Secure, HttpOnly, SameSite=Lax over https     TestPXY05_CookieAttributes
//	PXY-07  browser-binding cookie set only on approval                     TestPXY07_BindingCookieOnlyAfterApproval
//	PXY-11  deny → access_denied + state + iss to the validated redirect   TestPXY11_Deny
//	PXY-18  two renders → both forms work (one record per render)          TestPXY18_DoubleRender
//	PXY-19  Cache-Control: no-store                                         TestPXY04_19_PageHeaders
//	AZ-11, BCP-20  303 after the POST (never 307)                           TestPXY01_ConsentBeforeUpstream
//	a store fault → 503 page with Retry-After; the form or page can be sent again   TestStoreFaultsAre503
//	a body over MaxConsentBytes → 413 naming the limit                      TestOversizedBodies413
//
// Cookie names use the __Host- prefix with Secure; only when the public URL is http on loopback
// (development) plain names without Secure are used, because browsers refuse both there.
func (p *Proxy) serveConsent(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		p.showConsent(w, r)
	case http.MethodPost:
		p.submitConsent(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		page(w, http.StatusMethodNotAllowed, pageData{Title: "Method not allowed", Message: "Use the consent form."})
	}
}

// expiredOr answers a failed lookup: an expired (or unknown) record is the expiry page, a store
// fault the 503 page (the request can be repeated).
func (p *Proxy) expiredOr(w http.ResponseWriter, op string, err error) {
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, errUnknownClient) {
		expired(w)
		return
	}
	p.log.Error(op, "err", err)
	unavailablePage(w)
}

func expired(w http.ResponseWriter) {
	page(w, http.StatusBadRequest, pageData{Title: "This authorization request has expired",
		Message: "It was already answered or is too old. Start the sign-in again from your application."})
}

func (p *Proxy) showConsent(w http.ResponseWriter, r *http.Request) {
	v, err := params(r.URL.Query(), "txn")
	if err != nil || v["txn"] == "" {
		expired(w)
		return
	}
	txn, err := p.o.Store.GetTransaction(r.Context(), v["txn"])
	if err != nil {
		p.expiredOr(w, "consent: load transaction", err)
		return
	}
	client, err := p.lookupClient(r.Context(), txn.ClientID)
	if err != nil {
		p.expiredOr(w, "consent: client lookup", err)
		return
	}
	csrf := randomToken()
	if err := p.o.Store.PutCSRF(r.Context(), csrf, store.CSRF{TxnID: txn.ID, ExpiresAt: txn.ExpiresAt}); err != nil {
		p.log.Error("consent: store csrf", "err", err)
		unavailablePage(w)
		return
	}
	p.setCookie(w, p.cookieName("csrf", csrf), csrf, txn.ExpiresAt)
	d := consentData{ClientID: client.ID, ClientName: client.Name, RedirectURI: txn.RedirectURI,
		Resource: txn.Resource, ResourceName: p.o.ResourceName, Txn: txn.ID, CSRF: csrf}
	for _, s := range txn.Scopes {
		cs := consentScope{Name: s, Description: p.o.ScopeDescriptions[s], Optional: !slices.Contains(p.o.BaseScopes, s)}
		if cs.Description == "" {
			cs.Description = "Access granted by the scope " + s
		}
		d.Choice = d.Choice || cs.Optional
		d.Scopes = append(d.Scopes, cs)
	}
	// A single scope is all or nothing: approving grants it, denying refuses.
	if len(d.Scopes) == 1 {
		d.Scopes[0].Optional, d.Choice = false, false
	}
	if u, err := url.Parse(txn.RedirectURI); err == nil {
		d.RedirectHost = u.Host
		if d.RedirectHost == "" {
			d.RedirectHost = u.Scheme + ":"
		}
		d.LocalRedirect = config.IsLoopbackHost(u.Hostname())
	}
	if client.Metadata {
		if u, err := url.Parse(client.ID); err == nil {
			d.VerifiedDomain = u.Host
		}
	}
	if d.ClientName == "" {
		d.ClientName = "An unnamed application"
	}
	if d.ResourceName == "" {
		d.ResourceName = "this MCP server"
	}
	d.Title = "Authorize " + d.ClientName
	secureHTMLHeaders(w)
	w.WriteHeader(http.StatusOK)
	_ = consentTmpl.Execute(w, d)
}

// MaxConsentBytes bounds the consent form's body.
const MaxConsentBytes = 16 << 10

func (p *Proxy) submitConsent(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxConsentBytes)
	if err := r.ParseForm(); err != nil {
		if limit, ok := tooLarge(err); ok {
			page(w, http.StatusRequestEntityTooLarge, pageData{Title: "Request too large",
				Message: fmt.Sprintf("The consent form sent more than %d bytes. Start the sign-in again from your application.", limit)})
			return
		}
		expired(w)
		return
	}
	v, err := params(r.PostForm, "txn", "csrf_token", "action", "scope_choice")
	if err != nil || v["txn"] == "" || v["csrf_token"] == "" {
		expired(w)
		return
	}
	if v["action"] == "approve" {
		if err := p.o.Upstream.Ready(r.Context()); err != nil {
			// Before anything is consumed: the user sends the form again once the provider is back.
			p.log.Warn("consent: the upstream identity provider is not reachable", "err", err.Error())
			unavailablePage(w)
			return
		}
	}
	csrf := v["csrf_token"]
	// Double-submit: the cookie set when this very form was rendered must come back with it.
	name := p.cookieName("csrf", csrf)
	ck, cerr := r.Cookie(name)
	rec, err := p.o.Store.TakeCSRF(r.Context(), csrf)
	if err != nil {
		p.expiredOr(w, "consent: take csrf", err)
		return
	}
	p.clearCookie(w, name)
	if rec.TxnID != v["txn"] {
		page(w, http.StatusBadRequest, pageData{Title: "Invalid consent form", Message: "The form does not belong to this authorization request. Start again from your application."})
		return
	}
	if cerr != nil || !equalSecret(ck.Value, csrf) {
		p.log.Warn("consent: CSRF cookie missing or wrong (cross-site post, or cookies blocked)", "txn", v["txn"][:min(8, len(v["txn"]))])
		page(w, http.StatusForbidden, pageData{Title: "Consent could not be verified",
			Message: "Your browser did not send the cookie set with the consent page. Cookies may be blocked, or the form was submitted from another site. Start again from your application in this browser."})
		return
	}
	txn, err := p.o.Store.TakeTransaction(r.Context(), v["txn"])
	if err != nil {
		p.expiredOr(w, "consent: take transaction", err)
		return
	}
	if !p.stillRegistered(w, r, txn) {
		return
	}
	switch v["action"] {
	case "deny":
		p.log.Info("consent denied", "client_id", txn.ClientID)
		http.Redirect(w, r, p.clientRedirect(txn, url.Values{"error": {"access_denied"}, "error_description": {"the user denied the request"}}), http.StatusSeeOther)
	case "approve":
		if v["scope_choice"] != "" {
			txn.Scopes = p.grantedScopes(txn.Scopes, r.PostForm["scope"])
		}
		if len(txn.Scopes) == 0 {
			p.log.Info("consent approved with every permission unticked: denied", "client_id", txn.ClientID)
			http.Redirect(w, r, p.clientRedirect(txn, url.Values{"error": {"access_denied"}, "error_description": {"the user allowed none of the requested permissions"}}), http.StatusSeeOther)
			return
		}
		state, nonce, verifier, binding := randomToken(), randomToken(), randomToken(), randomToken()
		sess := store.UpstreamSession{Txn: txn, BindingHash: hashBytes(binding), Verifier: verifier, Nonce: nonce, ExpiresAt: txn.ExpiresAt}
		if err := p.o.Store.PutUpstreamSession(r.Context(), state, sess); err != nil {
			p.log.Error("consent: store upstream session", "err", err)
			http.Redirect(w, r, p.clientRedirect(txn, url.Values{"error": {"temporarily_unavailable"}, "error_description": {"the server could not continue; try again"}}), http.StatusSeeOther)
			return
		}
		p.setCookie(w, p.cookieName("bind", state), binding, txn.ExpiresAt)
		p.log.Info("consent approved", "client_id", txn.ClientID, "scope", strings.Join(txn.Scopes, " "))
		http.Redirect(w, r, p.o.Upstream.AuthCodeURL(state, nonce, verifier, txn.Resource), http.StatusSeeOther)
	default:
		page(w, http.StatusBadRequest, pageData{Title: "Invalid consent form", Message: "Choose Approve or Deny."})
	}
}

// grantedScopes is what the user allowed: the requested scopes that are base scopes or stayed
// ticked (a single requested scope has no checkbox: approving grants it). A ticked value that was
// not requested is ignored: the form cannot widen the request. Nothing left means nothing allowed.
func (p *Proxy) grantedScopes(requested, ticked []string) []string {
	var out []string
	for _, s := range requested {
		if slices.Contains(p.o.BaseScopes, s) || slices.Contains(ticked, s) || len(requested) == 1 {
			out = append(out, s)
		}
	}
	return out
}

// stillRegistered re-validates a transaction's client and redirect URI before any browser redirect
// to the client (the registration or metadata document may have changed); it answers with a page
// when they no longer hold.
func (p *Proxy) stillRegistered(w http.ResponseWriter, r *http.Request, txn store.Transaction) bool {
	client, err := p.lookupClient(r.Context(), txn.ClientID)
	if err != nil {
		p.expiredOr(w, "client lookup", err)
		return false
	}
	if _, ok := matchRedirectURI(client.RedirectURIs, txn.RedirectURI); !ok {
		page(w, http.StatusBadRequest, pageData{Title: "Invalid redirect URI", Message: "The application's redirect URI is no longer registered."})
		return false
	}
	return true
}
