package oauthproxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"

	"github.com/cnpg-mcp/cnpg-mcp/server/store"
)

// serveAuthorize is the authorization endpoint (GET; OAuth 2.1 §4.1.1). It validates the request,
// stores a transaction and sends the browser to our consent page — never straight upstream (PXY-01).
//
//	AZ-01   GET works                                                     TestFullFlow…
//	AZ-02, BCP-06, CLI-06  missing/unknown client_id → 400 page, no redirect   TestAZ02_UnknownClient
//	AZ-03, BCP-03, PXY-09  exact redirect match (redirect.go)            TestAZ03_ExactRedirectMatching
//	CLI-07, BCP-04  loopback port variation                               TestCLI07_LoopbackPortVariation
//	AZ-04   redirect_uri omitted: only with exactly one registered        TestAZ04_OmittedRedirectURI
//	AZ-05   state echoed exactly, never invented; at most MaxStateBytes    TestAZ05_State, TestAZ05_StateBounded
//	AZ-06, BCP-01  response_type code only                                 TestAZ06_ResponseType
//	AZ-07, BCP-26/27  unknown params ignored, repeated rejected, empty = omitted   TestAZ07_Parameters
//	AZ-08, BCP-21  no CORS                                                 TestSEC03_CORS
//	AZ-10, BCP-07  errors auto-redirect only to loopback redirect URIs; otherwise the user sees the
//	        error and the destination first                               TestAZ10_NoOpenRedirect
//	AZ-12   error codes from the registered list, safe descriptions       TestAZ12_ErrorResponses
//	AZ-13   unknown scopes ignored, omitted → all supported scopes        TestAZ13_Scope
//	AZ-14, BCP-23, CLI-13  iss on every response                           TestAZ14_IssOnEveryResponse
//	PKCE-01/02, BCP-10  code_challenge required, S256 only, well-formed    TestPKCE01_02_Challenge
//	RES-01/03/04/05/08  resource validated (resource.go)                    TestRES_AuthorizeResource
//	PXY-01  consent page before upstream                                    TestPXY01_ConsentBeforeUpstream
//	a store fault → 503 page with Retry-After (reloading retries the request)   TestStoreFaultsAre503
func (p *Proxy) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		page(w, http.StatusMethodNotAllowed, pageData{Title: "Method not allowed", Message: "The authorization endpoint accepts GET requests."})
		return
	}
	q := r.URL.Query()
	id, err := params(q, "client_id", "redirect_uri")
	if err != nil {
		page(w, http.StatusBadRequest, pageData{Title: "Invalid authorization request", Message: "The request repeats client_id or redirect_uri. Start the sign-in again from your application."})
		return
	}
	if id["client_id"] == "" {
		page(w, http.StatusBadRequest, pageData{Title: "Invalid authorization request", Message: "The request has no client_id. Start the sign-in again from your application."})
		return
	}
	client, err := p.lookupClient(r.Context(), id["client_id"])
	if err != nil {
		if !errors.Is(err, errUnknownClient) {
			p.log.Error("authorize: client lookup", "err", err)
			unavailablePage(w)
			return
		}
		p.log.Info("authorize: unknown client", "client_id", id["client_id"], "reason", err.Error())
		page(w, http.StatusBadRequest, pageData{Title: "Unknown application", Message: "This application is not registered with this server (registrations may have been reset). Remove and re-add the server in your application so it registers again."})
		return
	}
	redirect := id["redirect_uri"]
	if redirect == "" {
		if len(client.RedirectURIs) != 1 {
			page(w, http.StatusBadRequest, pageData{Title: "Invalid authorization request", Message: "The application registered several redirect URIs and did not say which one to use."})
			return
		}
		redirect = client.RedirectURIs[0]
	} else if m, ok := matchRedirectURI(client.RedirectURIs, redirect); ok {
		redirect = m
	} else {
		p.log.Warn("authorize: redirect_uri not registered", "client_id", client.ID)
		page(w, http.StatusBadRequest, pageData{Title: "Invalid redirect URI", Message: "The redirect URI in this request is not registered for this application. Nothing was sent to it."})
		return
	}
	txn := store.Transaction{ClientID: client.ID, RedirectURI: redirect}
	// From here on, errors go back to the client (RFC 6749 §4.1.2.1) — subject to AZ-10.
	if s := q["state"]; len(s) == 1 && s[0] != "" {
		txn.State, txn.HasState = s[0], true
	}
	v, err := params(q, "response_type", "code_challenge", "code_challenge_method", "scope", "resource", "state", "nonce", "prompt")
	if err != nil {
		p.authorizeError(w, r, txn, "invalid_request", err.Error())
		return
	}
	switch {
	case len(v["state"]) > MaxStateBytes:
		p.authorizeError(w, r, txn, "invalid_request", fmt.Sprintf("state must not be longer than %d bytes", MaxStateBytes))
		return
	case v["response_type"] == "":
		p.authorizeError(w, r, txn, "invalid_request", "response_type is required")
		return
	case v["response_type"] != "code":
		p.authorizeError(w, r, txn, "unsupported_response_type", "only response_type=code is supported")
		return
	case v["code_challenge"] == "":
		p.authorizeError(w, r, txn, "invalid_request", "code_challenge is required (PKCE with S256)")
		return
	case v["code_challenge_method"] != "S256":
		p.authorizeError(w, r, txn, "invalid_request", "code_challenge_method must be S256")
		return
	case !s256Challenge.MatchString(v["code_challenge"]):
		p.authorizeError(w, r, txn, "invalid_request", "code_challenge must be 43 base64url characters (S256)")
		return
	case !p.checkResource(v["resource"]):
		p.authorizeError(w, r, txn, "invalid_target", "resource is not this server's MCP endpoint")
		return
	}
	if seen, err := p.o.Store.ChallengeSeen(r.Context(), v["code_challenge"]); err != nil {
		p.log.Error("authorize: PKCE challenge lookup", "err", err) // not "unseen": the user reloads
		unavailablePage(w)
		return
	} else if seen {
		p.log.Warn("authorize: code_challenge of an already redeemed code sent again (constant PKCE verifier?)", "client_id", client.ID)
		p.authorizeError(w, r, txn, "invalid_request", "this code_challenge was already used; create a new PKCE code_verifier for every authorization request")
		return
	}
	txn.CodeChallenge = v["code_challenge"]
	txn.Scopes = p.scopeList(v["scope"])
	txn.Resource = p.o.Resource
	txn.ID = randomToken()
	txn.ExpiresAt = p.now().Add(p.o.Lifetimes.Transaction)
	if err := p.o.Store.PutTransaction(r.Context(), txn); err != nil {
		// The user reloads this page; an error sent to the client would end its sign-in.
		p.log.Error("authorize: store transaction", "err", err)
		unavailablePage(w)
		return
	}
	p.log.Info("authorization started", "client_id", client.ID, "txn", txn.ID[:8])
	http.Redirect(w, r, p.base+"/consent?"+url.Values{"txn": {txn.ID}}.Encode(), http.StatusFound)
}

var s256Challenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// MaxStateBytes bounds the client's state: it is stored with the transaction, so without a bound one
// request could park a megabyte (the request-line limit) in the store (TestAZ05_StateBounded).
const MaxStateBytes = 4096

// authorizeError sends an error authorization response: a redirect to a loopback client, otherwise a
// page that tells the user what happened and where the link goes (AZ-10).
func (p *Proxy) authorizeError(w http.ResponseWriter, r *http.Request, t store.Transaction, code, desc string) {
	to := p.clientRedirect(t, url.Values{"error": {code}, "error_description": {desc}})
	if autoRedirectErrors(t.RedirectURI) {
		http.Redirect(w, r, to, http.StatusFound)
		return
	}
	host := t.RedirectURI
	if u, err := url.Parse(t.RedirectURI); err == nil && u.Host != "" {
		host = u.Host
	}
	page(w, http.StatusBadRequest, pageData{Title: "The application's request was refused",
		Message: "Error " + code + ": " + desc + ".", Link: registeredLink(to), LinkHost: host})
}
