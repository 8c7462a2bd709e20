package login

import "fmt"

// consentJS defines findConsent(approve) in the page: the configured selector when there is one,
// otherwise the first submit control inside a form whose label, name, value or id reads like
// "approve" (or "deny"). Upstream login forms are excluded by the caller's ordering (the login
// probe wins), and the upstream's own consent form by its selector.
func consentJS(sel Selectors) string {
	return fmt.Sprintf(`
const findConsent = (approve) => {
  const explicit = approve ? %q : %q;
  if (explicit) { return document.querySelector(explicit); }
  const yes = /\b(approve|allow|authori[sz]e|accept|grant|consent|continue)\b/i;
  const no = /\b(deny|reject|decline|cancel|refuse)\b/i;
  const upstream = %q ? document.querySelector(%q) : null;
  const ctrls = Array.from(document.querySelectorAll('form button, form input[type=submit]'));
  for (const c of ctrls) {
    if (upstream && c === upstream) continue;
    const label = [c.textContent || '', c.value || '', c.name || '', c.id || ''].join(' ');
    if (approve ? (yes.test(label) && !no.test(label)) : no.test(label)) return c;
  }
  return null;
};`, sel.Approve, sel.Deny, sel.UpstreamConsent, sel.UpstreamConsent)
}

// probeScript returns a JSON string describing the page.
func probeScript(sel Selectors) string {
	return fmt.Sprintf(`(() => { %s
  const q = (s) => { try { return document.querySelector(s); } catch (e) { return null; } };
  const login = !!(q(%q) && q(%q) && q(%q));
  const upstreamConsent = !!q(%q);
  return JSON.stringify({
    url: document.location.href,
    acted: !!window.__mcpconfActed,
    ready: document.readyState !== 'loading',
    login: login,
    approve: !login && !!findConsent(true),
    deny: !login && !!findConsent(false),
    upstreamConsent: upstreamConsent,
  });
})()`, consentJS(sel), sel.Username, sel.Password, sel.Submit, sel.UpstreamConsent)
}
