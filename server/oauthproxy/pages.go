package oauthproxy

import (
	"html/template"
	"net/http"
	"strings"
)

// secureHTMLHeaders are set on every page we render (consent, errors, interstitials): no framing
// (PXY-04: X-Frame-Options and CSP frame-ancestors as a header, not a meta tag), no caching
// (PXY-19), no referrer, no sniffing. No form-action directive: Chrome applies it to the redirect
// chain after the POST (to the upstream, then to custom-scheme clients).
func secureHTMLHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

const style = `<style>body{font-family:system-ui,sans-serif;max-width:38rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}.box{border:1px solid #ccc;border-radius:8px;padding:1rem 1.2rem;margin:1rem 0}
code{word-break:break-all}.warn{background:#fff4e5;border-color:#f0b429}button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.5rem}
dt{font-weight:600;margin-top:.5rem}</style>`

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{.Title}}</title>` + style + `</head><body>
<h1>{{.Title}}</h1><p>{{.Message}}</p>
{{if .Link}}<p><a id="continue" href="{{.Link}}">Return to the application at {{.LinkHost}}</a></p>{{end}}
</body></html>`))

type pageData struct {
	Title, Message string
	Link           template.URL // a registered redirect URI (dangerous schemes are refused at registration)
	LinkHost       string
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
func page(w http.ResponseWriter, status int, d pageData) {
	secureHTMLHeaders(w)
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, d)
}

var consentTmpl = template.Must(template.New("consent").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Authorize {{.ClientName}}</title>` + style + `</head><body>
<h1>Allow <span id="client-name">{{.ClientName}}</span> to use {{.ResourceName}}?</h1>
<div class="box"><dl>
<dt>Application</dt><dd><span id="client-display">{{.ClientName}}</span>{{if .VerifiedDomain}} — client identity published by <strong id="verified-domain">{{.VerifiedDomain}}</strong>{{else}} (registered itself with this server; its name is not verified){{end}}</dd>
<dt>Client ID</dt><dd><code id="client-id">{{.ClientID}}</code></dd>
<dt>After you approve, you will be sent to</dt><dd><strong id="redirect-host">{{.RedirectHost}}</strong><br><code id="redirect-uri">{{.RedirectURI}}</code></dd>
<dt>Access requested</dt><dd><ul id="scopes">{{range .Scopes}}<li><code>{{.}}</code></li>{{end}}</ul></dd>
<dt>Resource</dt><dd><code id="resource">{{.Resource}}</code></dd>
</dl></div>
{{if .LocalRedirect}}<div class="box warn" id="localhost-warning">This application receives the authorization on this computer
(<code>{{.RedirectHost}}</code>). Only approve if you started the sign-in from a program you trust on this machine.</div>{{end}}
<p>You will sign in with your identity provider next. Only approve if you started this from {{.ClientName}}.</p>
<form method="post" action="">
<input type="hidden" name="txn" value="{{.Txn}}"><input type="hidden" name="csrf_token" value="{{.CSRF}}">
<button type="submit" name="action" value="approve" id="approve">Approve</button>
<button type="submit" name="action" value="deny" id="deny">Deny</button>
</form></body></html>`))

type consentData struct {
	ClientName, ClientID, VerifiedDomain string
	RedirectURI, RedirectHost            string
	LocalRedirect                        bool
	Scopes                               []string
	Resource, ResourceName               string
	Txn, CSRF                            string
}
