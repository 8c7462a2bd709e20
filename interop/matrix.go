// Package interop is the interop tier: real MCP clients — the MCP TypeScript SDK's client, the MCP
// Inspector CLI, the official Go SDK's client and mcp-go's client — each driven end to end against
// the reference server and the mock Auth0, with the browser step done by Chromium, and tools that
// really run against a kube-apiserver with the CloudNativePG CRDs. The matrix below is the single
// source of what is tested: TestMatrix runs every cell it marks, and the README's table is generated
// from it (TestREADMETable fails when the table is stale; `make interop-doc` rewrites it).
package interop

import (
	"fmt"
	"strings"
)

// Step is one column of the matrix: one thing a person or a client does.
type Step struct {
	ID, Title string
	// Means says what the cell checks, for the README.
	Means string
}

// Steps are the matrix columns, in the order a flow runs them.
var Steps = []Step{
	{"register", "register", "the client registers itself (dynamic client registration)"},
	{"consent", "consent", "the browser is shown our consent page and approves it"},
	{"login", "log in", "the browser logs in to the mock Auth0; the client gets its code and tokens"},
	{"initialize", "initialize", "`initialize` (or `server/discover` at 2026-07-28) at exactly this version"},
	{"list-tools", "list tools", "`tools/list` returns every tool"},
	{"read-tool", "read tool", "`list_postgres_clusters` runs against the kube-apiserver"},
	{"write-tool", "write tool", "`create_postgres_cluster` creates a Cluster (checked in the API server)"},
	{"refresh", "refresh", "the client's own refresh (`refresh_token` grant) after the access token expired, then `get_cluster_status`"},
	{"call-again", "call again", "a write tool (`scale_postgres_cluster`, dry run) with the refreshed token"},
	{"step-up", "step-up", "a second sign-in where the person unticks write access; a write tool's 403 `insufficient_scope` makes the " +
		"client authorize again with more scope, the person approves write, and the call goes through"},
}

// Versions are the MCP protocol versions the server speaks.
var Versions = []string{"2025-06-18", "2025-11-25", "2026-07-28"}

// Client is one row group of the matrix.
type Client struct {
	ID    string // test name
	Short string // the table's row label
	Name  string // for the README's notes
	// NotSpoken says, per version, why the client cannot be driven at it; every other version is a
	// tested row.
	NotSpoken map[string]string
	// Cannot says, per step, why the client does not do it (the cell is not tested, at any version).
	Cannot map[string]string
	// How says how the client registers, picks its scopes, steps up and refreshes (README notes).
	How string
}

