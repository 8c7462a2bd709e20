package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
)

// Where CloudNativePG 1.30's instance manager reports on itself (pkg/management/url): the status
// web server on port 8000 (GET /pg/status, unauthenticated, the JSON `kubectl cnpg status` reads;
// https when the postgres container runs with --status-port-tls, the default since 1.26) and the
// metrics exporter on port 9187 (GET /metrics, Prometheus text; https only with
// spec.monitoring.tls.enabled). Both are read through the API server's pods/proxy subresource, as
// `kubectl cnpg status` does, so the server needs no network path to the pods, only RBAC
// (get pods/proxy).
const (
	InstanceStatusPort  = 8000
	InstanceMetricsPort = 9187
	instanceStatusPath  = "/pg/status"
	instanceMetricsPath = "/metrics"

	// maxXIDAge is where PostgreSQL's transaction IDs wrap around (2^31); it refuses new
	// transactions about three million before.
	maxXIDAge = 1<<31 - 1
)

// Thresholds of the findings (documented in docs/tools.md through the diagnose description).
const (
	lagBytesWarn        = 16 << 20 // one WAL segment
	lagSecondsWarn      = 30.0
	connectionsWarnPct  = 80.0
	oldestXactWarn      = 5 * time.Minute
	wraparoundWarn      = 500_000_000 // autovacuum's freeze_max_age default is 200M; 1.5G age is trouble
	readyWALFilesWarn   = 10
	archiveFailureFresh = 10 * time.Minute
)

// InstanceReports reads what an instance manager reports about its PostgreSQL instance.
type InstanceReports interface {
	// Status returns the body of GET /pg/status on the status port.
	Status(ctx context.Context, pod *corev1.Pod) ([]byte, error)
	// Metrics returns the body of GET /metrics on the metrics port.
	Metrics(ctx context.Context, pod *corev1.Pod, tls bool) ([]byte, error)
}

// proxyReports reads them through the API server's pods/proxy subresource.
type proxyReports struct{ core kubernetes.Interface }

func (p proxyReports) Status(ctx context.Context, pod *corev1.Pod) ([]byte, error) {
	return p.core.CoreV1().Pods(pod.Namespace).ProxyGet(statusScheme(pod), pod.Name, strconv.Itoa(InstanceStatusPort), instanceStatusPath, nil).DoRaw(ctx)
}

func (p proxyReports) Metrics(ctx context.Context, pod *corev1.Pod, tls bool) ([]byte, error) {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return p.core.CoreV1().Pods(pod.Namespace).ProxyGet(scheme, pod.Name, strconv.Itoa(InstanceMetricsPort), instanceMetricsPath, nil).DoRaw(ctx)
}

// statusScheme is what the operator itself uses (remote.GetStatusSchemeFromPod): https when the
// postgres container's command has --status-port-tls.
func statusScheme(pod *corev1.Pod) string {
	for _, c := range pod.Spec.Containers {
		if c.Name == "postgres" {
			if slices.Contains(c.Command, "--status-port-tls") {
				return "https"
			}
			break
		}
	}
	return "http"
}

// instanceStatus is the part of the instance manager's /pg/status JSON (PostgresqlStatus in the
// operator's pkg/postgres) the tools use.
type instanceStatus struct {
	CurrentLsn          string `json:"currentLsn"`
	ReceivedLsn         string `json:"receivedLsn"`
	ReplayLsn           string `json:"replayLsn"`
	SystemID            string `json:"systemID"`
	IsPrimary           bool   `json:"isPrimary"`
	ReplayPaused        bool   `json:"replayPaused"`
	PendingRestart      bool   `json:"pendingRestart"`
	IsWalReceiverActive bool   `json:"isWalReceiverActive"`
	IsArchivingWAL      bool   `json:"isArchivingWAL"`
	LastArchivedWAL     string `json:"lastArchivedWAL"`
	LastArchivedWALTime string `json:"lastArchivedWALTime"`
	LastFailedWAL       string `json:"lastFailedWAL"`
	LastFailedWALTime   string `json:"lastFailedWALTime"`
	CurrentWAL          string `json:"currentWAL"`
	ReadyWALFiles       int    `json:"readyWalFiles"`
	TimeLineID          int    `json:"timeLineID"`
	ReplicationInfo     []struct {
		ApplicationName string `json:"applicationName"`
		State           string `json:"state"`
		SentLsn         string `json:"receivedLsn"` // sic: the operator's JSON name for sent_lsn
		ReplayLsn       string `json:"replayLsn"`
		ReplayLag       string `json:"replayLag"`
		SyncState       string `json:"syncState"`
	} `json:"replicationInfo"`
	InstanceManagerVersion string `json:"instanceManagerVersion"`
}

