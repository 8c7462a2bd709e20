package oauthproxy

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"strings"
)

// The pages we show people: the consent page and every error or interstitial page. They share one
// stylesheet (a card, light and dark through prefers-color-scheme), carry no JavaScript and load
// nothing: the stylesheet is inline and allowed by its hash, so the CSP needs no 'unsafe-inline'
// (TestPageCSPHash). Screenshots: docs/screenshots (make screenshots); accessibility: the axe-core
// check in interop/pages.

// pageCSS is the whole stylesheet. Colours meet WCAG AA contrast in both schemes.
const pageCSS = `:root{color-scheme:light dark;--bg:#f3f4f6;--card:#fff;--fg:#1f2328;--muted:#57606a;--line:#d0d7de;` +
	`--accent:#0a58ca;--accent-fg:#fff;--accent-hover:#084298;--warn-bg:#fff8c5;--warn-line:#bf8700;--ok-bg:#dafbe1;--ok-fg:#116329;` +
	`--no-bg:#fff1e5;--no-fg:#953800;--err:#cf222e}` +
	`@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--card:#161b22;--fg:#e6edf3;--muted:#9da7b3;--line:#3d444d;` +
	`--accent:#4c9aff;--accent-fg:#0d1117;--accent-hover:#79b4ff;--warn-bg:#2e2410;--warn-line:#bb8009;--ok-bg:#12261e;--ok-fg:#56d364;` +
	`--no-bg:#2d1b0e;--no-fg:#f0883e;--err:#f85149}}` +
	`*{box-sizing:border-box}` +
	`body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",sans-serif}` +
	`main{max-width:34rem;margin:0 auto;padding:2.5rem 1rem}` +
	`.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:1.75rem}` +
	`.card.error{border-top:4px solid var(--err)}` +
	`.eyebrow{margin:0 0 .25rem;color:var(--muted);font-size:.875rem}` +
	`h1{font-size:1.375rem;line-height:1.3;margin:0 0 1.25rem}` +
	`h2,legend{font-size:.8125rem;font-weight:600;letter-spacing:.02em;text-transform:uppercase;color:var(--muted);margin:0 0 .375rem;padding:0}` +
	`section{border-top:1px solid var(--line);padding:1rem 0}` +
	`p{margin:0 0 .5rem}.muted{color:var(--muted)}.small{font-size:.875rem}` +
	`code{font:.875em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}` +
	`.name{font-size:1.125rem;font-weight:600;overflow-wrap:anywhere}` +
	`.badge{display:inline-block;margin-left:.5rem;padding:0 .5rem;border-radius:999px;font-size:.75rem;font-weight:600;vertical-align:.15em}` +
	`.badge.ok{background:var(--ok-bg);color:var(--ok-fg)}.badge.no{background:var(--no-bg);color:var(--no-fg)}` +
	`.dest{font:600 1.25rem/1.3 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere;margin:.125rem 0 .25rem}` +
	`.notice{background:var(--warn-bg);border:1px solid var(--warn-line);border-radius:8px;padding:.75rem 1rem;margin:0 0 1rem}` +
	`fieldset{border:0;margin:0;padding:0;min-width:0}` +
	`ul.scopes{list-style:none;margin:.25rem 0 .5rem;padding:0}` +
	`ul.scopes li{display:flex;gap:.625rem;align-items:flex-start;padding:.5rem 0}` +
	`ul.scopes li+li{border-top:1px dashed var(--line)}` +
	`.tick{flex:none;width:1.125rem;text-align:center;color:var(--ok-fg);font-weight:700}` +
	`input[type=checkbox]{flex:none;width:1.125rem;height:1.125rem;margin:.2rem 0 0;accent-color:var(--accent)}` +
	`label{cursor:pointer}.desc{display:block}` +
	`.actions{display:flex;flex-wrap:wrap;gap:.75rem;margin-top:1.25rem}` +
	`button,.button{font:inherit;font-weight:600;border-radius:8px;padding:.625rem 1.5rem;cursor:pointer;text-decoration:none;display:inline-block;border:1px solid transparent}` +
	`.primary{background:var(--accent);color:var(--accent-fg);border-color:var(--accent)}.primary:hover{background:var(--accent-hover);border-color:var(--accent-hover)}` +
	`.secondary{background:transparent;color:var(--fg);border-color:var(--line)}.secondary:hover{border-color:var(--muted)}` +
	`a{color:var(--accent)}` +
	`:focus-visible{outline:3px solid var(--accent);outline-offset:2px}` +
	`footer{margin-top:1rem;text-align:center}`

// styleHash is the CSP source that allows exactly pageCSS.
var styleHash = func() string {
	h := sha256.Sum256([]byte(pageCSS))
	return "'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'"
}()

// secureHTMLHeaders are set on every page we render (consent, errors, interstitials): no framing
// (PXY-04: X-Frame-Options and CSP frame-ancestors as a header, not a meta tag), no caching
// (PXY-19), no referrer, no sniffing, no script at all and only our own stylesheet. No form-action
// directive: Chrome applies it to the redirect chain after the POST (to the upstream, then to
// custom-scheme clients).
func secureHTMLHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src "+styleHash+"; img-src data:; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

