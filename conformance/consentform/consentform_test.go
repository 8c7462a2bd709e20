package consentform_test

import (
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/consentform"
)

func TestParse(t *testing.T) {
	page := `<html><body><form id="search" action="/s"><input name="q"><button>Search</button></form>
<form method="post" action="consent"><input type="hidden" name="txn" value="t1"><input type="hidden" name="csrf_token" value="c1">
<input type="checkbox" name="remember" value="yes">
<button type="submit" name="action" value="deny">Deny</button><button type="submit" name="action" value="approve">Allow access</button></form></body></html>`
	f, err := consentform.Parse("https://as.example/oauth/consent?txn=t1", []byte(page))
	if err != nil {
		t.Fatal(err)
	}
	if f.Action != "https://as.example/oauth/consent" || f.Method != "POST" {
		t.Fatalf("action %s method %s", f.Action, f.Method)
	}
	if v := f.Values(true); v.Get("action") != "approve" || v.Get("txn") != "t1" || v.Get("csrf_token") != "c1" || v.Has("remember") {
		t.Fatalf("approve values %v", v)
	}
	if v := f.Values(false); v.Get("action") != "deny" {
		t.Fatalf("deny values %v", v)
	}
	if _, err := consentform.Parse("https://as.example/", []byte(`<form><button>Search</button></form>`)); err == nil {
		t.Fatal("a page without consent buttons must not parse as a consent form")
	}
}