func parseInstanceStatus(b []byte) (*instanceStatus, error) {
	var s instanceStatus
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("the instance manager's /pg/status is not the expected JSON: %w", err)
	}
	return &s, nil
}

// instanceMetrics is what the tools read from the exporter's default queries
// (the cnpg-default-monitoring ConfigMap) and built-in collectors.
type instanceMetrics struct {
	Connections       *float64 // sum of cnpg_backends_total
	MaxConnections    *float64 // cnpg_pg_settings_setting{name="max_connections"}
	OldestXactSeconds *float64 // max of cnpg_backends_max_tx_duration_seconds
	MaxXIDAge         *float64 // max of cnpg_pg_database_xid_age
	MaxXIDAgeDatabase string
	ReplicationLag    *float64 // cnpg_pg_replication_lag (seconds, replicas)
	InRecovery        *float64 // cnpg_pg_replication_in_recovery
	ArchiverFailed    *float64 // cnpg_pg_stat_archiver_failed_count
	SinceLastFailure  *float64 // cnpg_pg_stat_archiver_seconds_since_last_failure (-1: never)
	SinceLastArchival *float64 // cnpg_pg_stat_archiver_seconds_since_last_archival (-1: never)
	WALReady          *float64 // cnpg_collector_pg_wal_archive_status{value="ready"}
}

func parseInstanceMetrics(b []byte) (*instanceMetrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		return nil, fmt.Errorf("the instance manager's /metrics is not Prometheus text: %w", err)
	}
	m := &instanceMetrics{}
	value := func(x *dto.Metric) float64 {
		switch {
		case x.Gauge != nil:
			return x.Gauge.GetValue()
		case x.Counter != nil:
			return x.Counter.GetValue()
		case x.Untyped != nil:
			return x.Untyped.GetValue()
		}
		return math.NaN()
	}
	label := func(x *dto.Metric, name string) string {
		for _, l := range x.Label {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	each := func(name string, fn func(*dto.Metric, float64)) {
		if f := fams[name]; f != nil {
			for _, x := range f.Metric {
				if v := value(x); !math.IsNaN(v) {
					fn(x, v)
				}
			}
		}
	}
	set := func(dst **float64, v float64) { *dst = &v }
	sum := func(dst **float64, v float64) {
		if *dst == nil {
			set(dst, v)
		} else {
			**dst += v
		}
	}
	maxOf := func(dst **float64, v float64) bool {
		if *dst == nil || v > **dst {
			set(dst, v)
			return true
		}
		return false
	}
	each("cnpg_backends_total", func(_ *dto.Metric, v float64) { sum(&m.Connections, v) })
	each("cnpg_pg_settings_setting", func(x *dto.Metric, v float64) {
		if label(x, "name") == "max_connections" {
			set(&m.MaxConnections, v)
		}
	})
	each("cnpg_backends_max_tx_duration_seconds", func(_ *dto.Metric, v float64) { maxOf(&m.OldestXactSeconds, v) })
	each("cnpg_pg_database_xid_age", func(x *dto.Metric, v float64) {
		if maxOf(&m.MaxXIDAge, v) {
			m.MaxXIDAgeDatabase = label(x, "datname")
		}
	})
	each("cnpg_pg_replication_lag", func(_ *dto.Metric, v float64) { set(&m.ReplicationLag, v) })
	each("cnpg_pg_replication_in_recovery", func(_ *dto.Metric, v float64) { set(&m.InRecovery, v) })
	each("cnpg_pg_stat_archiver_failed_count", func(_ *dto.Metric, v float64) { set(&m.ArchiverFailed, v) })
	each("cnpg_pg_stat_archiver_seconds_since_last_failure", func(_ *dto.Metric, v float64) { set(&m.SinceLastFailure, v) })
	each("cnpg_pg_stat_archiver_seconds_since_last_archival", func(_ *dto.Metric, v float64) { set(&m.SinceLastArchival, v) })
	each("cnpg_collector_pg_wal_archive_status", func(x *dto.Metric, v float64) {
		if label(x, "value") == "ready" {
			set(&m.WALReady, v)
		}
	})
	return m, nil
}

// parseLSN reads a PostgreSQL LSN such as "0/3000060".
func parseLSN(s string) (uint64, bool) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, false
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return h<<32 | l, true
}

