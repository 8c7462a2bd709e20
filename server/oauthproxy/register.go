package oauthproxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode"

	"github.com/cnpg-mcp/cnpg-mcp/server/store"
)

// serveRegister is RFC 7591 dynamic client registration (open: MCP clients register themselves).
//
//	DCR-01  201 + JSON + client_id                         TestDCR01_Register
//	DCR-02  every registered value returned; we are public-only, so token_endpoint_auth_method is
//	        replaced by "none" and no secret is issued      TestDCR02_ReplacedValuesReturned
//	DCR-03  400 JSON invalid_redirect_uri / invalid_client_metadata   TestDCR03_Errors
//	DCR-04/05/06/09, BCP-05  redirect rules (redirect.go)   TestDCR04…, TestDCR05…, TestDCR06…, TestDCR09…
//	DCR-08  unknown fields ignored                          TestDCR01_Register
//	DCR-11, CLI-11  unknown scopes dropped, not rejected     TestDCR11_UnknownScopeSubstituted
//	BCP-31  client_name without control or bidi characters  TestBCP31_ClientNameBidiControlsRefused
//	DCR-12  grant_types/response_types consistent           TestDCR12_GrantTypes
//	BCP-29  the client cannot choose its client_id          TestDCR01_Register
//	DCR-10  registrations persist (store)                    TestDCR10_RegistrationSurvivesRestart (server/app)
//
// The body is at most MaxRegistrationBytes (413 naming the limit); a store fault is 503
// temporarily_unavailable with Retry-After [TestOversizedBodies413, TestStoreFaultsAre503].
// errTrailingJSON: a registration body with more after its JSON object.
var errTrailingJSON = errors.New("data after the JSON object")

func (p *Proxy) serveRegister(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		writeJSON(w, http.StatusMethodNotAllowed, oauthError{Error: "invalid_request", Description: "use POST with a JSON body"})
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_client_metadata", Description: "the body must be application/json"})
		return
	}
	var req struct {
		RedirectURIs            []string `json:"redirect_uris"`
		ClientName              string   `json:"client_name"`
		GrantTypes              []string `json:"grant_types"`
		ResponseTypes           []string `json:"response_types"`
		TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
		ApplicationType         string   `json:"application_type"`
		Scope                   string   `json:"scope"`
		ClientURI               string   `json:"client_uri"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxRegistrationBytes))
	err := dec.Decode(&req)
	if err == nil {
		// one JSON object and nothing after it (a streaming decoder would ignore `{…}{…}`)
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.Join(errTrailingJSON, terr)
		}
	}
	if err != nil {
		if limit, ok := tooLarge(err); ok {
			writeJSON(w, http.StatusRequestEntityTooLarge, oauthError{Error: "invalid_client_metadata", Description: fmt.Sprintf("the request body exceeds %d bytes", limit)})
			return
		}
		desc := "the body is not a valid JSON client metadata object"
		if errors.Is(err, errTrailingJSON) {
			desc = "the body has data after the JSON client metadata object; send exactly one object"
		}
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_client_metadata", Description: desc})
		return
	}
	c, field, err := p.clientFromMetadata(req.RedirectURIs, req.ClientName, req.GrantTypes, req.ResponseTypes, req.ApplicationType, req.Scope)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{Error: field, Description: err.Error()})
		return
	}
	if strings.HasPrefix(req.ClientURI, "https://") && len(req.ClientURI) < 500 {
		c.ClientURI = req.ClientURI
	}
	c.ID = randomToken()
	c.IssuedAt = p.now()
	c.UnusedUntil = c.IssuedAt.Add(p.o.Lifetimes.UnusedRegistration)
	if err := p.o.Store.CreateClient(r.Context(), c); err != nil {
		p.log.Error("register: store", "err", err)
		w.Header().Set("Retry-After", RetryAfterSeconds)
		writeJSON(w, http.StatusServiceUnavailable, oauthError{Error: "temporarily_unavailable", Description: "the registration could not be stored right now; try again shortly"})
		return
	}
	p.log.Info("client registered", "client_id", c.ID, "client_name", c.Name, "application_type", c.ApplicationType, "redirect_uris", c.RedirectURIs)
	resp := map[string]any{
		"client_id":                  c.ID,
		"client_id_issued_at":        c.IssuedAt.Unix(),
		"redirect_uris":              c.RedirectURIs,
		"grant_types":                c.GrantTypes,
		"response_types":             c.ResponseTypes,
		"token_endpoint_auth_method": c.TokenEndpointAuthMethod,
		"application_type":           c.ApplicationType,
	}
	if c.Name != "" {
		resp["client_name"] = c.Name
	}
	if c.Scope != "" {
		resp["scope"] = c.Scope
	}
	if c.ClientURI != "" {
		resp["client_uri"] = c.ClientURI
	}
	writeJSON(w, http.StatusCreated, resp)
}

// MaxRegistrationBytes bounds a registration request's body.
const MaxRegistrationBytes = 64 << 10

// clientFromMetadata applies the registration rules shared by DCR and CIMD. It returns the RFC 7591
// error code to use with the error.
func (p *Proxy) clientFromMetadata(redirects []string, name string, grants, responses []string, appType, scope string) (store.Client, string, error) {
	if appType == "" {
		appType = "native"
	}
	if appType != "native" && appType != "web" {
		return store.Client{}, "invalid_client_metadata", errors.New("application_type must be native or web")
	}
	if len(redirects) == 0 || len(redirects) > 20 {
		return store.Client{}, "invalid_redirect_uri", errors.New("redirect_uris is required (1 to 20 URIs)")
	}
	for _, u := range redirects {
		if err := validateRedirectURI(u, appType); err != nil {
			return store.Client{}, "invalid_redirect_uri", err
		}
	}
	if len(grants) == 0 {
		grants = []string{"authorization_code"}
	}
	hasCode := false
	for _, g := range grants {
		switch g {
		case "authorization_code":
			hasCode = true
		case "refresh_token":
		default:
			return store.Client{}, "invalid_client_metadata", errors.New("grant_types may contain only authorization_code and refresh_token")
		}
	}
	if !hasCode {
		return store.Client{}, "invalid_client_metadata", errors.New("grant_types must include authorization_code")
	}
	if len(responses) == 0 {
		responses = []string{"code"}
	}
	for _, rt := range responses {
		if rt != "code" {
			return store.Client{}, "invalid_client_metadata", errors.New("response_types may contain only code")
		}
	}
	if len(name) > 200 {
		return store.Client{}, "invalid_client_metadata", errors.New("client_name is longer than 200 characters")
	}
	if strings.ContainsFunc(name, spoofingRune) {
		return store.Client{}, "invalid_client_metadata", errors.New("client_name must not contain control characters or bidirectional formatting characters (U+200E/F, U+202A–U+202E, U+2066–U+2069, U+061C)")
	}
	var scopes []string
	for _, s := range strings.Fields(scope) {
		for _, sup := range p.o.ScopesSupported {
			if s == sup {
				scopes = append(scopes, s)
			}
		}
	}
	return store.Client{
		Name: name, RedirectURIs: redirects, GrantTypes: grants, ResponseTypes: responses,
		TokenEndpointAuthMethod: "none", ApplicationType: appType, Scope: strings.Join(scopes, " "),
	}, "", nil
}

// spoofingRune reports control characters and the bidirectional formatting characters: in a
// client_name they would reorder the consent page's text after the name, such as the warning that
// the name is not verified (BCP-31; TestBCP31_ClientNameBidiControlsRefused).
func spoofingRune(r rune) bool {
	switch {
	case unicode.IsControl(r), r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
