// Package peers runs mcp-auth-conformance against MCP authorization implementations this project did
// not write — installed from npm at pinned versions, each in front of this repository's mock Auth0 —
// and checks the suite's verdict for every check ID against an expectation file checked in beside
// the peer (expected.yaml), in which every failure is justified by what the server did.
//
// One directory per peer under conformance/peers/: the peer program (server.mjs), its npm
// dependencies (package.json and package-lock.json: exact versions, installed with `npm ci` into a
// cache outside the repository), expected.yaml and RESULT.md (the last run, written on request).
// `make conformance-peers` runs TestPeers; see conformance/README.md, "Peers".
package peers

import (
	"fmt"
	"strconv"

	mockconfig "github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
)

// Peer is one third-party implementation and how to put it in front of the mock Auth0.
type Peer struct {
	// Name is the peer's directory under conformance/peers.
	Name string
	// Title says what the peer is, for RESULT.md.
	Title string
	// Wiring says how server.mjs uses the peer's API, for RESULT.md.
	Wiring string
	// Server is the program node runs, in the peer's directory.
	Server string
	// MinNode is the lowest Node.js major version the peer's packages support.
	MinNode int
	// MockArgs are the mock Auth0's flags beyond --addr and --admin, given the peer's base URL
	// (http://localhost:PORT) and MCP URL.
	MockArgs func(base, mcpURL string) []string
	// Env is the peer's environment beyond PATH: the upstream issuer and its port.
	Env func(issuer string, port int) []string
	// SuiteArgs are mcp-auth-conformance's flags beyond --target, --mock-auth0-admin and the reports.
	SuiteArgs func(base, mcpURL string) []string
}

// suiteArgs are the suite's flags for every peer: the mock's default application, with which the
// suite obtains upstream tokens directly (RS-05: an upstream token for the MCP URL's audience must
// not be accepted), and a scope with offline_access, so that the upstream (Auth0 issues refresh
// tokens only for offline_access) issues a refresh token and the refresh and revocation rows run.
// Neither peer lists offline_access in its metadata: the suite's default scope would not ask for it.
func suiteArgs(mcpURL string) []string {
	return []string{
		"--upstream-client-id", mockconfig.DefaultClientID, "--upstream-client-secret", mockconfig.DefaultClientSecret,
		"--upstream-audience", mcpURL,
		"--scope", "openid profile email offline_access",
	}
}

// All returns the peers, in the order they run.
func All() []Peer {
	return []Peer{
		{
			Name:  "ts-sdk-proxy",
			Title: "the MCP TypeScript SDK's ProxyOAuthServerProvider",
			Wiring: "`@modelcontextprotocol/sdk` `ProxyOAuthServerProvider` + `mcpAuthRouter` + `requireBearerAuth` " +
				"(see `server.mjs`): a pass-through proxy — registrations go to the upstream's DCR endpoint, tokens are the upstream's",
			Server:  "server.mjs",
			MinNode: 18,
			// The SDK forwards the client's `resource`; Auth0 accepts it only as an API identifier
			// under its resource-parameter compatibility profile.
			MockArgs: func(base, mcpURL string) []string {
				return []string{"--api", mcpURL, "--resource-parameter-profile", "audience"}
			},
			Env: func(issuer string, port int) []string {
				return []string{"UPSTREAM_ISSUER=" + issuer, "PORT=" + strconv.Itoa(port)}
			},
			SuiteArgs: func(base, mcpURL string) []string { return suiteArgs(mcpURL) },
		},
		{
			Name:  "fastmcp-ts",
			Title: "fastmcp (TypeScript) and its OAuth proxy",
			Wiring: "`fastmcp` `FastMCP` with `auth: new OAuthProvider({...})`, its documented wiring for Auth0 " +
				"(see `server.mjs`): the proxy registers clients itself, sends users to the upstream under one " +
				"pre-registered application and issues its own tokens",
			Server:  "server.mjs",
			MinNode: 20,
			MockArgs: func(base, mcpURL string) []string {
				return []string{"--callback", base + "/oauth/callback", "--api", mcpURL}
			},
			Env: func(issuer string, port int) []string {
				return []string{"UPSTREAM_ISSUER=" + issuer, "PORT=" + strconv.Itoa(port),
					"UPSTREAM_CLIENT_ID=" + mockconfig.DefaultClientID, "UPSTREAM_CLIENT_SECRET=" + mockconfig.DefaultClientSecret}
			},
			SuiteArgs: func(base, mcpURL string) []string { return suiteArgs(mcpURL) },
		},
	}
}

// Lookup returns the peer named name.
func Lookup(name string) (Peer, error) {
	for _, p := range All() {
		if p.Name == name {
			return p, nil
		}
	}
	return Peer{}, fmt.Errorf("no peer %q under conformance/peers", name)
}