// parseInterval reads a PostgreSQL interval as text ("00:00:01.5", "1 day 02:00:00").
func parseInterval(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	var days float64
	if i := strings.Index(s, " day"); i > 0 {
		d, err := strconv.ParseFloat(strings.TrimSpace(s[:i]), 64)
		if err != nil {
			return 0, false
		}
		days = d
		rest := s[i+len(" day"):]
		rest = strings.TrimPrefix(rest, "s")
		s = strings.TrimSpace(rest)
		if s == "" {
			return days * 86400, true
		}
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, false
	}
	h, err1 := strconv.ParseFloat(parts[0], 64)
	m, err2 := strconv.ParseFloat(parts[1], 64)
	sec, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, false
	}
	neg := h < 0 || strings.HasPrefix(parts[0], "-")
	t := math.Abs(h)*3600 + m*60 + sec
	if neg {
		t = -t
	}
	return days*86400 + t, true
}

// InstanceHealth is one instance as its instance manager reports it.
type InstanceHealth struct {
	Pod          string   `json:"pod"`
	Role         string   `json:"role"` // primary | replica | unknown
	StatusError  string   `json:"status_error,omitempty"`
	MetricsError string   `json:"metrics_error,omitempty"`
	TimelineID   int      `json:"timeline_id,omitempty"`
	CurrentLSN   string   `json:"current_lsn,omitempty"`
	ReplayLSN    string   `json:"replay_lsn,omitempty"`
	LagBytes     *int64   `json:"replication_lag_bytes,omitempty"`
	LagSeconds   *float64 `json:"replication_lag_seconds,omitempty"`
	WALReceiver  *bool    `json:"wal_receiver_active,omitempty"`
	ReplayPaused bool     `json:"replay_paused,omitempty"`
	Pending      bool     `json:"pending_restart,omitempty"`
	// WAL archiving (primary)
	LastArchivedWAL     string   `json:"last_archived_wal,omitempty"`
	LastArchivedWALTime string   `json:"last_archived_wal_time,omitempty"`
	LastFailedWAL       string   `json:"last_failed_wal,omitempty"`
	LastFailedWALTime   string   `json:"last_failed_wal_time,omitempty"`
	ReadyWALFiles       *int     `json:"ready_wal_files,omitempty"`
	ArchiveFailures     *int64   `json:"archive_failed_count,omitempty"`
	ArchivingFailing    bool     `json:"wal_archiving_failing"`
	Connections         *int64   `json:"connections,omitempty"`
	MaxConnections      *int64   `json:"max_connections,omitempty"`
	OldestXactSeconds   *float64 `json:"oldest_transaction_age_seconds,omitempty"`
	XIDAge              *int64   `json:"max_xid_age,omitempty"`
	XIDAgeDatabase      string   `json:"max_xid_age_database,omitempty"`
	WraparoundDistance  *int64   `json:"xid_wraparound_distance,omitempty"`
	ManagerVersion      string   `json:"instance_manager_version,omitempty"`

	status *instanceStatus
}

func ptr[T any](v T) *T { return &v }

