// Package evidence records what a check saw, in a form fit to publish: every HTTP exchange
// (request, response status, headers and body), decoded tokens, the browser's navigations and a
// screenshot of the step that failed.
//
// Secrets never reach a report in clear: tokens, codes, verifiers, passwords, client secrets and
// cookie values are replaced by a placeholder with their length and a short SHA-256 prefix, so a
// reader can still see that the same code was sent twice. JWTs are shown decoded (header and
// claims) with the signature elided; JWEs show their protected header only.
package evidence

import (
	"context"
	"sync"
	"time"
)

// Exchange is one HTTP request and its response.
type Exchange struct {
	Label      string    `json:"label,omitempty"`
	Time       time.Time `json:"time"`
	DurationMS float64   `json:"durationMs"`
	Request    Request   `json:"request"`
	Response   *Response `json:"response,omitempty"`
	Error      string    `json:"error,omitempty"`
	Tokens     []Token   `json:"tokens,omitempty"`
}

// Request is the redacted request.
type Request struct {
	Method string              `json:"method"`
	URL    string              `json:"url"`
	Header map[string][]string `json:"header,omitempty"`
	Body   string              `json:"body,omitempty"`
}

// Response is the redacted response.
type Response struct {
	Status int                 `json:"status"`
	Header map[string][]string `json:"header,omitempty"`
	Body   string              `json:"body,omitempty"`
}

// Screenshot is a PNG of the browser at a step.
type Screenshot struct {
	Label string `json:"label"`
	URL   string `json:"url,omitempty"`
	PNG   []byte `json:"png"`
}

// Navigation is a document the browser loaded.
type Navigation struct {
	Session        string    `json:"session"`
	Time           time.Time `json:"time"`
	Method         string    `json:"method"`
	URL            string    `json:"url"`
	RedirectStatus int64     `json:"redirectStatus,omitempty"`
}

// Record collects the evidence of one check. It is safe for concurrent use.
type Record struct {
	mu          sync.Mutex
	exchanges   []Exchange
	screenshots []Screenshot
	navigations []Navigation
	notes       []string
	tokens      []Token
}

// Snapshot is a Record's content.
type Snapshot struct {
	Exchanges   []Exchange   `json:"exchanges,omitempty"`
	Navigations []Navigation `json:"navigations,omitempty"`
	Tokens      []Token      `json:"tokens,omitempty"`
	Notes       []string     `json:"notes,omitempty"`
	Screenshots []Screenshot `json:"screenshots,omitempty"`
}

// AddExchange appends an exchange.
func (r *Record) AddExchange(e Exchange) {
	r.mu.Lock()
	r.exchanges = append(r.exchanges, e)
	r.mu.Unlock()
}

// AddScreenshot appends a screenshot (empty PNGs are ignored).
func (r *Record) AddScreenshot(s Screenshot) {
	if len(s.PNG) == 0 {
		return
	}
	s.URL = RedactURL(s.URL)
	r.mu.Lock()
	r.screenshots = append(r.screenshots, s)
	r.mu.Unlock()
}

// AddNavigation appends a browser navigation (its URL redacted).
func (r *Record) AddNavigation(n Navigation) {
	n.URL = RedactURL(n.URL)
	r.mu.Lock()
	r.navigations = append(r.navigations, n)
	r.mu.Unlock()
}

// AddToken records a decoded token that did not come through a recorded exchange.
func (r *Record) AddToken(field, raw string) {
	tok := DecodeToken(field, raw)
	r.mu.Lock()
	r.tokens = append(r.tokens, tok)
	r.mu.Unlock()
}

// Note appends a free-text line (already free of secrets).
func (r *Record) Note(s string) {
	r.mu.Lock()
	r.notes = append(r.notes, s)
	r.mu.Unlock()
}

// Snapshot copies the content.
func (r *Record) Snapshot() Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Snapshot{
		Exchanges:   append([]Exchange(nil), r.exchanges...),
		Navigations: append([]Navigation(nil), r.navigations...),
		Tokens:      append([]Token(nil), r.tokens...),
		Notes:       append([]string(nil), r.notes...),
		Screenshots: append([]Screenshot(nil), r.screenshots...),
	}
}

type labelKey struct{}

// WithLabel names the exchanges made with ctx ("redeem the code a second time").
func WithLabel(ctx context.Context, label string) context.Context {
	return context.WithValue(ctx, labelKey{}, label)
}

func labelFrom(ctx context.Context) string {
	s, _ := ctx.Value(labelKey{}).(string)
	return s
}
