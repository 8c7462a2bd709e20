package checks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
)

// sharedGrant is one authorization per run that checks which only *read* a token use (RS-*,
// TOK-02/03/15/16, RES-01, …), so the run needs fewer browser flows. Checks that revoke, replay or
// rotate make their own grants.
type sharedGrant struct {
	mu   sync.Mutex
	g    *Grant
	by   string
	fail *report.InconclusiveStep
	// made is set once the run's first shared grant was made (in the browser).
	made bool
}

// SharedGrant returns the run's shared grant, creating it on first use (the preflight makes it in
// a full run). When it cannot be obtained the check is inconclusive, graded by the row that owns
// the failed step (AZ-01 for the authorization, TOK-03 for the redemption).
func (t *T) SharedGrant() *Grant {
	s := &t.env.shared
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.g != nil {
		t.Logf("uses the run's shared grant (authorized during %s)", s.by)
		t.rec.AddToken("access_token", s.g.Tokens.AccessToken)
		return s.g
	}
	if s.fail != nil {
		t.Inconclusive(s.fail.Step, s.fail.Answer, fmt.Sprintf("the run's shared authorization could not be obtained (during %s)", s.by), s.fail.Owner)
	}
	s.by = t.entry.ID
	done := false
	defer func() {
		if done {
			return
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		switch {
		case t.inconclusive != nil:
			st := *t.inconclusive
			s.fail = &st
		case len(t.failures) > 0:
			s.fail = &report.InconclusiveStep{Step: "authorize and redeem the run's shared grant", Answer: t.failures[len(t.failures)-1], Owner: t.entry.ID}
		default:
			s.fail = &report.InconclusiveStep{Step: "authorize and redeem the run's shared grant", Answer: "aborted"}
		}
	}()
	// The run's first authorization is a browser flow, the one that logs the user in, whose
	// navigations and landing page checks read (AZ-11, PXY-13, SEC-04); one made again after a clock
	// move is only a precondition.
	g := t.Grant(Flow{Name: "shared grant", Browser: !s.made, WantFragment: !s.made})
	done = true
	s.g, s.made = g, true
	return g
}

// forgetShared drops the shared grant (after a clock move its tokens have expired); the next
// check that needs one authorizes again.
func (e *Env) forgetShared() {
	e.shared.mu.Lock()
	e.shared.g, e.shared.fail, e.shared.by = nil, nil, ""
	e.shared.mu.Unlock()
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// forgeJWT signs claims with a random HS256 key (a token from an impostor).
func forgeJWT(header map[string]any, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	signing := b64(h) + "." + b64(c)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signing))
	return signing + "." + b64(mac.Sum(nil))
}

// unsignedJWT is the token with alg "none" and no signature.
func unsignedJWT(claims map[string]any) string {
	c, _ := json.Marshal(claims)
	return b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(c) + "."
}

// flipChar changes one character in the middle of s (a tampered token).
func flipChar(s string) string {
	if s == "" {
		return "x"
	}
	i := len(s) / 2
	// Stay away from the JWT separators.
	for i < len(s)-1 && s[i] == '.' {
		i++
	}
	c := s[i]
	r := byte('A')
	if c == 'A' {
		r = 'B'
	}
	return s[:i] + string(r) + s[i+1:]
}

// truncate drops the last n characters.
func truncate(s string, n int) string {
	if len(s) <= n {
		return ""
	}
	return strings.TrimSuffix(s[:len(s)-n], ".")
}
