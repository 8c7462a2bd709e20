package oauthproxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

var aliceClaims = map[string]any{"sub": "auth0|user-1", "email": "alice@example.com", "email_verified": true,
	"https://x/groups": []any{"dba"}, "nonce": "n", "aud": "c", "exp": 1}

// grantOfAT returns the grant behind one of our access tokens.
func (h *harness) grantOfAT(at string) string {
	h.t.Helper()
	c, err := h.tokens.Verify(context.Background(), at)
	if err != nil {
		h.t.Fatal(err)
	}
	return c.GrantID
}

// groupsOf returns the kept identity's groups claim as text.
func (h *harness) groupsOf(grant string) string {
	h.t.Helper()
	id, err := h.store.GrantIdentity(context.Background(), grant)
	if err != nil {
		h.t.Fatal(err)
	}
	return fmt.Sprint(id.Claims["https://x/groups"])
}

// The user's verified claims are kept with the grant at sign-in (the token mechanics dropped); a
// sign-in whose claims fail the identity check is refused with the reason, and the upstream refresh
// token it produced is revoked.
func TestIdentityKeptWithGrant(t *testing.T) {
	h := newHarness(t)
	h.up.setClaims(aliceClaims)
	_, tok := h.flow()
	grant := h.grantOfAT(tok["access_token"].(string))
	id, err := h.store.GrantIdentity(context.Background(), grant)
	if err != nil || id.Claims["email"] != "alice@example.com" || h.groupsOf(grant) != "[dba]" || !id.At.Equal(h.clock.Now()) {
		t.Fatalf("kept identity: %+v %v", id, err)
	}
	for _, k := range []string{"nonce", "aud", "exp"} {
		if _, ok := id.Claims[k]; ok {
			t.Errorf("token claim %q kept as identity", k)
		}
	}

	h = newHarness(t, func(o *Options) {
		o.Identity.Check = func(c map[string]any) error {
			if c["email"] == nil {
				return errors.New("the identity provider sent no email")
			}
			return nil
		}
	})
	h.up.setClaims(map[string]any{"sub": "auth0|user-1"})
	id2 := h.register()
	b := h.browser()
	f, _ := h.consentPage(b, authorizeQuery(id2, "http://127.0.0.1:5000/cb"))
	r := h.callback(b, h.approve(b, f), nil)
	loc := r.location(t)
	if r.StatusCode != http.StatusFound || loc.Query().Get("error") != "access_denied" || loc.Query().Get("code") != "" ||
		!strings.Contains(loc.Query().Get("error_description"), "sent no email") {
		t.Fatalf("sign-in without the claim the check needs: %d %s", r.StatusCode, loc)
	}
	if len(h.up.revoked) != 1 || !strings.HasPrefix(h.up.revoked[0], "UPSTREAM-RT-") {
		t.Fatalf("the refused sign-in's upstream refresh token was not revoked: %v", h.up.revoked)
	}
	// The same check passes a sign-in that has the claim.
	h.up.setClaims(aliceClaims)
	h.flow()
}

// Identity freshness: with MaxAge, a rotation refreshes upstream once the kept identity is older
// (although the upstream access token is still good) and commits the new claims with it, so a group
// removed upstream is gone from the grant after that refresh; younger identities cause no upstream
// call. Without an upstream refresh token a stale identity ends the grant.
func TestIdentityRefreshedWithUpstream(t *testing.T) {
	for _, backend := range []string{"bolt", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			h := newHarnessOn(t, backend, func(o *Options) { o.Identity.MaxAge = 10 * time.Minute; o.Lifetimes.AccessToken = 5 * time.Minute })
			h.up.setClaims(aliceClaims)
			id, tok := h.flow()
			grant := h.grantOfAT(tok["access_token"].(string))
			rt := tok["refresh_token"].(string)
			h.up.setClaims(map[string]any{"sub": "auth0|user-1", "email": "alice@example.com", "email_verified": true, "https://x/groups": []any{}})

			h.clock.Advance(5 * time.Minute)
			r := h.refresh(id, rt, nil)
			if r.StatusCode != 200 || h.up.refreshCount() != 0 || h.groupsOf(grant) != "[dba]" {
				t.Fatalf("young identity: %d, upstream refreshes %d, groups %s", r.StatusCode, h.up.refreshCount(), h.groupsOf(grant))
			}
			rt = r.json(t)["refresh_token"].(string)
			h.clock.Advance(6 * time.Minute)
			r = h.refresh(id, rt, nil)
			if r.StatusCode != 200 || h.up.refreshCount() != 1 || h.groupsOf(grant) != "[]" {
				t.Fatalf("stale identity: %d, upstream refreshes %d, groups %s", r.StatusCode, h.up.refreshCount(), h.groupsOf(grant))
			}
			if got, _ := h.store.GrantIdentity(context.Background(), grant); !got.At.Equal(h.clock.Now()) {
				t.Fatalf("identity time %v, want %v", got.At, h.clock.Now())
			}
			// An upstream answer without claims keeps the identity read before.
			rt = r.json(t)["refresh_token"].(string)
			h.up.setClaims(nil)
			h.clock.Advance(11 * time.Minute)
			if r = h.refresh(id, rt, nil); r.StatusCode != 200 || h.up.refreshCount() != 2 || h.groupsOf(grant) != "[]" {
				t.Fatalf("claimless upstream refresh: %d %d %s", r.StatusCode, h.up.refreshCount(), h.groupsOf(grant))
			}
		})
	}
	t.Run("no upstream refresh token", func(t *testing.T) {
		h := newHarness(t, func(o *Options) { o.Identity.MaxAge = 10 * time.Minute; o.Lifetimes.AccessToken = 5 * time.Minute })
		h.up.setClaims(aliceClaims)
		h.up.noRefreshToken = true
		id, tok := h.flow()
		grant := h.grantOfAT(tok["access_token"].(string))
		h.clock.Advance(11 * time.Minute)
		r := h.refresh(id, tok["refresh_token"].(string), nil)
		wantOAuthError(t, r, 400, "invalid_grant")
		if !strings.Contains(r.body, "identity") {
			t.Fatalf("the refusal does not say why: %s", r.body)
		}
		if ok, _ := h.store.GrantActive(context.Background(), grant); ok {
			t.Fatal("the grant outlived its identity")
		}
	})
	t.Run("no maximum age", func(t *testing.T) {
		h := newHarness(t)
		h.up.setClaims(aliceClaims)
		id, tok := h.flow()
		h.clock.Advance(6 * time.Hour)
		if r := h.refresh(id, tok["refresh_token"].(string), nil); r.StatusCode != 200 || h.up.refreshCount() != 0 {
			t.Fatalf("without a maximum age the identity alone forced an upstream refresh: %d %d", r.StatusCode, h.up.refreshCount())
		}
	})
}
