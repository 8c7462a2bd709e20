// Command bench-peers is `make bench-peers`: our server and the npm peers side by side, each in front
// of its own mock Auth0, measured in interleaved rounds; it prints one table of ratios ours ÷ peer
// (bench/peerbench) with the machine's load average at the start and the end.
//
// Targets:
//
//	ours          bin/cnpg-mcp-server (release build), bolt store, every tool (tools/list ≈ 43 KB of
//	              JSON, uncompressed: the default)
//	ours-gzip     the same with --mcp-compress-tools-list: tools/list sent gzip-compressed (7 KB) to
//	              the load generator's Accept-Encoding: gzip, which inflates it
//	ours-1tool    bin/cnpg-mcp-server-benchtool (built with -tags benchtool) --mcp-toolsets bench:
//	              one tool like the peers' ("whoami"), so tools/list carries the same payload
//	ts-sdk-proxy  conformance/peers/ts-sdk-proxy (the MCP TypeScript SDK's proxy, rate limits off)
//	fastmcp-ts    conformance/peers/fastmcp-ts (fastmcp, TypeScript, with its OAuth proxy)
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/bench/peerbench"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/login"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/peers"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/redirect"
	mconfig "github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bench-peers:", err)
		os.Exit(1)
	}
}

type options struct {
	root, bin, cache, work, result, profile string
	peers                                   []string
	cfg                                     peerbench.Config
}

