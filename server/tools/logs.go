package tools

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Log bounds: a tail is never followed, and bytes are capped per instance and per call.
const (
	maxLogLines         = 1000
	maxLogBytesPerCall  = 512 << 10
	maxLogBytesInstance = 256 << 10
)

func logTools(d *Deps) []Tool {
	return []Tool{
		build(d, spec{
			name: "get_cluster_logs", title: "Tail instance logs", area: "observability", readOnly: true, idempotent: true,
			desc: "Return the last lines of the PostgreSQL container log of each instance of a cluster (or of one instance). Bounded: at most 1000 lines and 256 KiB per instance; never follows. " +
				"CloudNativePG logs are JSON lines.",
			calls: []string{"list pods (labels cnpg.io/cluster, cnpg.io/podRole=instance)", "get pods/log (tailLines, limitBytes, follow=false)"},
			params: []mcp.ToolOption{pName("name", "Cluster name.", true), pName("instance", "Only this instance (pod name).", false),
				mcp.WithInteger("tail_lines", mcp.DefaultNumber(100), mcp.Min(1), mcp.Max(maxLogLines), mcp.Description("Lines per instance (1-1000).")),
				mcp.WithInteger("since_seconds", mcp.Min(1), mcp.Max(7*24*3600), mcp.Description("Only lines newer than this many seconds.")),
				mcp.WithBoolean("previous", mcp.DefaultBool(false), mcp.Description("Log of the previous (crashed) container.")),
				pNamespace()},
		}, clusterLogs),
	}
}

type logsArgs struct {
	Name         string `json:"name"`
	Instance     string `json:"instance"`
	TailLines    *int   `json:"tail_lines"`
	SinceSeconds *int64 `json:"since_seconds"`
	Previous     bool   `json:"previous"`
	Namespace    string `json:"namespace"`
}

// instancePods lists the PostgreSQL instance pods of a cluster, sorted by name.
func (c *call) instancePods(ctx context.Context, ns, cluster string) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := c.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{LabelCluster: cluster, "cnpg.io/podRole": "instance"}); err != nil {
		return nil, err
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	return pods.Items, nil
}

func clusterLogs(ctx context.Context, c *call, a *logsArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	if err := checkName("name", a.Name); err != nil {
		return nil, err
	}
	lines := 100
	if a.TailLines != nil {
		lines = *a.TailLines
	}
	if err := checkRange("tail_lines", lines, 1, maxLogLines); err != nil {
		return nil, err
	}
	pods, err := c.instancePods(ctx, ns, a.Name)
	if err != nil {
		return nil, err
	}
	if a.Instance != "" {
		pods = filterPods(pods, a.Instance)
		if len(pods) == 0 {
			return nil, userErrorf("cluster %s has no instance pod %q", fmtObj(ns, a.Name), a.Instance)
		}
	}
	if len(pods) == 0 {
		return nil, userErrorf("cluster %s has no instance pods (is it hibernated or still being created?)", fmtObj(ns, a.Name))
	}
	logs, text := c.tailLogs(ctx, ns, pods, int64(lines), a.SinceSeconds, a.Previous)
	return &Result{Text: text, Data: map[string]any{"cluster": a.Name, "namespace": ns, "tail_lines": lines, "instances": logs}}, nil
}

func filterPods(pods []corev1.Pod, name string) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		if p.Name == name {
			out = append(out, p)
		}
	}
	return out
}

// tailLogs fetches a bounded tail from each pod; per-pod errors are reported, not fatal.
func (c *call) tailLogs(ctx context.Context, ns string, pods []corev1.Pod, lines int64, since *int64, previous bool) ([]any, string) {
	perPod := int64(min(maxLogBytesInstance, maxLogBytesPerCall/max(1, len(pods))))
	var out []any
	var b strings.Builder
	for _, p := range pods {
		opts := &corev1.PodLogOptions{Container: "postgres", TailLines: &lines, LimitBytes: &perPod, SinceSeconds: since, Previous: previous, Follow: false}
		raw, err := c.Core.CoreV1().Pods(ns).GetLogs(p.Name, opts).DoRaw(ctx)
		entry := map[string]any{"instance": p.Name}
		if err != nil {
			msg := c.explainRequest(err, "get", "", "pods/log", ns)
			entry["error"] = msg
			fmt.Fprintf(&b, "== %s: no log (%s)\n", p.Name, msg)
		} else {
			s := string(raw)
			entry["log"] = s
			entry["lines"] = strings.Count(s, "\n")
			entry["bytes"] = len(raw)
			entry["truncated"] = int64(len(raw)) >= perPod
			fmt.Fprintf(&b, "== %s (last %d lines)\n%s\n", p.Name, lines, strings.TrimRight(s, "\n"))
		}
		out = append(out, entry)
	}
	return out, b.String()
}
