package chaos_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/chaos"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/adminclient"
	mconfig "github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// The short run (the defaults) is part of `make test`; `make chaos` runs the full one (-chaos.full)
// and accepts every flag through CHAOS_ARGS.
var (
	flagFull      = flag.Bool("chaos.full", false, "the full run: 20 clients, 3 cycles, PostgreSQL down 0.5 s/5 s/20 s (fast) and 5 s (SIGKILL), every upstream fault")
	flagScenarios = flag.String("chaos.scenarios", "", "comma-separated scenarios (default: all): kill9-postgres, kill9-bolt, pgstop, pgrestart, upstream")
	flagClients   = flag.Int("chaos.clients", 0, "concurrent clients (default 6, full 20)")
	flagCycles    = flag.Int("chaos.cycles", 0, "faults per scenario (default 3, full 3)")
	flagPGDown    = flag.String("chaos.pg-down", "", "PostgreSQL outages as mode:duration, comma-separated (mode fast = pg_ctl stop -m fast, kill = SIGKILL; default fast:2s; full fast:500ms,fast:5s,fast:20s,kill:5s)")
	flagUpDown    = flag.Duration("chaos.upstream-down", 0, "how long each upstream fault lasts (default 2s, full 5s)")
	flagThink     = flag.Duration("chaos.think", 0, "pause between a client's iterations (default 50ms)")
	flagSettle    = flag.Duration("chaos.settle", 0, "normal running before each fault (default 1.5s, full 3s)")
	flagEvery     = flag.Bool("chaos.upstream-every-refresh", true, "make every refresh also refresh upstream (the mock's access tokens live 10 min, ours 1 h)")
	flagReport    = flag.String("chaos.report", "", "also write the summary (markdown) to this file")
	flagLeeway    = flag.Duration("chaos.upstream-leeway", 30*time.Second, "the mock's refresh-token reuse interval for the proxy's client (Auth0 \"Reuse Interval\"); server/README.md requires ≥ 30 s so that a retry after a kill -9 between the upstream call and the commit may present the previous upstream token once; 0 reproduces the documented loss")
)

type settings struct {
	clients, cycles int
	pgDown          []outage
	upDown          time.Duration
	think, settle   time.Duration
	retryFor        time.Duration
	recheckFor      time.Duration
	recoverWithin   time.Duration
}

type outage struct {
	mode string // "fast" (pgtest.Server.Stop) or "kill" (pgtest.Server.Kill)
	d    time.Duration
}

func (o outage) String() string { return o.mode + ":" + o.d.String() }

func readSettings(t *testing.T) settings {
	s := settings{clients: 6, cycles: 3, upDown: 2 * time.Second, think: 50 * time.Millisecond, settle: 1500 * time.Millisecond,
		retryFor: 45 * time.Second, recheckFor: 30 * time.Second, recoverWithin: 45 * time.Second}
	pg := "fast:2s"
	if *flagFull {
		s.clients, s.cycles, s.upDown, s.settle = 20, 3, 5*time.Second, 3*time.Second
		s.retryFor, s.recheckFor, s.recoverWithin = 90*time.Second, 60*time.Second, 90*time.Second
		pg = "fast:500ms,fast:5s,fast:20s,kill:5s"
	}
	if *flagClients > 0 {
		s.clients = *flagClients
	}
	if *flagCycles > 0 {
		s.cycles = *flagCycles
	}
	if *flagPGDown != "" {
		pg = *flagPGDown
	}
	if *flagUpDown > 0 {
		s.upDown = *flagUpDown
	}
	if *flagThink > 0 {
		s.think = *flagThink
	}
	if *flagSettle > 0 {
		s.settle = *flagSettle
	}
	for _, item := range strings.Split(pg, ",") {
		mode, d, ok := strings.Cut(strings.TrimSpace(item), ":")
		dur, err := time.ParseDuration(d)
		if !ok || err != nil || (mode != "fast" && mode != "kill") || dur < 0 || dur > 10*time.Minute {
			t.Fatalf("-chaos.pg-down: %q is not mode:duration (mode fast or kill; e.g. fast:5s)", item)
		}
		s.pgDown = append(s.pgDown, outage{mode, dur})
	}
	return s
}

// env is what every scenario shares: the mock Auth0 (in-process, admin API on), the server binary and,
// when PostgreSQL is installed, one PostgreSQL server with a fresh database per scenario.
type env struct {
	t      *testing.T
	s      settings
	mock   *mockauth0.Server
	admin  *adminclient.Client
	bin    string
	pg     *pgtest.Server
	pgErr  error
	dbSeq  int
	mu     sync.Mutex
	report []*chaos.Report
}

