package doccheck

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The binaries whose command lines the docs show, and the package each is built from.
var binaries = map[string]string{
	"cnpg-mcp-server":      "./server",
	"mockauth0":            "./mockauth0/cmd/mockauth0",
	"mcp-auth-conformance": "./conformance/cmd/mcp-auth-conformance",
	"devstack":             "./hack/devstack",
}

// subjects: the command a file's flags mentioned on their own (`--mcp-read-only`) belong to, unless
// the same line names another command. kind/README.md discusses docker's and kind's flags.
func subject(file string) string {
	switch filepath.ToSlash(file) {
	case "mockauth0/README.md":
		return "mockauth0"
	case "conformance/README.md":
		return "mcp-auth-conformance"
	case "kind/README.md":
		return ""
	}
	return "cnpg-mcp-server"
}

// A command line found in a document.
type docLine struct {
	file string
	line int
	argv []string // argv[0]: a key of binaries, or "make"
}

func (d docLine) String() string {
	return fmt.Sprintf("%s:%d: %s", d.file, d.line, strings.Join(d.argv, " "))
}

// A flag mentioned on its own in prose, e.g. "`--mcp-read-only` registers no mutating tool".
type bareFlag struct {
	file, lineText string
	line           int
	flag           string
}

// TestDocumentedCommandLines: every command line of our binaries in the Markdown files (code
// blocks and inline code) parses — it is run with --help appended, which parses every flag and
// exits 0 — and names only flags the command has; every make target exists and its variables are
// used by the Makefile (RUN_ARGS is checked as devstack's command line); every flag mentioned on
// its own exists on the command the file (or the line) is about.
func TestDocumentedCommandLines(t *testing.T) {
	root := repoRoot(t)
	var lines []docLine
	var flags []bareFlag
	for _, f := range markdownFiles(t, root) {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		l, fl := scan(f, string(b))
		lines, flags = append(lines, l...), append(flags, fl...)
	}
	if len(lines) < 10 || len(flags) < 10 {
		t.Fatalf("found only %d command lines and %d flags: the scanner is broken", len(lines), len(flags))
	}
	bins := buildBinaries(t, root)
	mk := readMakefiles(t, root)
	h := &helps{bins: bins, out: map[string]map[string]bool{}}

	for _, d := range lines {
		if d.argv[0] == "make" {
			checkMake(t, d, mk, h)
			continue
		}
		checkCommand(t, d, d.argv, h)
	}
	for _, f := range flags {
		if foreign(f.lineText) {
			continue // the line is about another program's flags (docker, a client driver, …)
		}
		cmds := commandsOn(f.lineText)
		if s := subject(f.file); s != "" {
			cmds = append(cmds, s)
		}
		if len(cmds) == 0 {
			continue
		}
		name := flagName(f.flag)
		ok := false
		for _, c := range cmds {
			if h.flags(t, c)[name] {
				ok = true
			}
		}
		if !ok {
			t.Errorf("%s:%d: `%s` is not a flag of %s%s", f.file, f.line, f.flag, strings.Join(cmds, " or "), h.suggest(t, cmds, name))
		}
	}
	t.Logf("checked %d command lines and %d flags mentioned on their own", len(lines), len(flags))
}

