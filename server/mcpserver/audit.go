package mcpserver

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/cnpg-mcp/cnpg-mcp/server/identity"
)

// secretArg reports whether an argument must not be logged.
func secretArg(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"password", "secret", "token", "credential", "key"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// RedactArguments returns a copy of args with secret values replaced.
func RedactArguments(args map[string]any) map[string]any {
	out := make(map[string]any, len(args))
	for k, v := range args {
		if secretArg(k) {
			out[k] = "<redacted>"
			continue
		}
		if s, ok := v.(string); ok && len(s) > 256 {
			v = s[:256] + "...(truncated)"
		}
		out[k] = v
	}
	return out
}

// objectOf names the object a call is about, from the conventional argument names.
func objectOf(args map[string]any) string {
	var parts []string
	for _, k := range []string{"cluster_name", "name", "role_name", "database_name", "instance", "backup_name"} {
		if v, ok := args[k].(string); ok && v != "" {
			parts = append(parts, v)
		}
	}
	return strings.Join(parts, "/")
}

// resultClass is the bounded label used in metrics and the audit line.
func resultClass(res *mcp.CallToolResult, err error, dryRun bool) string {
	switch {
	case err != nil || res == nil:
		return "error"
	case res.NeedsInput():
		return "input_required"
	case res.IsError:
		return "error"
	case dryRun:
		return "dry_run"
	}
	return "ok"
}

// audit writes the one line per tool call and records metrics.
func (s *Server) audit(ctx context.Context, req *mcp.CallToolRequest, res *mcp.CallToolResult, err error) {
	var d time.Duration
	if v, ok := s.starts.LoadAndDelete(req); ok {
		d = time.Since(v.(time.Time))
	}
	args := req.GetArguments()
	dry, _ := args["dry_run"].(bool)
	class := resultClass(res, err, dry)
	tool := req.Params.Name
	if _, known := s.tools[tool]; !known {
		tool = "unknown"
	}
	if s.opts.Observer != nil {
		s.opts.Observer.ObserveToolCall(tool, class, d)
	}
	attrs := []slog.Attr{
		slog.String("tool", req.Params.Name),
		slog.Any("arguments", RedactArguments(args)),
		slog.String("namespace", stringArg(args, "namespace")),
		slog.String("object", objectOf(args)),
		slog.Bool("dry_run", dry),
		slog.String("result", class),
		slog.Int64("duration_ms", d.Milliseconds()),
	}
	if id, ok := identity.FromContext(ctx); ok {
		attrs = append(attrs, slog.String("sub", id.Subject), slog.String("client_id", id.ClientID), slog.String("token_id", id.TokenID))
		if id.Kube != nil && id.Kube.Name != "" {
			// The Kubernetes user the call acted as (kubernetes.identity: impersonate), matching the
			// API server's audit log (impersonatedUser).
			attrs = append(attrs, slog.String("kube_user", id.Kube.Name), slog.Any("kube_groups", id.Kube.Groups))
		}
	} else {
		attrs = append(attrs, slog.String("sub", ""), slog.String("client_id", ""))
	}
	switch {
	case err != nil:
		attrs = append(attrs, slog.String("error", err.Error()))
	case res != nil && res.IsError:
		attrs = append(attrs, slog.String("error", firstText(res)))
	}
	s.opts.Logger.LogAttrs(ctx, slog.LevelInfo, "tool call", attrs...)
}

func stringArg(args map[string]any, k string) string {
	v, _ := args[k].(string)
	return v
}

func firstText(res *mcp.CallToolResult) string {
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			if len(t.Text) > 512 {
				return t.Text[:512] + "..."
			}
			return t.Text
		}
	}
	return ""
}