// instancesHealth asks every instance manager of the cluster for its reports (in sequence; a
// cluster has a handful of instances) and derives lag, archiving, connections and wraparound.
func (c *call) instancesHealth(ctx context.Context, cl *cnpgv1.Cluster, pods []corev1.Pod) []*InstanceHealth {
	metricsTLS := cl.Spec.Monitoring != nil && cl.Spec.Monitoring.TLSConfig != nil && cl.Spec.Monitoring.TLSConfig.Enabled
	out := make([]*InstanceHealth, 0, len(pods))
	for i := range pods {
		p := &pods[i]
		h := &InstanceHealth{Pod: p.Name, Role: "unknown"}
		// bounded: a hung instance manager must not hold the whole call
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if b, err := c.reports().Status(sctx, p); err != nil {
			h.StatusError = c.proxyError(p, err)
		} else if st, err := parseInstanceStatus(b); err != nil {
			h.StatusError = err.Error()
		} else {
			h.status = st
		}
		var met *instanceMetrics
		if b, err := c.reports().Metrics(sctx, p, metricsTLS); err != nil {
			h.MetricsError = c.proxyError(p, err)
		} else if met, err = parseInstanceMetrics(b); err != nil {
			h.MetricsError = err.Error()
		}
		cancel()
		fillHealth(h, h.status, met)
		out = append(out, h)
	}
	linkReplicas(out)
	return out
}

func (c *call) reports() InstanceReports {
	if c.Instances != nil {
		return c.Instances
	}
	return proxyReports{core: c.Core}
}

// proxyError explains a failed pods/proxy call (a pod that is not running has no address: the API
// server answers 400 "address not allowed" after checking RBAC); a 403 names who was denied.
func (c *call) proxyError(p *corev1.Pod, err error) string {
	// a denied proxy request comes without the authorizer's message (client-go: "unknown")
	msg := "instance manager not reachable through the API server (pods/proxy): " + c.explainRequest(err, "get", "", "pods/proxy", p.Namespace)
	if p.Status.Phase != corev1.PodRunning {
		msg = fmt.Sprintf("pod is %s, not running; ", firstNonEmpty(string(p.Status.Phase), "pending")) + msg
	}
	return msg
}

// fillHealth derives one instance's health from its status and metrics (either may be nil).
func fillHealth(h *InstanceHealth, st *instanceStatus, met *instanceMetrics) {
	if st != nil {
		h.Role = map[bool]string{true: "primary", false: "replica"}[st.IsPrimary]
		h.TimelineID, h.CurrentLSN, h.ReplayLSN = st.TimeLineID, st.CurrentLsn, st.ReplayLsn
		h.ReplayPaused, h.Pending, h.ManagerVersion = st.ReplayPaused, st.PendingRestart, st.InstanceManagerVersion
		if !st.IsPrimary {
			h.WALReceiver = ptr(st.IsWalReceiverActive)
		}
		if st.IsPrimary {
			h.LastArchivedWAL, h.LastArchivedWALTime = st.LastArchivedWAL, st.LastArchivedWALTime
			h.LastFailedWAL, h.LastFailedWALTime = st.LastFailedWAL, st.LastFailedWALTime
			h.ReadyWALFiles = ptr(st.ReadyWALFiles)
			h.ArchivingFailing = archivingFailing(st.LastFailedWAL, st.LastArchivedWALTime, st.LastFailedWALTime)
		}
	}
	if met == nil {
		return
	}
	if h.Role == "unknown" && met.InRecovery != nil {
		h.Role = map[bool]string{true: "replica", false: "primary"}[*met.InRecovery == 1]
	}
	if met.Connections != nil {
		h.Connections = ptr(int64(*met.Connections))
	}
	if met.MaxConnections != nil {
		h.MaxConnections = ptr(int64(*met.MaxConnections))
	}
	h.OldestXactSeconds = met.OldestXactSeconds
	if met.MaxXIDAge != nil {
		h.XIDAge = ptr(int64(*met.MaxXIDAge))
		h.XIDAgeDatabase = met.MaxXIDAgeDatabase
		h.WraparoundDistance = ptr(int64(maxXIDAge) - int64(*met.MaxXIDAge))
	}
	if h.Role == "replica" && met.ReplicationLag != nil {
		h.LagSeconds = met.ReplicationLag
	}
	if h.Role == "primary" && met.ArchiverFailed != nil {
		h.ArchiveFailures = ptr(int64(*met.ArchiverFailed))
		// a failure newer than the last success means archiving is failing now
		if f, a := met.SinceLastFailure, met.SinceLastArchival; f != nil && *f >= 0 && (a == nil || *a < 0 || *f < *a) {
			h.ArchivingFailing = true
		}
	}
}