// The scanner finds what the example needs: a bare --read-only in README prose is a
// cnpg-mcp-server flag to check, `make run RUN_ARGS="..."` is a make line, and shell syntax
// (continuations, &&, redirections, comments, [optional] flags) is taken apart.
func TestScan(t *testing.T) {
	doc := "Start: `make run RUN_ARGS=\"--addr 127.0.0.1:9090\"`; `--read-only` registers no tool.\n" +
		"```sh\n" +
		"bin/mockauth0 --print-default-config > tenant.yaml && bin/mockauth0 --config tenant.yaml   # two\n" +
		"bin/mcp-auth-conformance --target https://x/mcp \\\n    --username u@example.com\n" +
		"// cnpg-mcp-server list-tools [--read-only]:\n" +
		"image: cnpg-mcp/cnpg-mcp-server:dev\n" +
		"helm upgrade --install x chart --set a=b\n" +
		"mockauth0 listening on http://127.0.0.1:PORT/\n" +
		"```\n"
	lines, flags := scan("README.md", doc)
	var got []string
	for _, l := range lines {
		got = append(got, l.String())
	}
	want := []string{
		`README.md:1: make run RUN_ARGS=--addr 127.0.0.1:9090`,
		`README.md:3: mockauth0 --print-default-config`,
		`README.md:3: mockauth0 --config tenant.yaml`,
		`README.md:4: mcp-auth-conformance --target https://x/mcp --username u@example.com`,
		`README.md:6: cnpg-mcp-server list-tools --read-only`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("command lines:\n got %q\nwant %q", got, want)
	}
	if len(flags) != 1 || flags[0].flag != "--read-only" || flags[0].line != 1 || subject(flags[0].file) != "cnpg-mcp-server" {
		t.Errorf("bare flags: %+v", flags)
	}
	// Flags of programs that are not ours are left alone; ours are still checked.
	for line, want := range map[string]bool{
		"`--network host` lets the browser reach a server on the host": true,
		"- **Inspector CLI 2.12.0** — `--protocol-era legacy`":         true,
		"use `--read-only` to register no mutating tool":               false,
	} {
		if got := foreign(line); got != want {
			t.Errorf("foreign(%q) = %v, want %v", line, got, want)
		}
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "go.mod")); err != nil {
		t.Fatal("repository root not found: ", err)
	}
	return d
}

// markdownFiles are the repository's documentation: every *.md outside dot-directories, testdata
// and node_modules.
func markdownFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var inlineCode = regexp.MustCompile("`([^`\n]+)`")

// scan finds the command lines and the flags mentioned on their own in one Markdown file.
func scan(file, content string) (lines []docLine, flags []bareFlag) {
	inCode := false
	var pending string
	pendingLine := 0
	for i, raw := range strings.Split(content, "\n") {
		n := i + 1
		trimmed := strings.TrimSpace(raw)
		if strings.HasPrefix(trimmed, "```") {
			inCode = !inCode
			pending = ""
			continue
		}
		if inCode {
			if pending == "" {
				pendingLine = n
			}
			if strings.HasSuffix(trimmed, "\\") {
				pending += strings.TrimSuffix(trimmed, "\\") + " "
				continue
			}
			for _, argv := range commands(pending + trimmed) {
				lines = append(lines, docLine{file, pendingLine, argv})
			}
			pending = ""
			continue
		}
		for _, m := range inlineCode.FindAllStringSubmatch(raw, -1) {
			code := strings.TrimSpace(m[1])
			if strings.HasPrefix(code, "--") && !strings.Contains(code, "<") { // "--<key>" is a pattern
				flags = append(flags, bareFlag{file: file, line: n, flag: strings.Fields(code)[0], lineText: raw})
				continue
			}
			for _, argv := range commands(code) {
				lines = append(lines, docLine{file, n, argv})
			}
		}
	}
	return lines, flags
}

// commands returns the argv of each command of ours (or make) in one shell line.
func commands(line string) [][]string {
	var out [][]string
	for _, seg := range segments(tokenize(line)) {
		start := -1
		for i, tok := range seg {
			name := binaryName(tok)
			if _, ok := binaries[name]; ok {
				start = i
				break
			}
			if tok == "make" && i == 0 {
				start = i
				break
			}
		}
		if start < 0 {
			continue
		}
		argv := []string{binaryName(seg[start])}
		if rest := seg[start+1:]; argv[0] != "make" && argv[0] != "cnpg-mcp-server" && len(rest) > 0 && !strings.HasPrefix(strings.TrimLeft(rest[0], "["), "-") {
			continue // "mockauth0 listening on …": output or prose, not a command line (only cnpg-mcp-server has subcommands)
		}
		for _, tok := range seg[start+1:] {
			opt := strings.HasPrefix(tok, "[")
			tok = strings.TrimLeft(tok, "[")
			if opt {
				tok = strings.TrimRight(tok, "]:")
			}
			tok = strings.TrimRight(tok, "]")
			if tok == "" || tok == "..." || tok == "…" || tok == "flags" || tok == "command" {
				continue
			}
			argv = append(argv, tok)
		}
		out = append(out, argv)
	}
	return out
}