// Clients are the matrix rows.
var Clients = []Client{
	{
		ID:    "ts-sdk",
		Short: "TypeScript SDK 1.32.2",
		Name:  "MCP TypeScript SDK client (`@modelcontextprotocol/sdk` 1.32.2, Node 22)",
		NotSpoken: map[string]string{
			"2026-07-28": "the SDK's newest version is 2025-11-25",
		},
		Cannot: map[string]string{
			"step-up": "on a 403 `insufficient_scope` the SDK calls `auth()`, which refreshes (a refresh cannot widen scope) and then " +
				"gives up with \"Server returned 403 after trying upscoping\" — why the first challenge names every scope",
		},
		How: "registers with DCR; asks for the 401 challenge's scope (`mcp:read mcp:write`); on a 403 it only refreshes " +
			"(a refresh cannot widen scope), so it reaches write tools because the first challenge names every scope; " +
			"refreshes on the 401 of an expired token. At 2025-06-18 the driver offers that version in `initialize` " +
			"(the SDK always offers its newest and accepts an older answer).",
	},
	{
		ID:    "inspector",
		Short: "Inspector CLI 2.12.0",
		Name:  "MCP Inspector CLI (`@modelcontextprotocol/inspector` 2.12.0, Node 22)",
		NotSpoken: map[string]string{
			"2025-06-18": "the CLI offers its newest legacy version (2025-11-25) or the modern one (2026-07-28), nothing older",
		},
		Cannot: map[string]string{
			"step-up": "on a 403 `insufficient_scope` the CLI calls the SDK's `auth()`, which refreshes with the stored refresh token " +
				"(a refresh cannot widen scope), and the CLI stops with \"Unexpected: auth() returned AUTHORIZED without authorization " +
				"code\"; `--relogin` signs in again from scratch",
		},
		How: "one process per command; registers with DCR, keeps tokens in its OAuth state file between commands; asks for " +
			"the challenge's scope; refreshes with the stored refresh token when the server says the access token expired. " +
			"`--protocol-era legacy` (2025-11-25) and `modern` (2026-07-28).",
	},
	{
		ID:    "go-sdk",
		Short: "Go SDK 1.8.0",
		Name:  "official Go SDK client (`github.com/modelcontextprotocol/go-sdk` 1.8.0, `auth.AuthorizationCodeHandler`)",
		How: "registers with DCR; asks for the challenge's scope; steps up by registering again and authorizing with the union " +
			"of granted and challenged scopes, and retries on the same session (bound to the user, not the client: RS-09); " +
			"refreshes through `golang.org/x/oauth2` once its " +
			"token's expiry has passed (the test moves the client's clock and the server's together).",
	},
	{
		ID:    "mcp-go",
		Short: "mcp-go 1.2.1",
		Name:  "mcp-go client (`github.com/mark3labs/mcp-go` 1.2.1, `client.NewOAuthStreamableHttpClient`)",
		Cannot: map[string]string{
			"step-up": "mcp-go has no step-up: a 403 is an error to the application, and it requests the scopes the application configured",
		},
		How: "the application registers (DCR) and runs the browser step when mcp-go returns `OAuthAuthorizationRequiredError`; " +
			"mcp-go sends the scopes the application configured — none here, so the server offers all it grants; no step-up; " +
			"refreshes when the stored token's expiry has passed (the test moves both clocks).",
	},
}

// Cell is one tested (client, version) flow.
type Cell struct {
	Client  Client
	Version string
}

// Name is the cell's test name.
func (c Cell) Name() string { return c.Client.ID + "/" + c.Version }

// Cells lists every tested flow, client by client.
func Cells() []Cell {
	var out []Cell
	for _, c := range Clients {
		for _, v := range Versions {
			if _, skip := c.NotSpoken[v]; !skip {
				out = append(out, Cell{Client: c, Version: v})
			}
		}
	}
	return out
}

// Table renders the matrix as the README shows it.
func Table() string {
	var b strings.Builder
	b.WriteString("| client | MCP version |")
	for _, s := range Steps {
		b.WriteString(" " + s.Title + " |")
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(Steps)) + "\n")
	for _, c := range Clients {
		for _, v := range Versions {
			fmt.Fprintf(&b, "| %s | %s |", c.Short, v)
			if why, skip := c.NotSpoken[v]; skip {
				fmt.Fprintf(&b, " — not spoken: %s |%s\n", why, strings.Repeat(" |", len(Steps)-1))
				continue
			}
			for _, st := range Steps {
				if _, no := c.Cannot[st.ID]; no {
					b.WriteString(" — |")
				} else {
					b.WriteString(" ✓ |")
				}
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\n✓ = a test, `TestMatrix/<client>/<version>/<step>`; CI fails unless every one passes. — = the client cannot\n" +
		"be made to speak that version, or does not do that step (below).\n\n")
	for _, s := range Steps {
		fmt.Fprintf(&b, "- **%s**: %s\n", s.Title, s.Means)
	}
	b.WriteString("\nHow each client does it:\n\n")
	for _, c := range Clients {
		fmt.Fprintf(&b, "- **%s** — %s: %s", c.Short, c.Name, c.How)
		for _, st := range Steps {
			if why, no := c.Cannot[st.ID]; no {
				fmt.Fprintf(&b, " No %s: %s.", st.Title, why)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
