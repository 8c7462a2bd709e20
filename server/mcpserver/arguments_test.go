package mcpserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/cnpg-mcp/cnpg-mcp/server/mcpserver"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
)

// notConfigured stands in for the server without a Kubernetes configuration: a call whose arguments
// pass validation answers with it, which proves the call got past the argument check.
var notConfigured = errors.New("no Kubernetes configuration found (test)")

// inProcess serves every tool over mcp-go's in-process transport (no HTTP, no Kubernetes).
func inProcess(t *testing.T, opts mcpserver.Options) *mcpclient.Client {
	t.Helper()
	if opts.Tools == nil {
		opts.Tools = tools.All(&tools.Deps{Unavailable: notConfigured})
	}
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := mcpserver.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := mcpclient.NewInProcessClient(srv.MCPServer())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
	init.Params.ProtocolVersion = "2025-06-18"
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	return c
}

func callText(t *testing.T, c *mcpclient.Client, name string, args any) (string, bool) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	res, err := c.CallTool(context.Background(), req)
	if err != nil {
		t.Fatalf("%s(%v): %v", name, args, err)
	}
	var parts []string
	for _, ct := range res.Content {
		if tc, ok := ct.(mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n"), res.IsError
}

type propSchema struct {
	Type    string   `json:"type"`
	Enum    []any    `json:"enum"`
	Minimum *float64 `json:"minimum"`
	Maximum *float64 `json:"maximum"`
	MaxLen  *int     `json:"maxLength"`
}

type toolSchema struct {
	Properties map[string]propSchema `json:"properties"`
	Required   []string              `json:"required"`
}

func schemaOf(t *testing.T, tool mcp.Tool) toolSchema {
	t.Helper()
	b, err := json.Marshal(tool.InputSchema)
	if err != nil {
		t.Fatal(err)
	}
	var s toolSchema
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// valid returns a value the schema accepts.
func (p propSchema) valid() any {
	if len(p.Enum) > 0 {
		return p.Enum[0]
	}
	switch p.Type {
	case "integer", "number":
		if p.Minimum != nil {
			return *p.Minimum
		}
		return 1
	case "boolean":
		return false
	case "array":
		return []any{}
	case "object":
		return map[string]any{}
	}
	return "pg"
}

// wrong returns a value of another JSON type, and how the message names that type.
func (p propSchema) wrong() (any, string) {
	switch p.Type {
	case "string":
		return 42, "a number"
	case "boolean":
		return "yes", "a string"
	default:
		return true, "true or false"
	}
}

var typeNouns = map[string]string{"integer": "a whole number", "number": "a number", "string": "a string", "boolean": "true or false", "array": "a list", "object": "an object"}

// plainWords fails when msg reads like a Go value or a validator dump rather than a sentence.
func plainWords(t *testing.T, what, msg string) {
	t.Helper()
	for _, bad := range []string{"&{", "<root>", "input schema validation failed", "json:", "Go struct", "map[", "[]interface", "*big.Rat"} {
		if strings.Contains(msg, bad) {
			t.Errorf("%s: the message contains %q: %s", what, bad, msg)
		}
	}
}

// Every registered tool, called with no arguments, with one argument of the wrong type (each
// argument in turn), with an unknown argument, with an enum value it does not allow and with a
// number outside its range, answers with a plain sentence naming the arguments — and with valid
// arguments gets past the check (here: to the "no Kubernetes" answer).
func TestArgumentErrorsInPlainWordsForEveryTool(t *testing.T) {
	c := inProcess(t, mcpserver.Options{})
	list, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Tools) != len(tools.All(&tools.Deps{})) {
		t.Fatalf("%d tools listed", len(list.Tools))
	}
	for _, tool := range list.Tools {
		t.Run(tool.Name, func(t *testing.T) {
			s := schemaOf(t, tool)
			base := map[string]any{}
			for _, r := range s.Required {
				base[r] = s.Properties[r].valid()
			}
			with := func(k string, v any) map[string]any {
				m := map[string]any{k: v}
				for bk, bv := range base {
					if bk != k {
						m[bk] = bv
					}
				}
				return m
			}

			msg, isErr := callText(t, c, tool.Name, base)
			if !isErr || !strings.Contains(msg, tool.Name+" cannot run") || !strings.Contains(msg, notConfigured.Error()) {
				t.Fatalf("valid arguments %v did not get past the check: %s", base, msg)
			}

			msg, isErr = callText(t, c, tool.Name, nil)
			plainWords(t, "no arguments", msg)
			switch {
			case len(s.Required) == 1:
				want := fmt.Sprintf("%s: missing required argument: %s. Nothing was done", tool.Name, s.Required[0])
				if !isErr || !strings.Contains(msg, want) {
					t.Errorf("no arguments: want %q, got %s", want, msg)
				}
			case len(s.Required) > 1:
				want := fmt.Sprintf("%s: missing required arguments: %s. Nothing was done", tool.Name, strings.Join(s.Required, ", "))
				if !isErr || !strings.Contains(msg, want) {
					t.Errorf("no arguments: want %q, got %s", want, msg)
				}
			default:
				if !strings.Contains(msg, notConfigured.Error()) {
					t.Errorf("no arguments (none required) did not get past the check: %s", msg)
				}
			}

			for name, p := range s.Properties {
				v, got := p.wrong()
				msg, isErr := callText(t, c, tool.Name, with(name, v))
				want := fmt.Sprintf("%s must be %s, not %s", name, typeNouns[p.Type], got)
				if !isErr || !strings.Contains(msg, want) || strings.Contains(msg, "missing") {
					t.Errorf("%s=%v: want %q, got %s", name, v, want, msg)
				}
				plainWords(t, name+" wrong type", msg)

				if len(p.Enum) > 0 {
					msg, _ := callText(t, c, tool.Name, with(name, "nope"))
					var allowed []string
					for _, e := range p.Enum {
						allowed = append(allowed, fmt.Sprintf("%q", e))
					}
					want := fmt.Sprintf("%s must be one of %s (got \"nope\")", name, strings.Join(allowed, ", "))
					if len(allowed) == 1 {
						want = fmt.Sprintf("%s must be %s (got \"nope\")", name, allowed[0])
					}
					if !strings.Contains(msg, want) {
						t.Errorf("%s=nope: want %q, got %s", name, want, msg)
					}
				}
				if p.Maximum != nil {
					msg, _ := callText(t, c, tool.Name, with(name, *p.Maximum+1))
					want := fmt.Sprintf("%s must be at most %v (got %v)", name, *p.Maximum, *p.Maximum+1)
					if p.Minimum != nil {
						want = fmt.Sprintf("%s must be between %v and %v (got %v)", name, *p.Minimum, *p.Maximum, *p.Maximum+1)
					}
					if !strings.Contains(msg, want) {
						t.Errorf("%s above its maximum: want %q, got %s", name, want, msg)
					}
				}
			}

			msg, _ = callText(t, c, tool.Name, with("bogus_argument", 1))
			names := make([]string, 0, len(s.Properties))
			for n := range s.Properties {
				names = append(names, n)
			}
			slices.Sort(names)
			want := "unknown argument: bogus_argument (this tool takes: " + strings.Join(names, ", ") + ")"
			if !strings.Contains(msg, want) {
				t.Errorf("unknown argument: want %q, got %s", want, msg)
			}
		})
	}
}

// The messages the issue quotes, exactly.
func TestArgumentErrorWording(t *testing.T) {
	c := inProcess(t, mcpserver.Options{})
	for _, tc := range []struct {
		tool string
		args any
		want string
	}{
		{"create_postgres_database", map[string]any{}, "create_postgres_database: missing required arguments: cluster_name, database_name, owner. Nothing was done; call it again with corrected arguments."},
		{"scale_postgres_cluster", map[string]any{"name": "pg", "instances": 0}, "scale_postgres_cluster: instances must be between 1 and 10 (got 0). Nothing was done"},
		{"scale_postgres_cluster", map[string]any{"name": "pg", "instances": "three"}, "instances must be a whole number, not a string"},
		{"scale_postgres_cluster", map[string]any{"name": "pg", "instances": 2.5}, "instances must be a whole number, not a number"},
		{"list_postgres_clusters", map[string]any{"format": "yaml"}, `format must be one of "text", "json" (got "yaml")`},
		{"scale_postgres_cluster", map[string]any{"instances": 0, "bogus": true}, "missing required argument: name; unknown argument: bogus (this tool takes: dry_run, instances, name, namespace); instances must be between 1 and 10 (got 0)"},
		{"create_postgres_role", map[string]any{"cluster_name": "pg", "role_name": "app", "in_roles": []any{"a", 3}}, "in_roles[1] must be a string, not a number"},
	} {
		msg, isErr := callText(t, c, tc.tool, tc.args)
		if !isErr || !strings.Contains(msg, tc.want) {
			t.Errorf("%s(%v):\n got %s\nwant %s", tc.tool, tc.args, msg, tc.want)
		}
		plainWords(t, tc.tool, msg)
	}
}
