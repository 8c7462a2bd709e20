package kube

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const kubeconfigYAML = `apiVersion: v1
kind: Config
clusters:
- name: kind-dev
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: dev
  user: {token: not-a-real-token}
contexts:
- name: kind-dev
  context: {cluster: kind-dev, user: dev, namespace: databases}
- name: other
  context: {cluster: kind-dev, user: dev}
current-context: kind-dev
`

// env returns LoadOptions that look only inside dir: no $KUBECONFIG, no in-cluster variables, a home
// file and a service-account directory that do not exist unless the test creates them.
func env(dir string, vars map[string]string) LoadOptions {
	return LoadOptions{
		Getenv:            func(k string) string { return vars[k] },
		HomeFile:          filepath.Join(dir, "home", ".kube", "config"),
		ServiceAccountDir: filepath.Join(dir, "serviceaccount"),
	}
}

func write(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Without any configuration the error names every place looked at, what was found there, and how
// to configure one (the setting of the command that loads it); it is a NotConfiguredError.
func TestLoadNotConfiguredSaysWhatWasLookedFor(t *testing.T) {
	dir := t.TempDir()
	empty := write(t, filepath.Join(dir, "empty.yaml"), "")
	for _, tc := range []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"nothing anywhere", nil, []string{
			"no Kubernetes configuration found",
			"--kubernetes-kubeconfig: not set",
			"$KUBECONFIG: not set",
			"~/.kube/config (" + filepath.Join(dir, "home", ".kube", "config") + "): no such file",
			"in-cluster service account: KUBERNETES_SERVICE_HOST not set, no token at " + filepath.Join(dir, "serviceaccount", "token"),
			"Configure one: pass --kubernetes-kubeconfig with a kubeconfig file, set KUBECONFIG, write ~/.kube/config",
			"run the server in a pod with a service account",
		}},
		{"KUBECONFIG names a missing file", map[string]string{"KUBECONFIG": filepath.Join(dir, "gone.yaml")}, []string{
			"$KUBECONFIG=" + filepath.Join(dir, "gone.yaml") + ": no such file",
		}},
		{"KUBECONFIG names an empty file", map[string]string{"KUBECONFIG": empty}, []string{
			"$KUBECONFIG=" + empty + ": no clusters or contexts in it",
		}},
		{"in-cluster variables without a token", map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, []string{
			"in-cluster service account: KUBERNETES_SERVICE_HOST is set, no token at",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := env(dir, tc.vars)
			o.Setting = "--kubernetes-kubeconfig"
			_, _, err := Load(o)
			if !IsNotConfigured(err) {
				t.Fatalf("want a NotConfiguredError, got %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the message lacks %q:\n%s", w, err)
				}
			}
			if strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), "connection refused") {
				t.Errorf("the message mentions a placeholder address: %s", err)
			}
		})
	}
}

// A configuration that exists but is broken is an error of its own (never "not configured", so
// make run does not hide it), naming the file and the setting it came from.
func TestLoadBrokenConfigIsAnError(t *testing.T) {
	dir := t.TempDir()
	good := write(t, filepath.Join(dir, "kubeconfig"), kubeconfigYAML)
	for _, tc := range []struct {
		name string
		o    func(LoadOptions) LoadOptions
		want string
	}{
		{"explicit file missing", func(o LoadOptions) LoadOptions { o.Kubeconfig = filepath.Join(dir, "nope"); return o }, "kubeconfig " + filepath.Join(dir, "nope") + " (from --kubeconfig)"},
		{"unknown context", func(o LoadOptions) LoadOptions { o.Kubeconfig, o.Context = good, "prod"; return o }, `context "prod"`},
		{"not YAML", func(o LoadOptions) LoadOptions {
			o.Kubeconfig = write(t, filepath.Join(dir, "bad"), "{{{")
			return o
		}, "kubeconfig " + filepath.Join(dir, "bad")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Load(tc.o(env(dir, nil)))
			if err == nil || IsNotConfigured(err) {
				t.Fatalf("want a plain error, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("the error lacks %q: %v", tc.want, err)
			}
		})
	}
}

// The Source names what was used: files, context, API server and the default namespace, from an
// explicit file, $KUBECONFIG or ~/.kube/config; never credentials.
func TestLoadSource(t *testing.T) {
	dir := t.TempDir()
	file := write(t, filepath.Join(dir, "kubeconfig"), kubeconfigYAML)
	home := env(dir, nil).HomeFile
	for _, tc := range []struct {
		name      string
		o         LoadOptions
		files     []string
		ctx, ns   string
		writeHome bool
	}{
		{"explicit file", func() LoadOptions { o := env(dir, nil); o.Kubeconfig = file; return o }(), []string{file}, "kind-dev", "databases", false},
		{"explicit context", func() LoadOptions { o := env(dir, nil); o.Kubeconfig, o.Context = file, "other"; return o }(), []string{file}, "other", "default", false},
		{"$KUBECONFIG", env(dir, map[string]string{"KUBECONFIG": file}), []string{file}, "kind-dev", "databases", false},
		{"~/.kube/config", env(dir, nil), []string{home}, "kind-dev", "databases", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.writeHome {
				write(t, home, kubeconfigYAML)
				defer os.Remove(home)
			}
			cfg, src, err := Load(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if src.InCluster || strings.Join(src.Files, ",") != strings.Join(tc.files, ",") || src.Context != tc.ctx || src.Server != "https://127.0.0.1:6443" || src.Namespace != tc.ns || cfg.Host != src.Server {
				t.Fatalf("source %+v", src)
			}
			if strings.Contains(strings.Join(anyStrings(src.LogAttrs()), " "), "not-a-real-token") {
				t.Fatal("the log attributes carry the credential")
			}
		})
	}
}

func anyStrings(a []any) []string {
	var out []string
	for _, v := range a {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case []string:
			out = append(out, v...)
		}
	}
	return out
}

// Unconfigured clients answer the readiness check with the configuration error itself.
func TestUnconfiguredReadyCheck(t *testing.T) {
	want := &NotConfiguredError{Looked: []string{"x: not set"}, Setting: "--kubeconfig"}
	err := Unconfigured(want).ReadyCheck(t.Context())
	if !errors.Is(err, want) || !strings.Contains(err.Error(), "no Kubernetes configuration found") {
		t.Fatalf("ReadyCheck: %v", err)
	}
}