func parse(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench-peers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	cacheDir := os.Getenv("CACHE_DIR")
	if cacheDir == "" {
		if d, err := os.UserCacheDir(); err == nil {
			cacheDir = filepath.Join(d, "cnpg-mcp")
		}
	}
	fs.StringVar(&o.root, "root", ".", "repository root")
	fs.StringVar(&o.bin, "bin", "bin", "`directory` holding mockauth0, cnpg-mcp-server and cnpg-mcp-server-benchtool")
	fs.StringVar(&o.cache, "cache", filepath.Join(cacheDir, "peers"), "`directory` of the peers' npm installs (shared with make conformance-peers)")
	fs.StringVar(&o.work, "work", "", "`directory` for logs and state (default: a temporary one, removed)")
	fs.StringVar(&o.result, "result", "", "also write the output, with the command and the machine, to this `file` (bench/RESULT.md)")
	fs.StringVar(&o.profile, "profile", "", "write CPU profiles of our servers into this `directory` (both run the -tags benchtool build then)")
	peerList := fs.String("peers", "ts-sdk-proxy,fastmcp-ts", "peers to start, of conformance/peers (empty: ours only, e.g. with --profile)")
	methods := fs.String("methods", "tools/list,ping", "MCP methods measured")
	conc := fs.String("concurrency", "1,8,32", "concurrencies of the tools/list and ping runs")
	fs.IntVar(&o.cfg.Rounds, "rounds", 3, "interleaved rounds")
	fs.IntVar(&o.cfg.Requests, "requests", 2000, "measured requests per run (its bound in count)")
	fs.IntVar(&o.cfg.Warmup, "warmup", 200, "unmeasured requests before each run")
	fs.DurationVar(&o.cfg.MaxDuration, "max-time", 15*time.Second, "bound in time of each run and refresh chain")
	fs.IntVar(&o.cfg.Refreshes, "refreshes", 50, "refreshes per refresh chain (sequential, each with the last refresh token)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *peerList != "" {
		o.peers = strings.Split(*peerList, ",")
	}
	o.cfg.Methods = strings.Split(*methods, ",")
	for _, c := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 || n > 256 {
			return o, fmt.Errorf("--concurrency: %q is not a number from 1 to 256", c)
		}
		o.cfg.Concurrency = append(o.cfg.Concurrency, n)
	}
	if o.cfg.Rounds < 1 || o.cfg.Requests < 1 || o.cfg.Requests > 1_000_000 || o.cfg.MaxDuration <= 0 || o.cfg.MaxDuration > 10*time.Minute {
		return o, errors.New("--rounds ≥ 1, --requests from 1 to 1,000,000 and --max-time from 1 ns to 10 min, please")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	if o.work == "" {
		d, err := os.MkdirTemp("", "cnpg-mcp-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.work = d
	}
	var out strings.Builder
	w := io.MultiWriter(stdout, &out)
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	started := time.Now()
	loadStart := loadavg()

	var targets []*peerbench.Target
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	ourBin, ourArgs := filepath.Join(o.bin, "cnpg-mcp-server"), []string(nil)
	if o.profile != "" { // the benchmark's build, without its one-tool toolset
		ourBin, ourArgs = filepath.Join(o.bin, "cnpg-mcp-server-benchtool"), []string{"--mcp-toolsets", strings.Join(tools.ToolsetNames(), ",")}
	}
	for _, s := range []struct {
		name, binary, tools string
		args                []string
	}{
		{"ours", ourBin, "all tools", ourArgs},
		{"ours-gzip", ourBin, "all tools, mcp.compress_tools_list", append(slices.Clone(ourArgs), "--mcp-compress-tools-list")},
		{"ours-1tool", filepath.Join(o.bin, "cnpg-mcp-server-benchtool"), "1 tool (whoami)", []string{"--mcp-toolsets", "bench"}},
	} {
		t, stop, err := startOurs(ctx, o, s.name, s.binary, s.args)
		if err != nil {
			return err
		}
		stops = append(stops, stop)
		t.Tools = s.tools
		targets = append(targets, t)
		logf("%s: %s", t.Name, t.MCP)
	}
	po := peers.Options{Root: o.root, Mock: filepath.Join(o.bin, "mockauth0"), Cache: o.cache, Work: o.work, Log: stderr}
	for _, name := range o.peers {
		p, err := peers.Lookup(name)
		if err != nil {
			return err
		}
		st, err := peers.Start(ctx, p, po)
		if err != nil {
			return err
		}
		stops = append(stops, st.Close)
		targets = append(targets, &peerbench.Target{Name: p.Name, MCP: st.MCP, PID: st.PeerPID(), UpstreamPID: st.MockPID(),
			Scope: "openid profile email offline_access", Tools: "1 tool (whoami)"})
	}

	b, err := browser.Start(ctx, browser.Options{})
	if err != nil {
		return err
	}
	defer b.Close()
	rl, err := redirect.Start()
	if err != nil {
		return err
	}
	defer rl.Close()
	hc := &http.Client{Timeout: 30 * time.Second}
	oc := oauthclient.New(hc)
	oc.UserAgent, oc.ProtocolVersion = "cnpg-mcp bench-peers", peerbench.ProtocolVersion
	l := peerbench.Login{Browser: b, Redirect: rl, OAuth: oc,
		Driver: login.New(login.Options{Credentials: login.Credentials{Username: mconfig.DefaultUserEmail, Password: mconfig.DefaultUserPassword}})}
	payloads := map[string]peerbench.Payload{}
	for _, t := range targets {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err := t.SignIn(sctx, l)
		cancel()
		if err != nil {
			return err
		}
		if payloads[t.Name], err = t.Payload(ctx, oc); err != nil {
			return err
		}
		logf("%s: signed in through the browser; tools/list %s", t.Name, payloads[t.Name])
	}
	b.Close()

	o.cfg.Log = w
	fmt.Fprintf(w, "Raw runs (%d rounds; %d requests per run after %d warm-up, at most %s; refresh chains of %d):\n\n```\n",
		o.cfg.Rounds, o.cfg.Requests, o.cfg.Warmup, o.cfg.MaxDuration, o.cfg.Refreshes)
	ms, err := peerbench.Run(ctx, targets, o.cfg)
	fmt.Fprintln(w, "```")
	if err != nil {
		return err
	}
	loadEnd := loadavg()

	var names []string
	for _, t := range targets {
		names = append(names, t.Name)
	}
	fmt.Fprintf(w, "\nPayloads (MCP %s; tools/list result and whole HTTP body, decoded). Every target gets the same request headers, "+
		"Accept-Encoding: gzip among them as from any default Go client (net/http asks for gzip and decompresses); "+
		"a target that compresses its answer says so here and in the body column:\n\n", peerbench.ProtocolVersion)
	for _, t := range targets {
		fmt.Fprintf(w, "- %s: %s — %s\n", t.Name, t.Tools, payloads[t.Name])
	}
	comps := []peerbench.Comparison{{Ours: "ours-1tool", Peer: "fastmcp-ts"}, {Ours: "ours", Peer: "fastmcp-ts"},
		{Ours: "ours", Peer: "ts-sdk-proxy"}, {Ours: "ours-1tool", Peer: "ts-sdk-proxy"}, {Ours: "ours-gzip", Peer: "fastmcp-ts"}}
	fmt.Fprintf(w, "\nRatios ours ÷ peer: median over the rounds of the per-round throughput ratio (range over the rounds), and the peer's server CPU per request ÷ ours:\n\n%s",
		peerbench.RatioTable(ms, comps))
	fmt.Fprintf(w, "\nMedians over the rounds:\n\n%s", peerbench.AbsoluteTable(ms, names))
	fmt.Fprintf(w, "\nGoals:\n\n")
	for _, v := range peerbench.Verdicts(ms, []peerbench.Goal{
		{Name: "tools/list at equal payload", Compare: comps[0], Methods: []string{"tools/list"}, Factor: 2},
		{Name: "tools/list, our full list", Compare: comps[1], Methods: []string{"tools/list"}, Factor: 5},
		{Name: "the TS SDK proxy", Compare: comps[2], Methods: []string{"tools/list", "ping"}, Factor: 3},
	}) {
		fmt.Fprintf(w, "- %s\n", v)
	}
	fmt.Fprintf(w, "\nLoad average (1/5/15 min): %s at the start, %s at the end; %s in all.\n", loadStart, loadEnd, time.Since(started).Round(time.Second))

	if o.result != "" {
		return writeResult(o, args, out.String())
	}
	return nil
}

// startOurs starts a mock Auth0 (default tenant) and our server binary in front of it, with a bolt
// store and a kubeconfig naming an API server that is not there: neither tools/list nor ping calls
// Kubernetes.
func startOurs(ctx context.Context, o options, name, binary string, extra []string) (*peerbench.Target, func(), error) {
	dir := filepath.Join(o.work, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	var procs []*peers.Process
	stop := func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].Stop()
		}
	}
	fail := func(err error) (*peerbench.Target, func(), error) {
		stop()
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	mock, err := peers.StartProcess(filepath.Join(dir, "mockauth0.log"), nil, "", filepath.Join(o.bin, "mockauth0"), "--addr", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	procs = append(procs, mock)
	issuer, err := mock.WaitLine(ctx, regexp.MustCompile(`^mockauth0 listening on (\S+)`), 30*time.Second)
	if err != nil {
		return fail(fmt.Errorf("mockauth0: %w", err))
	}
	files := map[string]string{
		"client-secret": mconfig.DefaultClientSecret,
		"signing-key":   base64.StdEncoding.EncodeToString(randomBytes(32)),
		"sealing-key":   base64.StdEncoding.EncodeToString(randomBytes(32)),
		"kubeconfig": "apiVersion: v1\nkind: Config\nclusters: [{name: none, cluster: {server: 'https://127.0.0.1:1'}}]\n" +
			"users: [{name: none, user: {token: none}}]\ncontexts: [{name: none, context: {cluster: none, user: none}}]\ncurrent-context: none\n",
	}
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o600); err != nil {
			return fail(err)
		}
	}
	port, err := peers.FreePort()
	if err != nil {
		return fail(err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	args := append([]string{"serve", "--issuer", issuer, "--audience", mconfig.DefaultAPIIdentifier, "--client-id", mconfig.DefaultClientID,
		"--client-secret-file", filepath.Join(dir, "client-secret"), "--public-url", base, "--listen", "127.0.0.1:" + strconv.Itoa(port),
		"--signing-key-file", filepath.Join(dir, "signing-key"), "--sealing-key-file", filepath.Join(dir, "sealing-key"),
		"--storage-driver", "bolt", "--storage-path", filepath.Join(dir, "store.db"),
		"--kubernetes-kubeconfig", filepath.Join(dir, "kubeconfig"), "--log-level", "warn"}, extra...)
	var env []string
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return fail(err)
		}
		abs, _ := filepath.Abs(filepath.Join(o.profile, name+".cpu.pprof"))
		env = append(os.Environ(), "CNPG_MCP_BENCH_CPUPROFILE="+abs)
	}
	srv, err := peers.StartProcess(filepath.Join(dir, "server.log"), env, "", binary, args...)
	if err != nil {
		return fail(err)
	}
	procs = append(procs, srv)
	if err := waitHTTP(ctx, base+"/.well-known/oauth-protected-resource/mcp", 60*time.Second); err != nil {
		return fail(fmt.Errorf("%s did not start (log %s): %w", binary, filepath.Join(dir, "server.log"), err))
	}
	t := &peerbench.Target{Name: name, MCP: base + "/mcp", PID: srv.Pid(), UpstreamPID: mock.Pid(), Scope: "mcp:read mcp:write"}
	return t, stop, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if f, err := os.Open("/dev/urandom"); err == nil {
		_, _ = io.ReadFull(f, b)
		f.Close()
	}
	return b
}

