// Package conformance is the MCP authorization conformance suite: it drives an MCP server's
// authorization (protected-resource metadata, authorization-server metadata, dynamic client
// registration, PKCE, the consent page, token, refresh and revocation) from the outside, through a
// real headless Chromium, and grades it against the check catalogue in
// shared/spec/auth-checks.md (sections C and D), one Ginkgo spec per check ID.
//
// Sub-packages, one job each:
//
//	catalogue    the check IDs, levels, areas and spec versions (data only)
//	checks       the check implementations, grouped by catalogue section, and the tiny harness they run in
//	suite        Ginkgo wiring: one labelled spec per check, run as a library inside a binary
//	oauthclient  the suite's own strict OAuth client (discovery, DCR, PKCE, token, refresh, revoke)
//	redirect     the loopback listener that plays the client's redirect URI
//	browser      chromedp around Debian's Chromium: one process per run, an isolated context per flow
//	login        browser drivers for the upstream login page and the consent page
//	consentform  HTML consent-form parsing for the attacker-side (plain HTTP) checks
//	evidence     what a check saw: HTTP exchanges with secrets elided, decoded tokens, screenshots
//	report       JUnit XML, JSON, a self-contained HTML page and the terminal summary
//	upstream     the upstream IdP's view (the mock Auth0's request log) for checks that need it
//	cmd/mcp-auth-conformance  the CLI
package conformance