// archivingFailing: a WAL file failed, and later than the last one archived. pg_stat_archiver's
// times come as PostgreSQL prints them: "-infinity" (seen on kind) when nothing ever failed.
func archivingFailing(failedWAL, archived, failed string) bool {
	if failedWAL == "" {
		return false
	}
	tf, err := time.Parse(time.RFC3339Nano, failed)
	if err != nil {
		return false
	}
	ta, err := time.Parse(time.RFC3339Nano, archived)
	return err != nil || tf.After(ta)
}

// linkReplicas fills the replicas' lag in bytes (the primary's current LSN minus their replay
// LSN) and, when the metrics gave none, in seconds from the primary's pg_stat_replication.
func linkReplicas(hs []*InstanceHealth) {
	var primary *InstanceHealth
	for _, h := range hs {
		if h.Role == "primary" && h.status != nil {
			primary = h
		}
	}
	if primary == nil {
		return
	}
	cur, ok := parseLSN(primary.status.CurrentLsn)
	for _, h := range hs {
		if h.Role != "replica" || h.status == nil {
			continue
		}
		if r, ok2 := parseLSN(h.status.ReplayLsn); ok && ok2 {
			lag := int64(0)
			if cur > r {
				lag = int64(cur - r)
			}
			h.LagBytes = &lag
		}
		if h.LagSeconds == nil {
			for _, ri := range primary.status.ReplicationInfo {
				if ri.ApplicationName == h.Pod {
					if s, ok := parseInterval(ri.ReplayLag); ok {
						h.LagSeconds = &s
					}
				}
			}
		}
	}
}

// healthFinding is one problem the instance reports show, with the tool to look further.
type healthFinding struct {
	Instance string `json:"instance"`
	Severity string `json:"severity"` // warning | critical
	Problem  string `json:"problem"`
	NextTool string `json:"next_tool"`
}

func (f healthFinding) String() string {
	return fmt.Sprintf("[%s] %s: %s (next: %s)", f.Severity, f.Instance, f.Problem, f.NextTool)
}

