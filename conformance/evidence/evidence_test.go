package evidence_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/evidence"
)

func jws(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"at+jwt"}`)) + "." + enc([]byte(claims)) + ".c2lnbmF0dXJlLXNlY3JldA"
}

// TestTransportNeverRecordsSecrets: every secret the suite handles (codes, verifiers, tokens,
// passwords, cookies, bearer credentials) is elided wherever it appears in an exchange.
func TestTransportNeverRecordsSecrets(t *testing.T) {
	access := jws(`{"iss":"https://as.example","sub":"u1","aud":"https://rs.example/mcp"}`)
	secrets := []string{"the-code-123", "verifier-abcdefghijklmnop", "refresh-xyz-987", access, "pw-hunter2", "cookie-val-42", "c2lnbmF0dXJlLXNlY3JldA"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "__Host-csrf", Value: "cookie-val-42", Path: "/", Secure: true, HttpOnly: true})
		w.Header().Set("Location", "http://127.0.0.1/cb?code=the-code-123&state=s1")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": access, "refresh_token": "refresh-xyz-987", "token_type": "Bearer"})
	}))
	defer srv.Close()

	var rec evidence.Record
	c := &http.Client{Transport: &evidence.Transport{Record: &rec}}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {"the-code-123"}, "code_verifier": {"verifier-abcdefghijklmnop"}, "password": {"pw-hunter2"}}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/token?code=the-code-123", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+access)
	req.Header.Set("Cookie", "__Host-csrf=cookie-val-42")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body["access_token"] != access {
		t.Fatalf("the caller must still read the real body: %v %v", err, body)
	}
	out, _ := json.Marshal(rec.Snapshot())
	for _, s := range secrets {
		if strings.Contains(string(out), s) {
			t.Errorf("secret %q appears in the evidence: %s", s, out)
		}
	}
	snap := rec.Snapshot()
	if len(snap.Exchanges) != 1 || snap.Exchanges[0].Response.Status != 200 {
		t.Fatalf("exchange not recorded: %+v", snap)
	}
	var found bool
	for _, tok := range snap.Exchanges[0].Tokens {
		if tok.Field == "access_token" && tok.Kind == evidence.KindJWS && tok.Claims["sub"] == "u1" {
			found = true
		}
	}
	if !found {
		t.Fatalf("access token claims not decoded: %+v", snap.Exchanges[0].Tokens)
	}
	// The same secret gets the same placeholder, so a reader can see a code was sent twice.
	first, again, other := evidence.Elide("x"), evidence.Elide("x"), evidence.Elide("y")
	if first != again || first == other {
		t.Fatal("Elide must be deterministic and distinguish values")
	}
}

func TestDecodeToken(t *testing.T) {
	jwe := "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aXY.Y2lwaGVy.dGFn"
	cases := []struct{ raw, kind string }{
		{jws(`{"a":1}`), evidence.KindJWS}, {jwe, evidence.KindJWE}, {"opaque-abc", evidence.KindOpaque}, {"a.b.c", evidence.KindOpaque},
	}
	for _, tc := range cases {
		if got := evidence.DecodeToken("t", tc.raw); got.Kind != tc.kind {
			t.Errorf("DecodeToken(%q).Kind = %s, want %s", tc.raw, got.Kind, tc.kind)
		}
	}
}
