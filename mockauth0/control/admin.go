package control

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// AdminPrefix is where the admin API is mounted.
const AdminPrefix = "/mock-admin/v1/"

// Backend is what the admin API controls besides requests and faults.
type Backend interface {
	Now() time.Time
	Advance(d time.Duration)
	ClockOffset() time.Duration
	RotateSigningKey() (string, error)
	RevokeSigningKey(kid string) error
	SigningKeyIDs() []string
	RevokeUserGrants(sub string) int
	SetUserGroups(sub string, groups []string) error
	SetUserRoles(sub string, roles []string) error
}

// Admin serves the test controls:
//
//	GET    requests?path=/oauth/token&since=N   recorded requests (JSON {"requests": [...]})
//	DELETE requests                             forget them
//	GET    clock                                {"now": RFC 3339, "offset_seconds": n}
//	POST   clock/advance {"seconds": n} or {"duration": "1h"}
//	GET    keys                                 {"kids": [...]} current first
//	POST   keys/rotate                          {"kid": new, "kids": [...]}
//	DELETE keys/{kid}                           unpublish a previous key
//	GET    faults / POST faults {fault} / DELETE faults
//	POST   users/{sub}/revoke-grants            {"revoked": n}
//	PUT    users/{sub}/groups {"groups": [...]}  the user's groups (the post-login Action's groups claim)
//	PUT    users/{sub}/roles {"roles": [...]}    the user's roles (its roles claim)
type Admin struct {
	rec    *Recorder
	faults *Faults
	b      Backend
	token  string
	mux    *http.ServeMux
}

// NewAdmin builds the admin API. A non-empty token is required as a Bearer token on every call.
func NewAdmin(rec *Recorder, faults *Faults, b Backend, token string) *Admin {
	a := &Admin{rec: rec, faults: faults, b: b, token: token, mux: http.NewServeMux()}
	p := AdminPrefix
	a.mux.HandleFunc("GET "+p+"requests", a.getRequests)
	a.mux.HandleFunc("DELETE "+p+"requests", func(w http.ResponseWriter, _ *http.Request) { a.rec.Reset(); w.WriteHeader(http.StatusNoContent) })
	a.mux.HandleFunc("GET "+p+"clock", a.getClock)
	a.mux.HandleFunc("POST "+p+"clock/advance", a.advance)
	a.mux.HandleFunc("GET "+p+"keys", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"kids": a.b.SigningKeyIDs()})
	})
	a.mux.HandleFunc("POST "+p+"keys/rotate", a.rotate)
	a.mux.HandleFunc("DELETE "+p+"keys/{kid}", func(w http.ResponseWriter, r *http.Request) {
		if err := a.b.RevokeSigningKey(r.PathValue("kid")); err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	a.mux.HandleFunc("GET "+p+"faults", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"faults": a.faults.List()})
	})
	a.mux.HandleFunc("POST "+p+"faults", a.setFault)
	a.mux.HandleFunc("DELETE "+p+"faults", func(w http.ResponseWriter, _ *http.Request) { a.faults.Clear(); w.WriteHeader(http.StatusNoContent) })
	a.mux.HandleFunc("POST "+p+"users/{sub}/revoke-grants", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]int{"revoked": a.b.RevokeUserGrants(r.PathValue("sub"))})
	})
	a.mux.HandleFunc("PUT "+p+"users/{sub}/groups", func(w http.ResponseWriter, r *http.Request) {
		a.setList(w, r, "groups", a.b.SetUserGroups)
	})
	a.mux.HandleFunc("PUT "+p+"users/{sub}/roles", func(w http.ResponseWriter, r *http.Request) {
		a.setList(w, r, "roles", a.b.SetUserRoles)
	})
	a.mux.HandleFunc(p, func(w http.ResponseWriter, _ *http.Request) {
		adminError(w, http.StatusNotFound, "unknown admin endpoint; see the mockauth0 README for the list")
	})
	return a
}

func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.token != "" {
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(tok), []byte(a.token)) != 1 {
			adminError(w, http.StatusUnauthorized, "admin token required: send Authorization: Bearer <token>")
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	a.mux.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func adminError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (a *Admin) getRequests(w http.ResponseWriter, r *http.Request) {
	var since int64
	if s := r.URL.Query().Get("since"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			adminError(w, http.StatusBadRequest, "since must be a sequence number")
			return
		}
		since = n
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": a.rec.Requests(r.URL.Query().Get("path"), since)})
}

func (a *Admin) getClock(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"now": a.b.Now().UTC().Format(time.RFC3339Nano), "offset_seconds": a.b.ClockOffset().Seconds()})
}

func (a *Admin) advance(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Seconds  float64 `json:"seconds"`
		Duration string  `json:"duration"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
		adminError(w, http.StatusBadRequest, `body must be {"seconds": n} or {"duration": "1h"}`)
		return
	}
	d := time.Duration(body.Seconds * float64(time.Second))
	if body.Duration != "" {
		var err error
		if d, err = time.ParseDuration(body.Duration); err != nil {
			adminError(w, http.StatusBadRequest, fmt.Sprintf("bad duration: %v", err))
			return
		}
	}
	if d <= 0 {
		adminError(w, http.StatusBadRequest, "the clock only moves forward: give a positive duration")
		return
	}
	a.b.Advance(d)
	a.getClock(w, r)
}

// setList replaces one of a user's lists from {"<name>": [...]}.
func (a *Admin) setList(w http.ResponseWriter, r *http.Request, name string, set func(sub string, v []string) error) {
	var body map[string][]string
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body); err != nil || len(body) != 1 || body[name] == nil {
		adminError(w, http.StatusBadRequest, fmt.Sprintf(`body must be {"%s": ["..."]} (an empty list removes them all)`, name))
		return
	}
	if err := set(r.PathValue("sub"), body[name]); err != nil {
		adminError(w, http.StatusNotFound, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{name: body[name]})
}

func (a *Admin) rotate(w http.ResponseWriter, _ *http.Request) {
	kid, err := a.b.RotateSigningKey()
	if err != nil {
		adminError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"kid": kid, "kids": a.b.SigningKeyIDs()})
}

func (a *Admin) setFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&f); err != nil {
		adminError(w, http.StatusBadRequest, "body must be a fault: {\"path\", \"status\", \"latency_ms\", \"drop\", \"count\"}")
		return
	}
	if err := a.faults.Set(f); err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"faults": a.faults.List()})
}
