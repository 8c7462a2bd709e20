// Package tools implements the CloudNativePG MCP tools over the typed API
// (github.com/cloudnative-pg/api, postgresql.cnpg.io/v1) with a controller-runtime client.
//
// One file per area: clusters.go, resize.go, instances.go, roles.go, databases.go, backups.go,
// scheduledbackups.go, poolers.go, operations.go (restart, reload, hibernate, fencing, maintenance),
// logs.go and diagnose.go. This file holds what every tool shares: the Tool type, argument binding,
// namespace policy, dry runs, confirmation (argument or MCP elicitation), output rendering and the
// translation of Kubernetes API errors into short explanations.
package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cnpg-mcp/cnpg-mcp/server/tools/kube"
)

// ScopeRead and ScopeWrite are the OAuth scopes the tools need: every tool needs ScopeRead (checked
// for all requests by the bearer check), mutating tools also ScopeWrite.
const (
	ScopeRead  = "mcp:read"
	ScopeWrite = "mcp:write"
)

// Limits on output size.
const (
	MaxTextChars = 25000 // readable text per result, like upstream cnpg-mcp
	MaxListItems = 200   // items per list result; more are reported as truncated
)

// ClientSource gives each call its Kubernetes clients (*kube.Provider): the server's own, or the
// signed-in user's when the server impersonates users.
type ClientSource interface {
	For(ctx context.Context) (*kube.Clients, error)
}

// Deps are what the tools need from the outside.
type Deps struct {
	// Kube gives each call its clients; when nil, Client and Core serve every call.
	Kube   ClientSource
	Client client.Client        // controller-runtime client with the CNPG scheme
	Core   kubernetes.Interface // pod logs, events
	// Unavailable, when set, is why the server has no Kubernetes access (no configuration found):
	// every tool call answers with it instead of running.
	Unavailable error
	// DefaultNamespace is used when a call names none.
	DefaultNamespace string
	// AllowedNamespaces, when not empty, is the only namespaces tools may touch.
	AllowedNamespaces []string
	// ImageTemplate turns postgres_version into spec.imageName, e.g.
	// "registry.example/cloudnative-pg/postgresql:{version}". Empty: see ImageCatalog.
	ImageTemplate string
	// ImageCatalog names a ClusterImageCatalog used for postgres_version when ImageTemplate is empty.
	ImageCatalog string
	// Now is the clock (tests inject one). Default time.Now.
	Now func() time.Time
	// Logger receives operational messages (the audit line is written by the MCP layer).
	Logger *slog.Logger
	// Instances reads the instance managers' own reports (/pg/status, /metrics). Default: through
	// the API server's pods/proxy subresource with the call's Core (health.go), so in impersonate
	// mode as the signed-in user.
	Instances InstanceReports

	tools []Tool // every tool (set by All), for get_my_permissions
}

// Tool is one MCP tool with its handler and safety metadata.
type Tool struct {
	Def         mcp.Tool
	Handler     server.ToolHandlerFunc
	Area        string   // documentation grouping
	Mutating    bool     // needs ScopeWrite; not registered in read-only mode
	Destructive bool     // asks for confirmation
	Calls       []string // the Kubernetes API calls it makes, for docs/tools.md
}

// Scopes returns the scopes a call of the tool needs beyond ScopeRead.
func (t Tool) Scopes() []string {
	if t.Mutating {
		return []string{ScopeWrite}
	}
	return nil
}

// All returns every tool, in documentation order.
func All(d *Deps) []Tool {
	d.defaults()
	var out []Tool
	for _, area := range []func(*Deps) []Tool{
		clusterTools, resizeTools, instanceTools, roleTools, databaseTools,
		backupTools, scheduledBackupTools, recoverabilityTools, restoreTools, poolerTools, operationTools, logTools, diagnoseTools,
		permissionTools,
		benchTools, // none, except in the benchmark's build (benchtool.go)
	} {
		out = append(out, area(d)...)
	}
	d.tools = out
	return out
}

func (d *Deps) defaults() {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.DefaultNamespace == "" {
		d.DefaultNamespace = "default"
	}
}

// spec describes a tool declaratively; build turns it into a Tool.
type spec struct {
	name, title, area, desc string
	readOnly, destructive   bool
	idempotent              bool
	params                  []mcp.ToolOption
	calls                   []string
}

