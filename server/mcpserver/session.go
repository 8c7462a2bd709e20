package mcpserver

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/server"

	"github.com/cnpg-mcp/cnpg-mcp/server/identity"
)

// Session IDs (MCP 2025-06-18 and 2025-11-25; 2026-07-28 has no sessions) are bound to the user
// who created them (catalogue RS-09): an ID is
//
//	mcp-session-<nonce>.<binding>
//
// where nonce is 16 random bytes and binding is SHA-256 over the creator's subject and the nonce,
// both base64url. A request that carries a session ID is served only when the binding matches the
// user its access token names; otherwise it gets 404, which tells a client to
// initialize a new session. mcp-go keeps a session's state (client capabilities, log level, the GET
// notification stream) under the whole ID string, so another caller cannot reach it: the binding
// commits to the creator, and an ID re-bound to another caller is a different, new session. No key
// and no storage are needed, so every replica validates every ID.
//
// The binding is the user (the MCP specification's "user-specific information"), not the OAuth
// client: a client that steps up by registering again (the official Go SDK does) keeps its session
// under the new client ID instead of meeting a 404 that its SDK treats as terminal. Another user's
// token never reaches a session; the same person's other client gains nothing it could not do
// with its own session.
//
// mcp-go's default manager generates IDs but validates only their format, and a GET never validates:
// without this, any caller who learns an ID could attach to another user's notification stream.
const sessionPrefix = "mcp-session-"

var errSessionNotBound = errors.New("session ID not bound to this caller")

// sessionBinding resolves a session ID manager for each request, bound to the request's caller.
type sessionBinding struct{}

var _ server.SessionIdManagerResolver = sessionBinding{}

// ResolveSessionIdManager implements server.SessionIdManagerResolver. mcp-go calls it with nil
// outside a request (closing sessions); that manager binds to nobody and terminates nothing.
func (sessionBinding) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	var id identity.Identity
	if r != nil {
		id, _ = identity.FromContext(r.Context())
	}
	return boundSessions{owner: id}
}

// boundSessions implements server.SessionIdManager for one caller.
type boundSessions struct{ owner identity.Identity }

func (b boundSessions) Generate() string {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce) // never fails (crypto/rand panics rather than return an error)
	n := base64.RawURLEncoding.EncodeToString(nonce)
	return sessionPrefix + n + "." + bindingOf(b.owner, n)
}

func (b boundSessions) Validate(sessionID string) (isTerminated bool, err error) {
	if !sessionBoundTo(sessionID, b.owner) {
		return false, errSessionNotBound
	}
	return false, nil
}

// Terminate is a no-op: nothing is stored. The handler checks the binding before mcp-go runs.
func (b boundSessions) Terminate(string) (isNotAllowed bool, err error) { return false, nil }

// bindingOf is base64url(SHA-256(len-prefixed subject, nonce)).
func bindingOf(owner identity.Identity, nonce string) string {
	h := sha256.New()
	for _, s := range []string{"cnpg-mcp session v2", owner.Subject, nonce} {
		var n [4]byte
		l := len(s)
		n[0], n[1], n[2], n[3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// sessionBoundTo reports whether sessionID was generated for owner.
func sessionBoundTo(sessionID string, owner identity.Identity) bool {
	rest, ok := strings.CutPrefix(sessionID, sessionPrefix)
	if !ok {
		return false
	}
	nonce, binding, ok := strings.Cut(rest, ".")
	if !ok || len(nonce) != 22 || len(binding) != 43 {
		return false
	}
	if _, err := base64.RawURLEncoding.DecodeString(nonce); err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(binding), []byte(bindingOf(owner, nonce))) == 1
}

// checkSessionBinding answers 404 to any request (POST, GET or DELETE) whose Mcp-Session-Id was not
// generated for the caller, before mcp-go sees it (mcp-go validates neither GET nor DELETE).
func checkSessionBinding(w http.ResponseWriter, r *http.Request) bool {
	sid := r.Header.Get(server.HeaderKeySessionID)
	if sid == "" {
		return true
	}
	owner, _ := identity.FromContext(r.Context())
	if sessionBoundTo(sid, owner) {
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found: this Mcp-Session-Id belongs to another caller or was never issued; send initialize without it to start a new session"}}`))
	return false
}
