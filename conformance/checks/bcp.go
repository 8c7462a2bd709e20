package checks

import (
	"net/http"
	"slices"
)

// D. OAuth 2.1 and RFC 9700 items: mostly graded by the checks they map to.
func bcpChecks() map[string]func(*T) {
	ref := func(ids ...string) func(*T) { return func(t *T) { t.CrossRef(ids...) } }
	return map[string]func(*T){
		"BCP-01": ref("AZ-06"),
		"BCP-02": ref("TOK-12"),
		"BCP-03": ref("AZ-03"),
		"BCP-04": ref("CLI-07"),
		"BCP-05": ref("DCR-04"),
		"BCP-06": ref("AZ-02", "AZ-03"),
		"BCP-07": ref("AZ-10"),
		"BCP-08": ref("AZ-09", "TOK-04"),
		"BCP-09": ref("TOK-04", "TOK-05", "TOK-06"),
		"BCP-10": ref("PKCE-01", "PKCE-02", "PKCE-03", "PKCE-04", "PKCE-05"),
		"BCP-11": ref("ASM-05"),
		"BCP-12": ref("RT-01", "RT-02", "RT-03"),
		"BCP-13": ref("RT-04", "RT-06", "RES-07"),
		"BCP-14": bcp14,
		"BCP-15": ref("RT-08"),
		"BCP-16": ref("RS-04", "RES-01"),
		"BCP-17": bcp17,
		"BCP-18": ref("RS-06"),
		"BCP-19": ref("TOK-02"),
		"BCP-20": ref("AZ-11"),
		"BCP-21": ref("AZ-08"),
		"BCP-22": ref("PXY-04"),
		"BCP-23": ref("AZ-14"),
		"BCP-24": ref("ASM-01"),
		"BCP-25": ref("TOK-08"),
		"BCP-26": ref("AZ-07", "TOK-13"),
		"BCP-27": bcp27,
		"BCP-28": ref("AZ-12", "TOK-10"),
		"BCP-29": bcp29,
		"BCP-30": ref("TOK-15", "RT-08"),
		"BCP-31": ref("PXY-02", "CIMD-09"),
	}
}

// BCP-14: whether to issue refresh tokens is the AS's risk decision (informational).
func bcp14(t *T) {
	g := t.SharedGrant()
	if g.Tokens.RefreshToken == "" {
		t.Logf("the AS issued no refresh token to a public loopback client")
	} else {
		t.Logf("the AS issues refresh tokens to public loopback clients (rotation: see RT-01..03)")
	}
}

// BCP-17: sender-constrained access tokens (DPoP) are optional: report support.
func bcp17(t *T) {
	as := t.AS()
	if algs, ok := as.Raw["dpop_signing_alg_values_supported"].([]any); ok && len(algs) > 0 {
		t.Logf("the AS advertises DPoP (%v)", algs)
		return
	}
	t.Logf("the AS does not advertise DPoP; MCP does not require sender-constrained tokens")
}

// BCP-27: a parameter without a value is treated as omitted (state= → no state echoed).
func bcp27(t *T) {
	c := t.RegisterClient(nil)
	params := t.AuthParams(&Flow{Client: c, State: ptr("")})
	params["state"] = []string{""}
	params.Set("code_challenge_method", "plain")
	p := t.ProbeAuthorize("error response to state= (empty)", params, nil, c.RedirectURI)
	if p.Kind == ClientRedirect && p.Client.Has("state") {
		t.Errorf("an empty state= was echoed back as a parameter; an empty parameter is an omitted one (OAuth 2.1 §3.1)")
	}
	params = t.AuthParams(&Flow{Client: c})
	params["scope"] = []string{""}
	p = t.ProbeAuthorize("authorization request with scope= (empty)", params, nil, c.RedirectURI)
	if p.Kind == ServerError || (p.Kind == ClientRedirect && p.Client.Get("error") == "invalid_scope") {
		t.Errorf("an empty scope= was treated as a scope instead of an omitted one (%s)", p.Describe())
	}
}

// BCP-29: clients cannot choose their client_id (or anything that reads as a user's sub).
func bcp29(t *T) {
	chosen := "auth0|conformance-chosen-id"
	resp := t.register("register choosing a client_id", t.loopbackMeta(func(m map[string]any) { m["client_id"] = chosen }))
	if resp.Status != http.StatusCreated && resp.Status != http.StatusOK {
		t.Logf("the AS refused a registration that names a client_id (%s)", resp.Describe())
		return
	}
	if id := resp.Str("client_id"); id == chosen {
		t.Errorf("the AS let the client choose client_id %q (RFC 9700 §4.15: it could be confused with a user's sub)", chosen)
	}
	if slices.Contains([]string{"", "none"}, resp.Str("client_id")) {
		t.Errorf("the registration answered an empty client_id")
	}
}
