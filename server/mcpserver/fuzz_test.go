package mcpserver

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/server"

	"github.com/cnpg-mcp/cnpg-mcp/server/identity"
)

// FuzzSessionID: an Mcp-Session-Id is accepted only for the user it was generated for (RS-09; bound to
// the subject, not the OAuth client: a client that steps up by registering anew keeps its session).
// For any two callers (subject, client ID) an ID generated for the first validates for the first and,
// unless they have the same subject, never for the second (the length-prefixed binding leaves no
// ambiguity such as "ab"+nonce = "a"+"b"+nonce); any other string validates only if it has exactly the
// generated shape, and checkSessionBinding answers 404 to everything that does not validate.
func FuzzSessionID(f *testing.F) {
	f.Add("auth0|a", "client-1", "auth0|a", "client-2", "")
	f.Add("ab", "c", "a", "bc", "mcp-session-")
	f.Add("auth0|a", "client-1", "auth0|b", "client-1", "")
	f.Add("", "", "", "x", "mcp-session-AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("u", "c", "u", "c", "mcp-session-abc.def")
	f.Add("u\x00", "c", "u", "\x00c", "garbage")
	f.Fuzz(func(t *testing.T, sub1, client1, sub2, client2, raw string) {
		a := identity.Identity{Subject: sub1, ClientID: client1}
		b := identity.Identity{Subject: sub2, ClientID: client2}
		id := boundSessions{owner: a}.Generate()
		if !sessionBoundTo(id, a) {
			t.Fatalf("a generated ID does not validate for its owner: %q", id)
		}
		same := sub1 == sub2
		if sessionBoundTo(id, b) != same {
			t.Fatalf("an ID of (%q, %q) validates for (%q, %q): %t", sub1, client1, sub2, client2, !same)
		}
		if _, err := (boundSessions{owner: b}).Validate(id); (err == nil) != same {
			t.Fatalf("Validate disagrees with sessionBoundTo")
		}
		if sessionBoundTo(raw, a) {
			rest := strings.TrimPrefix(raw, sessionPrefix)
			nonce, binding, _ := strings.Cut(rest, ".")
			if binding != bindingOf(a, nonce) {
				t.Fatalf("%q validates without its binding", raw)
			}
		}
		// The HTTP check: a request with the raw ID passes only if the ID is bound to its caller.
		if strings.ContainsAny(raw, "\r\n\x00") {
			return
		}
		req := httptest.NewRequest(http.MethodGet, "/mcp", nil)
		req.Header.Set(server.HeaderKeySessionID, raw)
		req = req.WithContext(identity.NewContext(req.Context(), a))
		w := httptest.NewRecorder()
		passed := checkSessionBinding(w, req)
		want := req.Header.Get(server.HeaderKeySessionID) == "" || sessionBoundTo(req.Header.Get(server.HeaderKeySessionID), a)
		if passed != want || (!passed && w.Code != http.StatusNotFound) {
			t.Fatalf("checkSessionBinding(%q) = %t (HTTP %d), want %t", raw, passed, w.Code, want)
		}
	})
}