// healthFindings turns the instance reports into findings. archiveTarget says where WAL goes and
// with which credentials (archiveTargetOf); empty when unknown.
func healthFindings(hs []*InstanceHealth, now time.Time, archiveTarget string) []healthFinding {
	var out []healthFinding
	add := func(h *InstanceHealth, sev, next, format string, args ...any) {
		out = append(out, healthFinding{Instance: h.Pod, Severity: sev, Problem: fmt.Sprintf(format, args...), NextTool: next})
	}
	for _, h := range hs {
		if h.StatusError != "" && h.MetricsError != "" {
			add(h, "warning", "get_cluster_logs", "no report from the instance manager: %s", h.StatusError)
			continue
		}
		if h.ArchivingFailing {
			msg := "WAL archiving is failing"
			if h.LastFailedWAL != "" {
				msg += fmt.Sprintf(": last failed WAL %s at %s", h.LastFailedWAL, h.LastFailedWALTime)
			}
			if h.LastArchivedWALTime != "" {
				msg += fmt.Sprintf(", last archived %s at %s", firstNonEmpty(h.LastArchivedWAL, "-"), h.LastArchivedWALTime)
			} else {
				msg += ", nothing archived yet"
			}
			msg += "; point-in-time recovery stops at the last archived WAL"
			if archiveTarget != "" {
				msg += " (check " + archiveTarget + ")"
			} else {
				msg += " (check the object store credentials and endpoint)"
			}
			add(h, "critical", "get_cluster_recoverability", "%s", msg)
		} else if h.LastFailedWALTime != "" {
			if t, err := time.Parse(time.RFC3339Nano, h.LastFailedWALTime); err == nil && now.Sub(t) < archiveFailureFresh {
				add(h, "warning", "get_cluster_recoverability", "WAL archiving failed recently (%s at %s) but has succeeded since", h.LastFailedWAL, h.LastFailedWALTime)
			}
		}
		if h.ReadyWALFiles != nil && *h.ReadyWALFiles >= readyWALFilesWarn {
			add(h, "warning", "get_cluster_recoverability", "%d WAL files wait to be archived", *h.ReadyWALFiles)
		}
		if h.LagBytes != nil && *h.LagBytes >= lagBytesWarn {
			add(h, "warning", "get_cluster_status", "replica is %s behind the primary", humanBytes(*h.LagBytes))
		}
		if h.LagSeconds != nil && *h.LagSeconds >= lagSecondsWarn {
			add(h, "warning", "get_cluster_status", "replica replays %.0f s behind the primary", *h.LagSeconds)
		}
		if h.WALReceiver != nil && !*h.WALReceiver {
			add(h, "warning", "get_cluster_logs", "replica has no active WAL receiver (not streaming from the primary)")
		}
		if h.ReplayPaused {
			add(h, "warning", "get_cluster_status", "WAL replay is paused")
		}
		if h.Connections != nil && h.MaxConnections != nil && *h.MaxConnections > 0 {
			if pct := 100 * float64(*h.Connections) / float64(*h.MaxConnections); pct >= connectionsWarnPct {
				add(h, map[bool]string{true: "critical", false: "warning"}[pct >= 95], "create_pooler",
					"%d of max_connections %d in use (%.0f%%); a pooler (create_pooler) or a higher max_connections helps", *h.Connections, *h.MaxConnections, pct)
			}
		}
		if h.OldestXactSeconds != nil && *h.OldestXactSeconds >= oldestXactWarn.Seconds() {
			add(h, "warning", "get_cluster_logs", "oldest open transaction is %s old (holds back vacuum and WAL removal)", (time.Duration(*h.OldestXactSeconds) * time.Second).String())
		}
		// replicas replay the primary's frozen XIDs: report wraparound once, on the primary
		if h.WraparoundDistance != nil && *h.WraparoundDistance <= wraparoundWarn && h.Role != "replica" {
			add(h, "critical", "get_cluster_logs", "transaction ID wraparound in %d transactions (database %s, age %d): vacuum it (VACUUM FREEZE) before PostgreSQL stops accepting writes", *h.WraparoundDistance, h.XIDAgeDatabase, *h.XIDAge)
		}
		if h.Pending {
			add(h, "warning", "restart_postgres_cluster", "a configuration change waits for a restart")
		}
	}
	return out
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// healthText renders the instance reports as lines.
func healthText(hs []*InstanceHealth) string {
	var b strings.Builder
	b.WriteString("Instances (as their instance managers report):\n")
	for _, h := range hs {
		fmt.Fprintf(&b, "  %s %s", h.Pod, h.Role)
		if h.StatusError != "" && h.MetricsError != "" {
			fmt.Fprintf(&b, " (no report: %s)\n", h.StatusError)
			continue
		}
		if h.TimelineID != 0 {
			fmt.Fprintf(&b, " timeline=%d", h.TimelineID)
		}
		if h.LagBytes != nil {
			fmt.Fprintf(&b, " lag=%s", humanBytes(*h.LagBytes))
		}
		if h.LagSeconds != nil {
			fmt.Fprintf(&b, " lag_seconds=%.1f", *h.LagSeconds)
		}
		if h.Role == "primary" {
			fmt.Fprintf(&b, " wal_archiving=%s", map[bool]string{true: "FAILING", false: "ok"}[h.ArchivingFailing])
			if h.LastArchivedWAL != "" {
				fmt.Fprintf(&b, " last_archived=%s", h.LastArchivedWAL)
			}
		}
		if h.Connections != nil && h.MaxConnections != nil {
			fmt.Fprintf(&b, " connections=%d/%d", *h.Connections, *h.MaxConnections)
		}
		if h.OldestXactSeconds != nil {
			fmt.Fprintf(&b, " oldest_xact=%.0fs", *h.OldestXactSeconds)
		}
		if h.WraparoundDistance != nil {
			fmt.Fprintf(&b, " xid_wraparound_in=%d", *h.WraparoundDistance)
		}
		if h.StatusError != "" {
			fmt.Fprintf(&b, " (status: %s)", h.StatusError)
		}
		if h.MetricsError != "" {
			fmt.Fprintf(&b, " (metrics: %s)", h.MetricsError)
		}
		b.WriteString("\n")
	}
	return b.String()
}