// binaryName strips the directories a doc may put in front of a binary (bin/, ./bin/, $(BIN)/).
func binaryName(tok string) string {
	for _, p := range []string{"./bin/", "bin/", "$(BIN)/", "../bin/"} {
		if strings.HasPrefix(tok, p) {
			return strings.TrimPrefix(tok, p)
		}
	}
	return tok
}

// tokenize splits a shell line into words and operators, honouring quotes, dropping a comment.
func tokenize(s string) []string {
	var toks []string
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			toks = append(toks, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				j = len(s) - i - 1
			}
			cur.WriteString(s[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case c == ' ' || c == '\t':
			flush()
		case c == '#' && !inWord:
			flush()
			return toks
		case c == '&' || c == '|' || c == ';' || c == '>' || c == '<':
			flush()
			op := string(c)
			if i+1 < len(s) && (s[i+1] == c) {
				op += string(c)
				i++
			}
			toks = append(toks, op)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return toks
}

// segments splits tokens at && || | ; and drops redirections with their targets.
func segments(toks []string) [][]string {
	var out [][]string
	var cur []string
	for i := 0; i < len(toks); i++ {
		switch toks[i] {
		case "&&", "||", "|", ";", "&":
			out = append(out, cur)
			cur = nil
		case ">", ">>", "<", "<<":
			i++ // the redirection's target
			if len(cur) > 0 && cur[len(cur)-1] == "2" {
				cur = cur[:len(cur)-1]
			}
		default:
			cur = append(cur, toks[i])
		}
	}
	return append(out, cur)
}

// foreign reports whether a prose line is about a program that is not ours (its flags are its own):
// docker's in the container instructions, the interop drivers' (the TypeScript SDK and Inspector
// clients take --protocol-era, --relogin …).
func foreign(line string) bool {
	for _, m := range []string{"docker run", "`--network", "TypeScript SDK", "Inspector CLI", "kubectl ", "helm install", "helm upgrade"} {
		if strings.Contains(line, m) {
			return true
		}
	}
	return false
}

// commandsOn names the other commands a prose line mentions, whose flags may be meant there.
func commandsOn(line string) []string {
	var out []string
	for _, c := range []struct{ mention, cmd string }{
		{"list-tools", "cnpg-mcp-server list-tools"}, {"stdio", "cnpg-mcp-server stdio"}, {"setup-auth0", "cnpg-mcp-server setup-auth0"},
		{"make run", "devstack"}, {"RUN_ARGS", "devstack"}, {"devstack", "devstack"},
		{"mockauth0", "mockauth0"}, {"mock Auth0", "mockauth0"}, {"mcp-auth-conformance", "mcp-auth-conformance"},
	} {
		if strings.Contains(line, c.mention) && !slices.Contains(out, c.cmd) {
			out = append(out, c.cmd)
		}
	}
	return out
}

func flagName(arg string) string {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	return name
}

// buildBinaries builds our four commands once into a temporary directory.
func buildBinaries(t *testing.T, root string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out := map[string]string{}
	var pkgs []string
	for name, pkg := range binaries {
		pkgs = append(pkgs, pkg)
		out[name] = filepath.Join(dir, filepath.Base(pkg))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// helps runs each command's --help once and keeps the flags it lists.
type helps struct {
	bins map[string]string
	mu   sync.Mutex
	out  map[string]map[string]bool // "cnpg-mcp-server stdio" -> flag names
}

var helpFlag = regexp.MustCompile(`(?m)^ {1,4}--?([A-Za-z0-9][A-Za-z0-9._-]*)`)

func (h *helps) flags(t *testing.T, command string) map[string]bool {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if f, ok := h.out[command]; ok {
		return f
	}
	argv := append(strings.Fields(command), "--help")
	code, out := h.run(t, argv)
	if code != 0 {
		t.Fatalf("%s: exit %d\n%s", strings.Join(argv, " "), code, out)
	}
	f := map[string]bool{"help": true, "h": true}
	for _, m := range helpFlag.FindAllStringSubmatch(out, -1) {
		f[m[1]] = true
	}
	if len(f) < 3 {
		t.Fatalf("%s lists no flags:\n%s", strings.Join(argv, " "), out)
	}
	h.out[command] = f
	return f
}

func (h *helps) suggest(t *testing.T, cmds []string, name string) string {
	var near []string
	for _, c := range cmds {
		for f := range h.flags(t, c) {
			if len(name) >= 4 && (strings.Contains(f, name) || strings.Contains(name, f) && len(f) >= 4) {
				near = append(near, c+" --"+f)
			}
		}
	}
	slices.Sort(near)
	if len(near) == 0 {
		return ""
	}
	return " (did you mean " + strings.Join(near, ", ") + "?)"
}

// run runs argv (argv[0] a key of binaries) with a bare environment in an empty directory, bounded
// in time: only flag parsing is expected to happen.
func (h *helps) run(t *testing.T, argv []string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bins[argv[0]], argv[1:]...)
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + cmd.Dir}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		return -1, "timed out: the command did more than parse its flags\n" + out.String()
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

// checkCommand: every flag of the documented line exists on the command, and the line with --help
// appended parses (exit 0).
func checkCommand(t *testing.T, d docLine, argv []string, h *helps) {
	t.Helper()
	command := argv[0]
	if argv[0] == "cnpg-mcp-server" && len(argv) > 1 && !strings.HasPrefix(argv[1], "-") && argv[1] != "serve" && argv[1] != "help" {
		command += " " + argv[1]
	}
	known := h.flags(t, command)
	bad := false
	for _, a := range argv[1:] {
		if strings.HasPrefix(a, "-") && !known[flagName(a)] {
			t.Errorf("%s: %s is not a flag of %s%s", d, a, command, h.suggest(t, []string{command}, flagName(a)))
			bad = true
		}
	}
	if bad {
		return
	}
	if code, out := h.run(t, append(slices.Clone(argv), "--help")); code != 0 {
		t.Errorf("%s: with --help appended it exits %d:\n%s", d, code, out)
	}
}

type makefiles struct {
	targets map[string]bool
	text    string
}

var makeRule = regexp.MustCompile(`(?m)^([A-Za-z0-9_.%/$() -]+?)\s*:([^=]|$)`)

func readMakefiles(t *testing.T, root string) makefiles {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(root, "mk", "*.mk"))
	paths = append(paths, filepath.Join(root, "Makefile"))
	m := makefiles{targets: map[string]bool{}}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m.text += string(b) + "\n"
		for _, r := range makeRule.FindAllStringSubmatch(string(b), -1) {
			for _, tgt := range strings.Fields(r[1]) {
				m.targets[tgt] = true
			}
		}
	}
	return m
}

// checkMake: the targets exist, the variables are ones the Makefile reads, and RUN_ARGS is a valid
// devstack command line.
func checkMake(t *testing.T, d docLine, mk makefiles, h *helps) {
	t.Helper()
	for _, a := range d.argv[1:] {
		if name, val, ok := strings.Cut(a, "="); ok {
			if !strings.Contains(mk.text, "$("+name+")") && !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(name)+`\s*[:?+]?=`).MatchString(mk.text) {
				t.Errorf("%s: the Makefile does not read %s", d, name)
			}
			if name == "RUN_ARGS" {
				checkCommand(t, d, append([]string{"devstack"}, tokenize(val)...), h)
			}
			continue
		}
		if strings.HasPrefix(a, "-") {
			continue // make's own flags
		}
		if !mk.targets[a] {
			t.Errorf("%s: no make target %q", d, a)
		}
	}
}
