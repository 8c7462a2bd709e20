package tools

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	"github.com/mark3labs/mcp-go/mcp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const maxEvents = 50

func diagnoseTools(d *Deps) []Tool {
	return []Tool{
		build(d, spec{
			name: "diagnose_postgres_cluster", title: "Diagnose a cluster", area: "observability", readOnly: true, idempotent: true,
			desc: "One report for troubleshooting, like `kubectl cnpg report`: cluster phase and conditions, instance pods (phase, readiness, restarts, waiting reasons), " +
				"what each instance manager reports (replication lag, WAL archiving failures, connections vs max_connections, oldest transaction, wraparound distance; through pods/proxy), " +
				"recent events of the cluster and its pods, a short log tail per instance, and findings that point at the likely problem, each with a suggested next tool. " +
				"Thresholds: replica lag >= 16 MiB or 30 s, >= 10 WAL files waiting, connections >= 80% of max_connections, a transaction open >= 5 min, < 500M transactions to wraparound, any current WAL archiving failure.",
			calls: []string{"get clusters", "list pods", "get pods/proxy (instance manager /pg/status, /metrics)", "list events", "get pods/log (tailLines, limitBytes, follow=false)"},
			params: []mcp.ToolOption{pName("name", "Cluster name.", true),
				mcp.WithInteger("log_lines", mcp.DefaultNumber(20), mcp.Min(0), mcp.Max(200), mcp.Description("Log lines per instance (0 = no logs).")),
				pNamespace()},
		}, diagnoseCluster),
	}
}

type diagnoseArgs struct {
	Name      string `json:"name"`
	LogLines  *int   `json:"log_lines"`
	Namespace string `json:"namespace"`
}

func diagnoseCluster(ctx context.Context, c *call, a *diagnoseArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	lines := 20
	if a.LogLines != nil {
		lines = *a.LogLines
	}
	if err := checkRange("log_lines", lines, 0, 200); err != nil {
		return nil, err
	}
	cl, err := c.getCluster(ctx, ns, a.Name)
	if err != nil {
		return nil, err
	}
	pods, err := c.instancePods(ctx, ns, a.Name)
	if err != nil {
		return nil, err
	}
	var findings []string
	st := cl.Status
	if st.Phase != cnpgv1.PhaseHealthy {
		findings = append(findings, fmt.Sprintf("cluster phase is %q (%s), not healthy", firstNonEmpty(st.Phase, "unknown"), firstNonEmpty(st.PhaseReason, "no reason given")))
	}
	if st.ReadyInstances < cl.Spec.Instances {
		findings = append(findings, fmt.Sprintf("%d of %d instances ready", st.ReadyInstances, cl.Spec.Instances))
	}
	if st.TargetPrimary != "" && st.TargetPrimary != st.CurrentPrimary {
		findings = append(findings, fmt.Sprintf("switchover/failover in progress: %s -> %s", firstNonEmpty(st.CurrentPrimary, "none"), st.TargetPrimary))
	}
	if cl.Annotations[AnnotationHibernation] == "on" {
		findings = append(findings, "cluster is hibernated (hibernate_postgres_cluster state off to wake it)")
	}
	if v := cl.Annotations[AnnotationFenced]; v != "" && v != "[]" {
		findings = append(findings, "fenced instances: "+v+" (fence_postgres_instances state off to unfence)")
	}
	if len(st.ResizingPVC) > 0 {
		findings = append(findings, "PVCs resizing: "+strings.Join(st.ResizingPVC, ", "))
	}
	for _, cond := range st.Conditions {
		if cond.Status == metav1.ConditionFalse {
			findings = append(findings, fmt.Sprintf("condition %s is False: %s %s", cond.Type, cond.Reason, cond.Message))
		}
	}
	var podRows []any
	names := []string{cl.Name}
	for _, p := range pods {
		names = append(names, p.Name)
		ready, restarts := false, int32(0)
		var waiting []string
		for _, cs := range p.Status.ContainerStatuses {
			restarts += cs.RestartCount
			if cs.Name == "postgres" {
				ready = cs.Ready
			}
			if cs.State.Waiting != nil {
				waiting = append(waiting, cs.Name+": "+cs.State.Waiting.Reason)
			}
		}
		role := p.Labels["cnpg.io/instanceRole"]
		podRows = append(podRows, map[string]any{"name": p.Name, "phase": string(p.Status.Phase), "ready": ready, "restarts": restarts, "node": p.Spec.NodeName, "role": role, "waiting": waiting})
		if !ready {
			findings = append(findings, fmt.Sprintf("pod %s not ready (phase %s%s)", p.Name, p.Status.Phase, map[bool]string{true: ", " + strings.Join(waiting, ", "), false: ""}[len(waiting) > 0]))
		}
		if restarts > 0 {
			findings = append(findings, fmt.Sprintf("pod %s restarted %d time(s); see its previous log with get_cluster_logs previous: true", p.Name, restarts))
		}
	}
	if len(pods) == 0 && cl.Annotations[AnnotationHibernation] != "on" {
		findings = append(findings, "no instance pods exist")
	}
	var evs corev1.EventList
	var eventRows []any
	eventsErr := ""
	if err := c.Client.List(ctx, &evs, client.InNamespace(ns)); err != nil {
		eventsErr = c.explain(err)
	} else {
		items := slices.DeleteFunc(evs.Items, func(e corev1.Event) bool { return !slices.Contains(names, e.InvolvedObject.Name) })
		sortNewest(items, eventTime)
		items = items[:min(len(items), maxEvents)]
		for _, e := range items {
			eventRows = append(eventRows, map[string]any{"type": e.Type, "reason": e.Reason, "object": e.InvolvedObject.Kind + "/" + e.InvolvedObject.Name, "message": e.Message, "count": e.Count, "time": eventTime(e).UTC().Format(time.RFC3339)})
			if e.Type == corev1.EventTypeWarning {
				findings = append(findings, fmt.Sprintf("warning event on %s/%s: %s %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message))
			}
		}
	}
	health := c.instancesHealth(ctx, cl, pods)
	target := ""
	if slices.ContainsFunc(health, func(h *InstanceHealth) bool { return h.ArchivingFailing }) {
		target = c.archiveTargetOf(ctx, ns, cl)
	}
	hf := healthFindings(health, c.Now(), target)
	for _, f := range hf {
		findings = append(findings, f.String())
	}
	var logs []any
	var logText string
	if lines > 0 && len(pods) > 0 {
		logs, logText = c.tailLogs(ctx, ns, pods, int64(lines), nil, false)
	}
	if len(findings) == 0 {
		findings = append(findings, "no problem found: cluster healthy, all instances ready, no warning events")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Diagnosis of cluster %s\nFindings:\n", fmtObj(ns, a.Name))
	for _, f := range findings {
		fmt.Fprintf(&b, "  - %s\n", f)
	}
	b.WriteString(clusterText(cl, true))
	b.WriteString(healthText(health))
	if eventsErr != "" {
		fmt.Fprintf(&b, "Events unavailable: %s\n", eventsErr)
	}
	if logText != "" {
		b.WriteString("Log tail:\n" + logText)
	}
	return &Result{Text: b.String(), Data: map[string]any{
		"cluster": clusterSummary(cl, true), "findings": findings, "health_findings": hf, "instances_health": health, "pods": podRows, "events": eventRows, "events_error": eventsErr, "logs": logs,
	}}, nil
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}