func newEnv(t *testing.T, s settings) *env {
	ctx := t.Context()
	e := &env{t: t, s: s}
	root, err := chaos.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	e.bin = os.Getenv("CNPG_MCP_CHAOS_SERVER_BIN")
	if e.bin == "" {
		e.bin = filepath.Join(t.TempDir(), "cnpg-mcp-server")
		start := time.Now()
		if err := chaos.BuildServer(ctx, root, e.bin); err != nil {
			if os.Getenv("CNPG_MCP_REQUIRE_ALL") == "1" {
				t.Fatalf("%v (CNPG_MCP_REQUIRE_ALL=1)", err)
			}
			t.Skipf("cannot build cnpg-mcp-server: %v", err)
		}
		t.Logf("built cnpg-mcp-server in %s", time.Since(start).Round(100*time.Millisecond))
	}

	mc := mockauth0.DefaultConfig()
	mc.Admin = mconfig.AdminConfig{Enabled: true, Token: "chaos-admin-token"}
	for i := range mc.Clients {
		if mc.Clients[i].ClientID == mconfig.DefaultClientID {
			mc.Clients[i].RefreshToken.Leeway = int(flagLeeway.Seconds())
		}
	}
	if *flagEvery {
		for i := range mc.APIs {
			if mc.APIs[i].Identifier == mconfig.DefaultAPIIdentifier {
				mc.APIs[i].TokenLifetime = 600
			}
		}
	}
	e.mock, err = mockauth0.Start(ctx, mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.mock.Close() })
	e.admin = adminclient.New(e.mock.Issuer(), "chaos-admin-token", nil)

	if _, err := pgtest.BinDir(); err != nil {
		e.pgErr = err
		if os.Getenv("CNPG_MCP_REQUIRE_ALL") == "1" {
			t.Fatalf("%v (CNPG_MCP_REQUIRE_ALL=1)", err)
		}
	} else {
		e.pg = pgtest.Start(t)
	}
	return e
}

// server starts cnpg-mcp-server on a fresh store of the given driver.
func (e *env) server(t *testing.T, driver string) *chaos.Process {
	if driver == "postgres" && e.pg == nil {
		t.Skipf("PostgreSQL scenarios skipped: %v", e.pgErr)
	}
	dir := t.TempDir()
	addr, err := chaos.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cfg := chaos.ServerConfig{Dir: dir, Addr: addr, Issuer: e.mock.Issuer(), ClientID: mconfig.DefaultClientID,
		ClientSecret: mconfig.DefaultClientSecret, Audience: mconfig.DefaultAPIIdentifier, Driver: driver}
	if driver == "postgres" {
		cfg.DSN = e.database(t)
	}
	args, err := cfg.Args()
	if err != nil {
		t.Fatal(err)
	}
	p := &chaos.Process{Bin: e.bin, Args: args, Addr: addr, Log: filepath.Join(dir, "server.log")}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cnpg-mcp-server log (last 30 lines):\n%s", p.Tail(30))
		}
		_ = p.Close()
	})
	return p
}

