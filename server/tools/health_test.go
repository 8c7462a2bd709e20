package tools

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "instance-manager", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseLSN(t *testing.T) {
	for in, want := range map[string]uint64{"0/0": 0, "0/3000060": 0x3000060, "1/0": 1 << 32, "A/FF": 0xA<<32 | 0xFF} {
		if got, ok := parseLSN(in); !ok || got != want {
			t.Errorf("parseLSN(%q) = %x, %t; want %x", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "0", "x/1", "0/", "1/2/3"} {
		if _, ok := parseLSN(bad); ok {
			t.Errorf("parseLSN(%q) accepted", bad)
		}
	}
}

func TestParseInterval(t *testing.T) {
	for in, want := range map[string]float64{"00:00:00": 0, "00:00:42.5": 42.5, "01:02:03": 3723, "1 day 00:00:01": 86401, "2 days": 172800, "-00:00:01": -1} {
		if got, ok := parseInterval(in); !ok || got != want {
			t.Errorf("parseInterval(%q) = %v, %t; want %v", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "soon", "1:2", "x days 00:00:00"} {
		if _, ok := parseInterval(bad); ok {
			t.Errorf("parseInterval(%q) accepted", bad)
		}
	}
}

// The primary and replica reports of testdata give every number the tools derive.
func TestInstanceHealthFromReports(t *testing.T) {
	pst, err := parseInstanceStatus(readTestdata(t, "synthetic-primary-status.json"))
	if err != nil {
		t.Fatal(err)
	}
	pm, err := parseInstanceMetrics(readTestdata(t, "synthetic-primary-metrics.txt"))
	if err != nil {
		t.Fatal(err)
	}
	rst, err := parseInstanceStatus(readTestdata(t, "synthetic-replica-status.json"))
	if err != nil {
		t.Fatal(err)
	}
	rm, err := parseInstanceMetrics(readTestdata(t, "synthetic-replica-metrics.txt"))
	if err != nil {
		t.Fatal(err)
	}
	p, r := &InstanceHealth{Pod: "pg-1", status: pst}, &InstanceHealth{Pod: "pg-2", status: rst}
	fillHealth(p, pst, pm)
	fillHealth(r, rst, rm)
	linkReplicas([]*InstanceHealth{p, r})

	if p.Role != "primary" || r.Role != "replica" {
		t.Fatalf("roles %s, %s", p.Role, r.Role)
	}
	if *p.Connections != 93 || *p.MaxConnections != 100 {
		t.Errorf("connections %d/%d, want 93/100 (sum of cnpg_backends_total)", *p.Connections, *p.MaxConnections)
	}
	if *p.OldestXactSeconds != 901.25 {
		t.Errorf("oldest transaction %v, want the max of cnpg_backends_max_tx_duration_seconds", *p.OldestXactSeconds)
	}
	if *p.XIDAge != 1_800_000_000 || p.XIDAgeDatabase != "app" || *p.WraparoundDistance != maxXIDAge-1_800_000_000 {
		t.Errorf("xid age %d (%s), distance %d", *p.XIDAge, p.XIDAgeDatabase, *p.WraparoundDistance)
	}
	if !p.ArchivingFailing || *p.ArchiveFailures != 37 || *p.ReadyWALFiles != 12 || p.LastFailedWAL != "000000010000000000000008" {
		t.Errorf("archiving: failing %t, failures %v, ready %v, last failed %s", p.ArchivingFailing, p.ArchiveFailures, p.ReadyWALFiles, p.LastFailedWAL)
	}
	if r.LagBytes == nil || *r.LagBytes != 0x9000060-0x7000000 {
		t.Errorf("replica lag bytes %v, want primary current LSN - replica replay LSN", r.LagBytes)
	}
	if r.LagSeconds == nil || *r.LagSeconds != 41.75 {
		t.Errorf("replica lag seconds %v, want cnpg_pg_replication_lag", r.LagSeconds)
	}
	if r.ArchivingFailing || r.ReadyWALFiles != nil {
		t.Error("a replica reports no WAL archiving of its own")
	}

	// without the replica's metrics the lag in seconds comes from the primary's pg_stat_replication
	r2 := &InstanceHealth{Pod: "pg-2", status: rst}
	fillHealth(r2, rst, nil)
	linkReplicas([]*InstanceHealth{p, r2})
	if r2.LagSeconds == nil || *r2.LagSeconds != 42.5 {
		t.Errorf("replica lag from replay_lag %v, want 42.5", r2.LagSeconds)
	}

	now := time.Date(2026, 11, 27, 3, 5, 0, 0, time.UTC)
	fs := healthFindings([]*InstanceHealth{p, r}, now, "")
	want := map[string]string{ // problem fragment -> next tool
		"WAL archiving is failing: last failed WAL 000000010000000000000008": "get_cluster_recoverability",
		"12 WAL files wait to be archived":                                   "get_cluster_recoverability",
		"93 of max_connections 100 in use":                                   "create_pooler",
		"oldest open transaction is 15m1s old":                               "get_cluster_logs",
		"transaction ID wraparound in 347483647 transactions (database app":  "get_cluster_logs",
		"a configuration change waits for a restart":                         "restart_postgres_cluster",
		"replica is 32.0 MiB behind the primary":                             "get_cluster_status",
		"replica replays 42 s behind the primary":                            "get_cluster_status",
	}
	for frag, next := range want {
		found := false
		for _, f := range fs {
			if strings.Contains(f.Problem, frag) {
				found = true
				if f.NextTool != next {
					t.Errorf("finding %q suggests %s, want %s", f.Problem, f.NextTool, next)
				}
			}
		}
		if !found {
			t.Errorf("no finding %q in:\n%v", frag, fs)
		}
	}
	if len(fs) != len(want) {
		t.Errorf("%d findings, want %d:\n%v", len(fs), len(want), fs)
	}
}

// A healthy report gives no finding; each threshold is crossed by one value alone.
func TestHealthFindingsThresholds(t *testing.T) {
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	healthy := func() *InstanceHealth {
		return &InstanceHealth{Pod: "pg-1", Role: "primary", Connections: ptr(int64(10)), MaxConnections: ptr(int64(100)),
			OldestXactSeconds: ptr(1.0), XIDAge: ptr(int64(1000)), WraparoundDistance: ptr(int64(maxXIDAge - 1000)), ReadyWALFiles: ptr(0),
			LastArchivedWALTime: "2026-11-27T02:59:00Z"}
	}
	if fs := healthFindings([]*InstanceHealth{healthy()}, now, ""); len(fs) != 0 {
		t.Fatalf("healthy instance has findings: %v", fs)
	}
	for name, tc := range map[string]struct {
		mut  func(h *InstanceHealth)
		want string
	}{
		"connections at 80%":       {func(h *InstanceHealth) { h.Connections = ptr(int64(80)) }, "80 of max_connections"},
		"wraparound":               {func(h *InstanceHealth) { h.WraparoundDistance = ptr(int64(wraparoundWarn)) }, "wraparound"},
		"old transaction":          {func(h *InstanceHealth) { h.OldestXactSeconds = ptr(oldestXactWarn.Seconds()) }, "oldest open transaction"},
		"archiving failing":        {func(h *InstanceHealth) { h.ArchivingFailing = true }, "WAL archiving is failing"},
		"recent archiving failure": {func(h *InstanceHealth) { h.LastFailedWAL, h.LastFailedWALTime = "0001", "2026-11-27T02:58:00Z" }, "failed recently"},
		"no report":                {func(h *InstanceHealth) { h.StatusError, h.MetricsError = "403", "403" }, "no report from the instance manager"},
		"no WAL receiver":          {func(h *InstanceHealth) { h.Role, h.WALReceiver = "replica", ptr(false) }, "no active WAL receiver"},
	} {
		t.Run(name, func(t *testing.T) {
			h := healthy()
			tc.mut(h)
			fs := healthFindings([]*InstanceHealth{h}, now, "")
			if len(fs) != 1 || !strings.Contains(fs[0].Problem, tc.want) {
				t.Fatalf("findings %v, want one with %q", fs, tc.want)
			}
		})
	}
	// just below each threshold: nothing
	h := healthy()
	h.Connections, h.OldestXactSeconds, h.WraparoundDistance = ptr(int64(79)), ptr(oldestXactWarn.Seconds()-1), ptr(int64(wraparoundWarn+1))
	h.LastFailedWAL, h.LastFailedWALTime = "0001", "2026-11-27T02:40:00Z" // an old, recovered failure
	if fs := healthFindings([]*InstanceHealth{h}, now, ""); len(fs) != 0 {
		t.Fatalf("below the thresholds: %v", fs)
	}
}

func TestArchivingFailing(t *testing.T) {
	for _, tc := range []struct {
		wal, archived, failed string
		want                  bool
	}{
		{"", "2026-11-27T03:00:00Z", "", false},
		// what CloudNativePG 1.30's /pg/status said on kind when nothing had failed
		{"", "2026-12-07T05:29:00.208816Z", "-infinity", false},
		{"0001", "2026-11-27T03:00:00Z", "2026-11-27T02:00:00Z", false},
		{"0001", "2026-11-27T03:00:00Z", "2026-11-27T03:00:01Z", true},
		{"0001", "", "2026-11-27T03:00:01Z", true}, // never archived, failed
	} {
		if got := archivingFailing(tc.wal, tc.archived, tc.failed); got != tc.want {
			t.Errorf("archivingFailing(%q, %q, %q) = %t", tc.wal, tc.archived, tc.failed, got)
		}
	}
}

func TestParseReportsRejectsGarbage(t *testing.T) {
	if _, err := parseInstanceStatus([]byte("<html>502</html>")); err == nil {
		t.Error("HTML accepted as /pg/status")
	}
	if _, err := parseInstanceMetrics([]byte("cnpg_backends_total{ 1\n")); err == nil {
		t.Error("broken Prometheus text accepted")
	}
}

// describeArchiveConf names destination, endpoint and Secret keys; a selector without its key is
// not named (it would send the operator to a key that does not exist).
func TestDescribeArchiveConf(t *testing.T) {
	for name, tc := range map[string]struct {
		conf map[string]any
		want string
	}{
		"empty":                        {nil, ""},
		"destination":                  {map[string]any{"destinationPath": "gs://b/"}, ": destination gs://b/"},
		"IAM role":                     {map[string]any{"destinationPath": "s3://b/", "s3Credentials": map[string]any{"inheritFromIAMRole": true}}, ": destination s3://b/; credentials: inheritFromIAMRole (from the pod's environment)"},
		"azure":                        {map[string]any{"azureCredentials": map[string]any{"connectionString": map[string]any{"name": "az", "key": "cs"}}}, ": credentials: Secret az key cs (connectionString)"},
		"half a selector is not named": {map[string]any{"s3Credentials": map[string]any{"accessKeyId": map[string]any{"name": "s3"}}}, ""},
	} {
		if got := describeArchiveConf(tc.conf); got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
}

// The reports a real CloudNativePG 1.30 instance manager gave on the e2e kind cluster (captured by
// e2e/backups_test.go with E2E_CAPTURE_DIR): a healthy archiving primary ("-infinity" for a failure
// that never happened) and the same primary after its object-store key was broken.
func TestRealInstanceReports(t *testing.T) {
	now := time.Date(2026, 12, 7, 13, 15, 31, 0, time.UTC)
	for _, tc := range []struct {
		name            string
		failing         bool
		lastFailedWAL   string
		wantArchFinding bool
	}{
		{"kind-primary", false, "", false},
		{"kind-archiving-failing", true, "000000010000000000000009", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := parseInstanceStatus(readTestdata(t, tc.name+"-status.json"))
			if err != nil {
				t.Fatal(err)
			}
			met, err := parseInstanceMetrics(readTestdata(t, tc.name+"-metrics.txt"))
			if err != nil {
				t.Fatal(err)
			}
			h := &InstanceHealth{Pod: "bk-1", Role: "unknown", status: st}
			fillHealth(h, st, met)
			if h.Role != "primary" || h.ManagerVersion != "1.30.0" || h.TimelineID != 1 {
				t.Errorf("role %s, manager %s, timeline %d", h.Role, h.ManagerVersion, h.TimelineID)
			}
			if h.Connections == nil || *h.Connections < 1 || h.MaxConnections == nil || *h.MaxConnections != 100 {
				t.Errorf("connections %v of %v, want at least the exporter's of 100", h.Connections, h.MaxConnections)
			}
			if h.XIDAge == nil || h.WraparoundDistance == nil || *h.WraparoundDistance <= 0 {
				t.Errorf("xid age %v, wraparound distance %v", h.XIDAge, h.WraparoundDistance)
			}
			if h.ArchivingFailing != tc.failing || h.LastFailedWAL != tc.lastFailedWAL {
				t.Errorf("archiving failing %t (last failed %q), want %t (%q)", h.ArchivingFailing, h.LastFailedWAL, tc.failing, tc.lastFailedWAL)
			}
			found := false
			for _, f := range healthFindings([]*InstanceHealth{h}, now, "") {
				found = found || strings.Contains(f.Problem, "WAL archiving is failing")
				if !tc.wantArchFinding {
					t.Errorf("a healthy primary has the finding %q", f.Problem)
				}
			}
			if found != tc.wantArchFinding {
				t.Errorf("archiving finding %t, want %t", found, tc.wantArchFinding)
			}
		})
	}
}