func build[A any](d *Deps, s spec, fn func(ctx context.Context, c *call, a *A) (*Result, error)) Tool {
	opts := []mcp.ToolOption{
		mcp.WithDescription(s.desc),
		mcp.WithTitleAnnotation(s.title),
		mcp.WithReadOnlyHintAnnotation(s.readOnly),
		mcp.WithDestructiveHintAnnotation(s.destructive),
		mcp.WithIdempotentHintAnnotation(s.idempotent),
		mcp.WithOpenWorldHintAnnotation(false),
	}
	opts = append(opts, s.params...)
	def := mcp.NewTool(s.name, opts...)
	if def.InputSchema.AdditionalProperties == nil {
		def.InputSchema.AdditionalProperties = false // unknown arguments are refused, and tools/list says so
	}
	args := newArgumentSchema(def)
	handler := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		raw, err := rawArguments(req)
		if err != nil {
			return errorResult(decodeMessage(s.name, err)), nil
		}
		if msg := args.check(raw); msg != "" {
			return errorResult(msg), nil
		}
		var a A
		if len(raw) > 0 {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&a); err != nil {
				return errorResult(decodeMessage(s.name, err)), nil
			}
		}
		if d.Unavailable != nil {
			return errorResult(fmt.Sprintf("%s cannot run: this MCP server has no access to Kubernetes. Tell the user: %v", s.name, d.Unavailable)), nil
		}
		kc, err := d.clientsFor(ctx)
		if err != nil {
			return errorResult(fmt.Sprintf("%s cannot run: %v", s.name, err)), nil
		}
		c := &call{Deps: d, req: req, tool: s.name, Client: kc.Client, Core: kc.Core, who: kc.User}
		res, err := fn(ctx, c, &a)
		if err != nil {
			return errorResult(c.explain(err)), nil
		}
		if res.raw != nil {
			return res.raw, nil
		}
		return res.render(), nil
	}
	return Tool{Def: def, Handler: handler, Area: s.area, Mutating: !s.readOnly, Destructive: s.destructive, Calls: s.calls}
}

// rawArguments returns the call's arguments as JSON: the bytes the client sent when mcp-go kept them
// (no float64 round trip for large integers), else the re-encoded value; nil when there are none.
func rawArguments(req mcp.CallToolRequest) ([]byte, error) {
	if len(req.Params.RawArguments) > 0 {
		return req.Params.RawArguments, nil
	}
	if req.Params.Arguments == nil {
		return nil, nil
	}
	return json.Marshal(req.Params.Arguments)
}

// clientsFor returns the clients of the call in ctx.
func (d *Deps) clientsFor(ctx context.Context) (*kube.Clients, error) {
	if d.Kube != nil {
		return d.Kube.For(ctx)
	}
	return &kube.Clients{Client: d.Client, Core: d.Core}, nil
}

// call is the per-invocation context handed to a tool function. Its Client and Core are the call's
// own (they shadow the Deps' fields): the signed-in user's when the server impersonates users.
type call struct {
	*Deps
	req    mcp.CallToolRequest
	tool   string
	Client client.Client
	Core   kubernetes.Interface
	// who is the impersonated Kubernetes user ("" when the call runs as the server itself), for
	// messages that say who was denied what.
	who string
}

// explain is explain with the call's user named in authorization errors.
func (c *call) explain(err error) string { return explainAs(err, c.who) }

// namespace resolves and checks the namespace argument.
func (c *call) namespace(ns string) (string, error) {
	if ns == "" {
		ns = c.DefaultNamespace
	}
	if err := checkName("namespace", ns); err != nil {
		return "", err
	}
	if len(c.AllowedNamespaces) > 0 && !slices.Contains(c.AllowedNamespaces, ns) {
		return "", userErrorf("namespace %q is not in this server's namespace allow-list (%s); use one of those namespaces", ns, strings.Join(c.AllowedNamespaces, ", "))
	}
	return ns, nil
}

// Result is what a tool returns: readable text plus structured content.
type Result struct {
	Text string
	Data map[string]any
	// JSONText makes the text content the JSON of Data (upstream's format=json).
	JSONText bool
	raw      *mcp.CallToolResult
}