// waitHTTP polls url until it answers 200.
func waitHTTP(ctx context.Context, url string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no 200 from %s within %s (last: %v)", url, limit, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// writeResult writes bench/RESULT.md: the command, the date, the machine and the output. Only
// repository-relative paths appear in it.
func writeResult(o options, args []string, output string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# make bench-peers — last run\n\n")
	flags := "none"
	if a := relArgs(args); len(a) > 0 {
		flags = "`" + strings.Join(a, " ") + "`"
	}
	fmt.Fprintf(&b, "Written by `make bench-peers BENCH_WRITE_RESULT=1` (bench/cmd/bench-peers; flags other than paths: %s).\n\n", flags)
	fmt.Fprintf(&b, "- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- machine: %s, %d CPUs, %s, %s/%s, %s, Node.js %s\n", cpuModel(), runtime.NumCPU(), memTotal(), runtime.GOOS, runtime.GOARCH,
		runtime.Version(), nodeVersion())
	fmt.Fprintf(&b, "- every process (servers, mocks, load generator, other people's work) shares those CPUs; the load average below says how busy the machine was\n")
	fmt.Fprintf(&b, "- every target gets the same requests, headers included: the load generator is a default Go client (Accept-Encoding: gzip, answers decompressed by net/http and checked); body sizes are decoded JSON\n\n")
	b.WriteString(output)
	return os.WriteFile(o.result, []byte(b.String()), 0o644)
}

// relArgs drops flags whose values are paths of this machine.
func relArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name := strings.TrimLeft(strings.SplitN(a, "=", 2)[0], "-")
		switch name {
		case "root", "bin", "cache", "work", "result", "profile":
			if !strings.Contains(a, "=") {
				i++
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(v)
			if kb, err := strconv.ParseFloat(f[0], 64); err == nil {
				return fmt.Sprintf("%.0f GiB", kb/(1<<20))
			}
		}
	}
	return "? GiB"
}

func nodeVersion() string {
	b, err := exec.Command("node", "--version").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}
