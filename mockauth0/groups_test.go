package mockauth0_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/adminclient"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
)

// claimList reads a custom claim holding a list of strings ("<absent>" when missing).
func claimList(c map[string]any, name string) string {
	v, ok := c[name]
	if !ok {
		return "<absent>"
	}
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return fmt.Sprint(out)
}

// The default tenant's post-login Action puts alice's groups and roles into her ID token, her API
// access token and /userinfo; a change through the Management API (PATCH app_metadata.groups) or the
// admin API shows in the next refresh, as Auth0 runs post-login Actions on refresh-token exchanges.
func TestPostLoginActionGroupsClaim(t *testing.T) {
	e := start(t, nil)
	p := newPKCE()
	u := e.login(browser(t), e.authParams(p), config.AliceEmail, config.AlicePassword)
	r := e.exchange(u.Query().Get("code"), p.verifier)
	if r.status != 200 {
		t.Fatalf("exchange: %v", r.raw)
	}
	_, id := e.verifyJWS(r.str("id_token"))
	_, at := e.verifyJWS(r.str("access_token"))
	if id["sub"] != config.AliceSub || claimList(id, config.DefaultGroupsClaim) != "[team-a-dba]" || claimList(id, config.DefaultRolesClaim) != "[dba]" {
		t.Fatalf("id token: %v", id)
	}
	if claimList(at, config.DefaultGroupsClaim) != "[team-a-dba]" || claimList(at, config.DefaultRolesClaim) != "[dba]" {
		t.Fatalf("access token: %v", at)
	}
	req, _ := http.NewRequest(http.MethodGet, e.iss+"userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+r.str("access_token"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	if err := jsonBody(resp, &info); err != nil || claimList(info, config.DefaultGroupsClaim) != "[team-a-dba]" {
		t.Fatalf("userinfo: %v %v", info, err)
	}

	// Management API: alice leaves team-a-dba and joins developers.
	tok := e.mgmtToken("update:users read:users")
	st, body, _ := e.mgmt(tok, http.MethodPatch, "users/"+config.AliceSub, `{"app_metadata":{"groups":["developers"]}}`)
	if st != 200 || claimList(body["app_metadata"].(map[string]any), "groups") != "[developers]" {
		t.Fatalf("PATCH user: %d %v", st, body)
	}
	if st, _, _ := e.mgmt(e.mgmtToken("read:users"), http.MethodPatch, "users/"+config.AliceSub, `{"app_metadata":{"groups":[]}}`); st != 403 {
		t.Fatalf("PATCH without update:users: %d", st)
	}
	if st, _, _ := e.mgmt(tok, http.MethodPatch, "users/"+config.AliceSub, `{"app_metadata":{"favourite":"x"}}`); st != 400 {
		t.Fatalf("PATCH with an app_metadata key the mock does not keep: %d", st)
	}
	if st, _, _ := e.mgmt(tok, http.MethodPatch, "users/auth0|nobody", `{"blocked":true}`); st != 404 {
		t.Fatalf("PATCH of an unknown user: %d", st)
	}
	r = e.refresh(r.str("refresh_token"), nil)
	_, id = e.verifyJWS(r.str("id_token"))
	_, at = e.verifyJWS(r.str("access_token"))
	if claimList(id, config.DefaultGroupsClaim) != "[developers]" || claimList(at, config.DefaultGroupsClaim) != "[developers]" {
		t.Fatalf("after the PATCH, refreshed tokens: id %v at %v", id, at)
	}

	// Admin API: no groups at all (the claim stays, empty, as the Action writes it).
	cl := adminclient.New(e.iss, "", nil)
	if err := cl.SetUserGroups(context.Background(), config.AliceSub, nil); err != nil {
		t.Fatal(err)
	}
	if err := cl.SetUserRoles(context.Background(), config.AliceSub, []string{"viewer"}); err != nil {
		t.Fatal(err)
	}
	if err := cl.SetUserGroups(context.Background(), "auth0|nobody", []string{"x"}); err == nil {
		t.Fatal("groups of an unknown user set")
	}
	r = e.refresh(r.str("refresh_token"), nil)
	_, id = e.verifyJWS(r.str("id_token"))
	if claimList(id, config.DefaultGroupsClaim) != "[]" || claimList(id, config.DefaultRolesClaim) != "[viewer]" {
		t.Fatalf("after the admin change: %v", id)
	}
	// bob's groups were not touched.
	if bob, ok := e.srv.User(config.BobSub); !ok || !slices.Equal(bob.Groups, config.BobGroups) {
		t.Fatalf("bob's groups: %v", bob.Groups)
	}
}

// The Action is configurable: claim names, and which tokens carry them; without one, no claims.
func TestPostLoginActionConfigurable(t *testing.T) {
	f := false
	e := start(t, func(c *mockauth0.Config) {
		c.Tenant.PostLoginAction = &config.PostLoginAction{GroupsClaim: "https://corp.example/teams", AccessToken: &f}
	})
	p := newPKCE()
	u := e.login(browser(t), e.authParams(p), config.AliceEmail, config.AlicePassword)
	r := e.exchange(u.Query().Get("code"), p.verifier)
	_, id := e.verifyJWS(r.str("id_token"))
	_, at := e.verifyJWS(r.str("access_token"))
	if claimList(id, "https://corp.example/teams") != "[team-a-dba]" || claimList(id, config.DefaultRolesClaim) != "<absent>" {
		t.Fatalf("id token: %v", id)
	}
	if claimList(at, "https://corp.example/teams") != "<absent>" {
		t.Fatalf("the access token got the claim although access_token: false: %v", at)
	}
	e = start(t, func(c *mockauth0.Config) { c.Tenant.PostLoginAction = nil })
	p = newPKCE()
	u = e.login(browser(t), e.authParams(p), config.AliceEmail, config.AlicePassword)
	r = e.exchange(u.Query().Get("code"), p.verifier)
	if _, id := e.verifyJWS(r.str("id_token")); claimList(id, config.DefaultGroupsClaim) != "<absent>" {
		t.Fatalf("no Action, yet a groups claim: %v", id)
	}
}

func jsonBody(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
