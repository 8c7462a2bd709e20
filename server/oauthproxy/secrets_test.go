package oauthproxy

import (
	"net/url"
	"strings"
	"testing"
)

// SEC-04 and the rule: no token, code or secret in logs or error bodies. Runs a mix of good
// and hostile requests, then greps everything logged and every non-token response body.
func TestSEC04_NoSecretsInLogsOrErrorBodies(t *testing.T) {
	h := newHarness(t)
	id, m := h.flow()
	rt := m["refresh_token"].(string)
	n := h.refresh(id, rt, nil).json(t)
	h.refresh(id, rt, nil) // reuse → revocation path
	h.exchange(id, "bogus-code-value-1234567890", nil)
	h.postForm(nil, "/revoke", url.Values{"token": {n["access_token"].(string)}, "client_id": {id}})
	code, _ := h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	h.exchange(id, code, url.Values{"code_verifier": {strings.Repeat("z", 43)}})
	h.exchange(id, code, nil)
	h.exchange(id, code, nil) // replay
	secrets := append([]string{testVerifier}, h.secrets...)
	secrets = append(secrets, h.up.issued...)
	for _, v := range h.up.authURLs {
		secrets = append(secrets, v.Get("state"), v.Get("nonce"))
	}
	secrets = append(secrets, h.up.exchanges...)
	logs := h.logs.String()
	if !strings.Contains(logs, "refresh token reused") || !strings.Contains(logs, "authorization code replayed") {
		t.Fatal("the log lacks the security events the test provoked")
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("log contains a secret %.8s…", s)
		}
	}
	// Error bodies: every body that is not a token response.
	for _, body := range strings.Split(h.bodies.String(), "\n") {
		// Token responses, client redirects with the code and the redirect upstream carry them by design.
		if strings.Contains(body, `"access_token"`) || strings.Contains(body, "code=") || strings.HasPrefix(body, "https://idp.test/authorize?") {
			continue
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(body, s) {
				t.Errorf("error body contains a secret: %.80s", body)
			}
		}
	}
}