const pageHead = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark">
<title>{{.Title}}</title><style>` + pageCSS + `</style></head><body><main>`

var pageTmpl = template.Must(template.New("page").Parse(pageHead + `<div class="card{{if .Error}} error{{end}}">
<h1>{{.Title}}</h1><p>{{.Message}}</p>
{{if .Link}}<section aria-labelledby="dest-h"><h2 id="dest-h">The link below goes to</h2><p class="dest">{{.LinkHost}}</p>
<p class="muted small">Only follow it if you recognise this address as the application you were signing in to.</p>
<div class="actions"><a class="button primary" id="continue" href="{{.Link}}">Return to the application at {{.LinkHost}}</a></div></section>{{end}}
</div></main></body></html>`))

type pageData struct {
	Title, Message string
	Link           template.URL // a registered redirect URI (dangerous schemes are refused at registration)
	LinkHost       string
	// Error marks the card as an error (the interstitial of AZ-10 is one too; a plain notice is not).
	Error bool
}

// registeredLink marks a URL built from a registered redirect URI as safe for an href. html/template
// would otherwise replace private-use schemes such as cursor:// with "#ZgotmplZ", leaving the user no
// way back to a native application. The schemes registration refuses are refused here again.
func registeredLink(u string) template.URL {
	scheme, _, ok := strings.Cut(u, ":")
	if !ok {
		return ""
	}
	switch strings.ToLower(strings.TrimSpace(scheme)) {
	case "javascript", "data", "vbscript", "file", "":
		return ""
	}
	return template.URL(u) //nolint:gosec // validated at registration and above
}

// page renders an HTML message (errors shown to the user instead of redirecting, AZ-02/AZ-03).
// Every status ≥ 400 is shown as an error.
func page(w http.ResponseWriter, status int, d pageData) {
	secureHTMLHeaders(w)
	w.WriteHeader(status)
	d.Error = d.Error || status >= 400
	_ = pageTmpl.Execute(w, d)
}

var consentTmpl = template.Must(template.New("consent").Parse(pageHead + `<div class="card">
<p class="eyebrow">Authorization request</p>
<h1>Allow <span id="client-name">{{.ClientName}}</span> to use {{.ResourceName}}?</h1>
<section aria-labelledby="app-h"><h2 id="app-h">Application</h2>
<p><span class="name" id="client-display">{{.ClientName}}</span>{{if .VerifiedDomain}}<span class="badge ok">Verified</span></p>
<p class="muted small">Its identity is published by <strong id="verified-domain">{{.VerifiedDomain}}</strong>.</p>{{else}}<span class="badge no">Unverified</span></p>
<p class="muted small">It registered itself with this server; its name is not verified.</p>{{end}}
<p class="muted small">Client ID <code id="client-id">{{.ClientID}}</code></p></section>
<section aria-labelledby="dest-h"><h2 id="dest-h">After you approve, you will be sent to</h2>
<p class="dest" id="redirect-host">{{.RedirectHost}}</p>
<p class="muted small"><code id="redirect-uri">{{.RedirectURI}}</code></p>
{{if .LocalRedirect}}<div class="notice" id="localhost-warning"><strong>Warning:</strong> this application receives the authorization on this computer
(<code>{{.RedirectHost}}</code>). Only approve if you started the sign-in from a program you trust on this machine.</div>{{end}}</section>
<form method="post" action="">
<input type="hidden" name="txn" value="{{.Txn}}"><input type="hidden" name="csrf_token" value="{{.CSRF}}">
<section><fieldset><legend>{{.ClientName}} will be able to</legend>
{{if .Choice}}<input type="hidden" name="scope_choice" value="1">{{end}}<ul class="scopes" id="scopes">
{{range $i, $s := .Scopes}}<li>{{if $s.Optional}}<input type="checkbox" name="scope" value="{{$s.Name}}" id="scope-{{$i}}" checked aria-describedby="scope-{{$i}}-code"><label for="scope-{{$i}}">{{else}}<span class="tick" aria-hidden="true">✓</span><span>{{end}}<span class="desc">{{$s.Description}}</span>
<span class="muted small" id="scope-{{$i}}-code"><code>{{$s.Name}}</code>{{if not $s.Optional}}{{if $.Choice}} · always included{{end}}{{end}}</span>{{if $s.Optional}}</label>{{else}}</span>{{end}}</li>
{{end}}</ul>
{{if .Choice}}<p class="muted small">Untick what you do not want to allow. The application can ask again later.</p>{{end}}
<p class="muted small">Resource <code id="resource">{{.Resource}}</code></p></fieldset></section>
<p>You will sign in with your identity provider next. Only approve if you started this from {{.ClientName}}.</p>
<div class="actions"><button type="submit" name="action" value="approve" id="approve" class="primary">Approve</button>
<button type="submit" name="action" value="deny" id="deny" class="secondary">Deny</button></div>
</form></div></main></body></html>`))

type consentData struct {
	Title                                string
	ClientName, ClientID, VerifiedDomain string
	RedirectURI, RedirectHost            string
	LocalRedirect                        bool
	Scopes                               []consentScope
	// Choice is set when at least one scope can be unticked (the form then says so with
	// scope_choice=1 and sends the ticked scopes).
	Choice                 bool
	Resource, ResourceName string
	Txn, CSRF              string
}

// consentScope is one requested scope as the consent page shows it.
type consentScope struct {
	Name, Description string
	// Optional scopes get a checkbox (ticked); the others (Options.BaseScopes) are always granted.
	Optional bool
}
