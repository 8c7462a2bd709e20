package app

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/server/config"
)

// Without any Kubernetes configuration (make run on a laptop without a cluster) the server starts,
// warns at start-up naming what it looked for and how to configure it, and every tool call and
// /readyz answer with that message — never a connection error to a placeholder address.
func TestNoKubernetesConfigurationSaysWhatToDo(t *testing.T) {
	s := newStack(t, nil)
	t.Setenv("KUBECONFIG", filepath.Join(s.dir, "no-such-kubeconfig"))
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	in := s.start(nil)

	var warn map[string]any
	for _, line := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"kubernetes`) {
			_ = json.Unmarshal([]byte(line), &warn)
		}
	}
	msg, _ := warn["msg"].(string)
	if warn["level"] != "WARN" {
		t.Fatalf("no start-up warning about Kubernetes:\n%s", s.logs.String())
	}
	want := []string{
		"tool calls will fail until this is fixed: no Kubernetes configuration found",
		"--kubernetes-kubeconfig (or CNPG_MCP_KUBERNETES_KUBECONFIG, kubernetes.kubeconfig in the config file): not set",
		"$KUBECONFIG=" + filepath.Join(s.dir, "no-such-kubeconfig") + ": no such file",
		"in-cluster service account: KUBERNETES_SERVICE_HOST not set",
		"Configure one: pass --kubernetes-kubeconfig",
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("the start-up warning lacks %q:\n%s", w, msg)
		}
	}

	id := s.register(in)
	loc := s.login(in, in, id, nil)
	at := s.exchange(in, id, loc.Query().Get("code"))["access_token"].(string)
	st, hdr, body := s.rpc(in, at, "", initialize)
	if st != 200 {
		t.Fatalf("initialize: %d %s", st, body)
	}
	st, _, body = s.rpc(in, at, hdr.Get("Mcp-Session-Id"), `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_postgres_clusters","arguments":{}}}`)
	if st != 200 || !strings.Contains(body, `"isError":true`) {
		t.Fatalf("tools/call: %d %s", st, body)
	}
	for _, w := range []string{"list_postgres_clusters cannot run: this MCP server has no access to Kubernetes", "no Kubernetes configuration found", "Configure one"} {
		if !strings.Contains(body, w) {
			t.Errorf("the tool error lacks %q: %s", w, body)
		}
	}
	for _, bad := range []string{"127.0.0.1:1", "connection refused"} {
		if strings.Contains(body, bad) {
			t.Errorf("the tool error mentions %q: %s", bad, body)
		}
	}
	res, body := s.get(nil, in.base+"/readyz")
	if res.StatusCode != 503 || !strings.Contains(body, "no Kubernetes configuration found") {
		t.Errorf("/readyz: %d %s", res.StatusCode, body)
	}
}

// With a configuration, the start-up log says which one: source, file, context and API server.
func TestStartupLogNamesKubernetesConfiguration(t *testing.T) {
	env := startKube(t)
	s := newStack(t, nil)
	kubeconfig := kubeconfigFor(t, env, s.dir)
	s.start(func(c *config.Config) { c.Kubernetes.Kubeconfig = kubeconfig })
	var got map[string]any
	for _, line := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"kubernetes"`) {
			_ = json.Unmarshal([]byte(line), &got)
		}
	}
	files, _ := got["files"].([]any)
	if got["level"] != "INFO" || got["source"] != "kubeconfig" || len(files) != 1 || files[0] != kubeconfig || got["context"] != "kubetest" ||
		got["server"] != env.Admin.Host || got["namespace"] != "default" {
		t.Fatalf("start-up log line: %v\n%s", got, s.logs.String())
	}
}