func (r *Result) render() *mcp.CallToolResult {
	text := r.Text
	if r.JSONText {
		b, _ := json.MarshalIndent(r.Data, "", "  ")
		text = string(b)
	}
	res := &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(truncate(text, MaxTextChars))}}
	if r.Data != nil {
		res.StructuredContent = r.Data
	}
	return res
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 120
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("\n\n... (truncated: %d more characters; narrow the request, e.g. one namespace or object)", len(s)-cut)
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func errorResult(msg string) *mcp.CallToolResult {
	return &mcp.CallToolResult{
		Content:           []mcp.Content{mcp.NewTextContent(truncate(msg, MaxTextChars))},
		StructuredContent: map[string]any{"error": msg},
		IsError:           true,
	}
}

// userError is a mistake in the call that the caller can fix; its message says how.
type userError struct{ msg string }

func (e *userError) Error() string { return e.msg }

func userErrorf(format string, args ...any) error {
	return &userError{msg: fmt.Sprintf(format, args...)}
}

// IsUserError reports whether err is a fixable mistake in the call.
func IsUserError(err error) bool {
	var u *userError
	return errors.As(err, &u)
}

// confirm implements the confirmation rule for destructive tools. It returns (nil, true) to
// proceed. Otherwise it returns the result to send: an elicitation (MCP input_required; older
// protocol versions get a server-initiated elicitation/create bridged by mcp-go) when the client
// declared the elicitation capability, else an error telling the caller to pass confirm: true.
func (c *call) confirm(ctx context.Context, confirmed bool, action string) (*mcp.CallToolResult, bool) {
	if confirmed {
		return nil, true
	}
	if resp := server.ElicitationResponse(c.req.Params.InputResponses, "confirm"); resp != nil {
		if resp.Action == mcp.ElicitationResponseActionAccept {
			if m, ok := resp.Content.(map[string]any); ok && m["confirm"] == true {
				return nil, true
			}
		}
		return errorResult(fmt.Sprintf("%s was not confirmed by the user (%s); nothing was changed", action, resp.Action)), false
	}
	if clientCanElicit(ctx) {
		return server.NewInputRequestBuilder("").Elicit("confirm", mcp.ElicitationParams{
			Message: fmt.Sprintf("Confirm: %s. This cannot be undone.", action),
			RequestedSchema: map[string]any{
				"type": "object",
				"properties": map[string]any{
					"confirm": map[string]any{"type": "boolean", "title": "Yes, " + action, "description": "Set to true to proceed."},
				},
				"required": []string{"confirm"},
			},
		}).ToolResult(), false
	}
	return errorResult(fmt.Sprintf("%s is destructive and needs confirmation: ask the user, then call %s again with confirm: true (or preview it first with dry_run: true); nothing was changed", action, c.tool)), false
}

func clientCanElicit(ctx context.Context) bool {
	if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern {
		return info.ClientCapabilities != nil && info.ClientCapabilities.Elicitation != nil
	}
	if s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo); ok {
		return s.GetClientCapabilities().Elicitation != nil
	}
	return false
}

// --- shared parameter builders ----------------------------------------------------------------

// Shared arguments. Their descriptions are short on purpose: tools/list carries them once per tool
// (the server's instructions explain dry_run and confirmation once), and names are checked by the
// handlers, whose messages say how to fix a bad one (RFC 1123), so the schemas carry no pattern or
// length.

func pNamespace() mcp.ToolOption {
	return mcp.WithString("namespace", mcp.Description("Kubernetes namespace; default: the server's."))
}

func pDryRun() mcp.ToolOption {
	return mcp.WithBoolean("dry_run", mcp.DefaultBool(false), mcp.Description("Preview: return the exact object or patch, change nothing."))
}

func pConfirm(extra string) mcp.ToolOption {
	return mcp.WithBoolean("confirm", mcp.DefaultBool(false), mcp.Description("true once the user agreed"+extra+"; without it the server asks the user (elicitation) or refuses."))
}

func pFormat() mcp.ToolOption {
	return mcp.WithString("format", mcp.Enum("text", "json"), mcp.DefaultString("text"), mcp.Description("'json': the structured result as text."))
}

func pName(name, desc string, required bool) mcp.ToolOption {
	opts := []mcp.PropertyOption{mcp.Description(desc)}
	if required {
		opts = append(opts, mcp.Required())
	}
	return mcp.WithString(name, opts...)
}

// create sends obj (dry run or not) and returns the object as sent, for the result.
func (c *call) create(ctx context.Context, obj client.Object, dry bool) (map[string]any, error) {
	sent := toMap(obj)
	if err := c.Client.Create(ctx, obj, createOpts(dry)...); err != nil {
		return nil, err
	}
	return sent, nil
}