// database creates a fresh database. pgtest runs with synchronous_commit=on (fsync off), so a stopped
// or killed PostgreSQL keeps every commit it acknowledged: a lost commit would be the harness's fault.
func (e *env) database(t *testing.T) string {
	e.mu.Lock()
	e.dbSeq++
	name := fmt.Sprintf("chaos_%d", e.dbSeq)
	e.mu.Unlock()
	conn, err := pgx.Connect(t.Context(), e.pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	return e.pg.DSN(name)
}

func (e *env) options(p *chaos.Process) chaos.Options {
	return chaos.Options{
		Target:  chaos.Target{MCPURL: p.BaseURL() + "/mcp", Username: mconfig.DefaultUserEmail, Password: mconfig.DefaultUserPassword},
		Clients: e.s.clients, Think: e.s.think, RetryFor: e.s.retryFor, RecheckFor: e.s.recheckFor,
		Logf: e.t.Logf,
	}
}

func (e *env) run(t *testing.T, o chaos.Options, sc chaos.Scenario) {
	sc.Cycles, sc.Settle, sc.RecoverWithin = e.s.cycles, e.s.settle, e.s.recoverWithin
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	rep, err := chaos.Run(ctx, o, sc)
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.report = append(e.report, rep)
	e.mu.Unlock()
	t.Logf("\n%s", rep.Details(10))
	for _, p := range rep.Problems() {
		t.Error(p)
	}
}

// TestChaos runs N clients that refresh and call the MCP endpoint in a loop against the real
// cnpg-mcp-server (a child process) while faults are injected, and asserts that no grant is lost, no
// valid access token is answered 401, every token the server acknowledged is usable at the end, and
// every client recovers after each fault (recovery times are reported).
func TestChaos(t *testing.T) {
	s := readSettings(t)
	e := newEnv(t, s)
	want := map[string]bool{}
	for _, n := range strings.Split(*flagScenarios, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	selected := func(name string) bool { return len(want) == 0 || want[name] }
	t.Logf("chaos settings: %d clients, %d faults per scenario, PostgreSQL outages %v, upstream faults %s, upstream refresh on every refresh: %t, upstream reuse interval %s",
		s.clients, s.cycles, s.pgDown, s.upDown, *flagEvery, *flagLeeway)

	for _, driver := range []string{"postgres", "bolt"} {
		name := "kill9-" + driver
		if !selected(name) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			p := e.server(t, driver)
			e.run(t, e.options(p), chaos.Scenario{Name: name, Description: "kill -9 of cnpg-mcp-server while refreshes are in flight, then a restart",
				Inject: func(ctx context.Context, r *chaos.Runner, _ int) (chaos.Window, error) {
					r.WaitRefreshInFlight(ctx, 2*time.Second)
					time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
					start := time.Now()
					if err := p.Kill(); err != nil {
						return chaos.Window{}, err
					}
					if err := p.Start(ctx); err != nil {
						return chaos.Window{}, err
					}
					return chaos.Window{Fault: "kill -9 and restart of cnpg-mcp-server", Start: start, End: time.Now()}, nil
				}})
		})
	}

	if selected("pgstop") {
		for _, o := range s.pgDown {
			name := fmt.Sprintf("pgstop-%s-%s", o.mode, o.d)
			t.Run(name, func(t *testing.T) {
				p := e.server(t, "postgres")
				e.run(t, e.options(p), chaos.Scenario{Name: name, Description: fmt.Sprintf("PostgreSQL stopped (pg_ctl stop -m %s) for %s while refreshes are in flight, then started", o.mode, o.d),
					Inject: func(ctx context.Context, r *chaos.Runner, _ int) (chaos.Window, error) {
						return e.pgOutage(ctx, r, o.mode, o.d)
					}})
			})
		}
	}
	if selected("pgrestart") {
		t.Run("pgrestart", func(t *testing.T) {
			p := e.server(t, "postgres")
			e.run(t, e.options(p), chaos.Scenario{Name: "pgrestart", Description: "pg_ctl restart -m fast while refreshes are in flight",
				Inject: func(ctx context.Context, r *chaos.Runner, _ int) (chaos.Window, error) {
					return e.pgOutage(ctx, r, "fast", 0)
				}})
		})
	}
	if selected("upstream") {
		t.Run("upstream", func(t *testing.T) {
			p := e.server(t, "postgres")
			faults := []struct {
				name string
				f    adminclient.Fault
			}{
				{"503 from /oauth/token", adminclient.Fault{Path: "/oauth/token", Status: 503, Error: "temporarily_unavailable"}},
				{"dropped connections at /oauth/token", adminclient.Fault{Path: "/oauth/token", Drop: true}},
				{"3 s latency at /oauth/token", adminclient.Fault{Path: "/oauth/token", Latency: 3 * time.Second}},
			}
			e.run(t, e.options(p), chaos.Scenario{Name: "upstream", Description: "upstream token endpoint faults through the mock's admin API: 503, dropped connections, latency (in turn)",
				Inject: func(ctx context.Context, r *chaos.Runner, cycle int) (chaos.Window, error) {
					f := faults[cycle%len(faults)]
					start := time.Now()
					if err := e.admin.SetFault(ctx, f.f); err != nil {
						return chaos.Window{}, err
					}
					time.Sleep(e.s.upDown)
					if err := e.admin.ClearFaults(ctx); err != nil {
						return chaos.Window{}, err
					}
					return chaos.Window{Fault: f.name, Start: start, End: time.Now()}, nil
				}})
		})
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.report) == 0 {
		return
	}
	table := chaos.Table(e.report)
	t.Logf("chaos summary:\n%s", table)
	if *flagReport != "" {
		var b strings.Builder
		fmt.Fprintf(&b, "# chaos run %s\n\n```\n%s```\n\n", time.Now().UTC().Format(time.RFC3339), table)
		for _, r := range e.report {
			fmt.Fprintf(&b, "```\n%s```\n\n", r.Details(20))
		}
		if err := os.WriteFile(*flagReport, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// pgOutage stops PostgreSQL while a refresh is in flight, keeps it down for d and starts it again.
func (e *env) pgOutage(ctx context.Context, r *chaos.Runner, mode string, d time.Duration) (chaos.Window, error) {
	r.WaitRefreshInFlight(ctx, 2*time.Second)
	start := time.Now()
	stop, how := e.pg.Stop, "pg_ctl stop -m fast"
	if mode == "kill" {
		stop, how = e.pg.Kill, "SIGKILL"
	}
	if err := stop(); err != nil {
		return chaos.Window{}, err
	}
	time.Sleep(d)
	if err := e.pg.Start(); err != nil {
		return chaos.Window{}, err
	}
	what := fmt.Sprintf("PostgreSQL stopped (%s) for %s and started", how, d)
	if d == 0 {
		what = fmt.Sprintf("PostgreSQL restarted (%s)", how)
	}
	return chaos.Window{Fault: what, Start: start, End: time.Now()}, nil
}
