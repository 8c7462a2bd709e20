// Package kubetest runs a real kube-apiserver and etcd on loopback for tests (no kubelet, no
// controllers): certificates, service-account keys, an admin identity, restricted identities for
// RBAC tests, the pinned CloudNativePG CRDs, and a fake kubelet endpoint so pods/log works.
//
// The binaries come from hack/kubebins.sh (make kubebins): $KUBEBIN_DIR, else
// $CACHE_DIR/kube/<version>/bin, else ~/.cache/cnpg-mcp/kube/<version>/bin. Start one Env per test
// binary (TestMain) and share it: a cold start costs seconds, a namespace per test costs
// milliseconds.
package kubetest

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// KubeVersion is the version hack/kubebins.sh builds (hack/versions.env K8S_VERSION).
const KubeVersion = "v1.37.2"

//go:embed crds/cnpg-1.30.0-crds.yaml
var cnpgCRDs []byte

// The Barman Cloud plugin's ObjectStore CRD (get_cluster_recoverability and restore read it).
//
//go:embed crds/barman-cloud-plugin-v0.15.0-crds.yaml
var pluginCRDs []byte

// BinDir returns where the kube-apiserver and etcd binaries are expected.
func BinDir() string {
	if d := os.Getenv("KUBEBIN_DIR"); d != "" {
		return d
	}
	cache := os.Getenv("CACHE_DIR")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "cnpg-mcp")
	}
	return filepath.Join(cache, "kube", KubeVersion, "bin")
}

// ErrNoBinaries says the binaries are missing and how to get them.
var ErrNoBinaries = errors.New("kube-apiserver/etcd binaries not found: run `make kubebins` (builds them from Go modules into $CACHE_DIR/kube/" + KubeVersion + "/bin, 10-20 min once) or set KUBEBIN_DIR")

// Available reports whether both binaries exist.
func Available() bool {
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if st, err := os.Stat(filepath.Join(BinDir(), b)); err != nil || st.IsDir() {
			return false
		}
	}
	return true
}

// Env is a running kube-apiserver + etcd.
type Env struct {
	Dir     string
	URL     string       // https://127.0.0.1:PORT
	Admin   *rest.Config // system:masters
	Timings Timings

	ca       *ca
	auditLog string
	procs    []*exec.Cmd
	kubelet  *FakeKubelet
	stopOnce sync.Once
}

// Timings records what a start cost.
type Timings struct {
	Etcd, APIServer, CRDs, Total time.Duration
}

// Options of StartWith.
type Options struct {
	// AuditPolicy, when set, is the API server's audit policy (an audit.k8s.io/v1 Policy); events go
	// to a JSON log file AuditEvents reads.
	AuditPolicy []byte
}

// DefaultAuditPolicy logs every request to the CloudNativePG API group and to core resources at
// the Metadata level (who, impersonated as whom, what, the answer), nothing else.
var DefaultAuditPolicy = []byte(`apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    resources:
      - group: postgresql.cnpg.io
      - group: ""
        resources: ["pods", "pods/log", "secrets", "persistentvolumeclaims", "events"]
  - level: None
`)

// Start launches etcd and kube-apiserver on free loopback ports and installs the CNPG CRDs.
func Start(ctx context.Context) (*Env, error) { return StartWith(ctx, Options{}) }

// StartWith is Start with options (an audit log).
func StartWith(ctx context.Context, o Options) (*Env, error) {
	if !Available() {
		return nil, ErrNoBinaries
	}
	t0 := time.Now()
	dir, err := os.MkdirTemp("", "cnpg-mcp-kubetest-")
	if err != nil {
		return nil, err
	}
	e := &Env{Dir: dir}
	ok := false
	defer func() {
		if !ok {
			e.Stop()
		}
	}()
	if e.ca, err = newCA(); err != nil {
		return nil, err
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err == nil {
			err = os.WriteFile(p, b, 0o600)
		}
		return p
	}
	caFile := write("ca.crt", e.ca.certPEM)
	servingCert, servingKey, ierr := e.ca.issue("kube-apiserver", nil, true)
	if ierr != nil {
		return nil, ierr
	}
	certFile, keyFile := write("apiserver.crt", servingCert), write("apiserver.key", servingKey)
	adminCert, adminKey, ierr := e.ca.issue("cnpg-mcp-test-admin", []string{"system:masters"}, false)
	if ierr != nil {
		return nil, ierr
	}
	kcCert, kcKey, ierr := e.ca.issue("kube-apiserver-kubelet-client", []string{"system:masters"}, false)
	if ierr != nil {
		return nil, ierr
	}
	kcCertFile, kcKeyFile := write("kubelet-client.crt", kcCert), write("kubelet-client.key", kcKey)
	if err != nil {
		return nil, err
	}
	saKey, saPub, err := serviceAccountKeys(dir)
	if err != nil {
		return nil, err
	}

	// etcd
	etcdPort, peerPort := freePort(), freePort()
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	if err := e.run("etcd",
		"--data-dir="+filepath.Join(dir, "etcd"), "--name=default",
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL, "--log-level=error", "--unsafe-no-fsync=true",
		"--quota-backend-bytes=1073741824",
	); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, http.DefaultClient, etcdURL+"/health", 30*time.Second); err != nil {
		return nil, fmt.Errorf("etcd did not become healthy: %w (log: %s)", err, e.logTail("etcd"))
	}
	e.Timings.Etcd = time.Since(t0)

	// fake kubelet (pods/log goes through the API server to it)
	if e.kubelet, err = newFakeKubelet(e.ca); err != nil {
		return nil, err
	}

	// kube-apiserver
	t1 := time.Now()
	apiPort := freePort()
	e.URL = "https://127.0.0.1:" + strconv.Itoa(apiPort)
	var audit []string
	if o.AuditPolicy != nil {
		policy := write("audit-policy.yaml", o.AuditPolicy)
		if err != nil {
			return nil, err
		}
		e.auditLog = filepath.Join(dir, "audit.log")
		audit = []string{"--audit-policy-file=" + policy, "--audit-log-path=" + e.auditLog, "--audit-log-format=json", "--audit-log-mode=blocking", "--audit-log-maxbackup=1"}
	}
	if err := e.run("kube-apiserver", append(audit,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(apiPort),
		"--tls-cert-file="+certFile, "--tls-private-key-file="+keyFile,
		"--client-ca-file="+caFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+saPub, "--service-account-signing-key-file="+saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC",
		"--disable-admission-plugins=ServiceAccount",
		"--endpoint-reconciler-type=none",
		"--kubelet-certificate-authority="+caFile,
		"--kubelet-client-certificate="+kcCertFile, "--kubelet-client-key="+kcKeyFile,
		"--kubelet-preferred-address-types=InternalIP",
		"--profiling=false", "--enable-priority-and-fairness=false",
		"--cert-dir="+filepath.Join(dir, "certs"),
	)...); err != nil {
		return nil, err
	}
	e.Admin = &rest.Config{Host: e.URL, TLSClientConfig: rest.TLSClientConfig{CAData: e.ca.certPEM, CertData: adminCert, KeyData: adminKey}, QPS: 200, Burst: 400}
	hc, err := rest.HTTPClientFor(e.Admin)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, hc, e.URL+"/readyz", 90*time.Second); err != nil {
		return nil, fmt.Errorf("kube-apiserver did not become ready: %w (log: %s)", err, e.logTail("kube-apiserver"))
	}
	e.Timings.APIServer = time.Since(t1)

	t2 := time.Now()
	if err := e.installCRDs(ctx); err != nil {
		return nil, err
	}
	if err := e.kubelet.registerNode(ctx, e.Admin); err != nil {
		return nil, err
	}
	e.Timings.CRDs = time.Since(t2)
	e.Timings.Total = time.Since(t0)
	ok = true
	return e, nil
}

// Kubelet returns the fake kubelet that serves pod logs.
func (e *Env) Kubelet() *FakeKubelet { return e.kubelet }

// NodeName is the node pods must name (spec.nodeName) for pods/log to work.
const NodeName = "kubetest-node"

// UserConfig returns a client identity with only the permissions RBAC grants to user (and
// system:authenticated).
func (e *Env) UserConfig(user string) (*rest.Config, error) {
	cert, key, err := e.ca.issue(user, nil, false)
	if err != nil {
		return nil, err
	}
	return &rest.Config{Host: e.URL, TLSClientConfig: rest.TLSClientConfig{CAData: e.ca.certPEM, CertData: cert, KeyData: key}, QPS: 200, Burst: 400}, nil
}

// WriteKubeconfig writes a kubeconfig for the admin identity (system:masters) to path, for code that
// takes a kubeconfig file (the server's kubernetes.kubeconfig).
func (e *Env) WriteKubeconfig(path string) error { return e.WriteKubeconfigFor(e.Admin, path) }

// AuditEvent is the part of an audit.k8s.io/v1 Event the tests look at.
type AuditEvent struct {
	Verb  string `json:"verb"`
	Stage string `json:"stage"`
	User  struct {
		Username string   `json:"username"`
		Groups   []string `json:"groups"`
	} `json:"user"`
	ImpersonatedUser *struct {
		Username string   `json:"username"`
		Groups   []string `json:"groups"`
	} `json:"impersonatedUser"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		APIGroup    string `json:"apiGroup"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// AuditEvents reads the audit log so far (an Env started with an AuditPolicy).
func (e *Env) AuditEvents() ([]AuditEvent, error) {
	if e.auditLog == "" {
		return nil, errors.New("kubetest: this API server was started without an audit policy")
	}
	b, err := os.ReadFile(e.auditLog)
	if err != nil {
		return nil, err
	}
	var out []AuditEvent
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var ev AuditEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return nil, fmt.Errorf("audit log line: %w", err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// WriteKubeconfigFor writes a kubeconfig for the identity cfg (from UserConfig, or Admin) to path.
func (e *Env) WriteKubeconfigFor(cfg *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["kubetest"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "kubetest", Namespace: "default"}
	kc.CurrentContext = "kubetest"
	return clientcmd.WriteToFile(*kc, path)
}

// Stop kills the processes and removes the directory.
func (e *Env) Stop() {
	e.stopOnce.Do(func() {
		for i := len(e.procs) - 1; i >= 0; i-- {
			p := e.procs[i]
			if p.Process == nil {
				continue
			}
			_ = p.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = p.Process.Kill()
				<-done
			}
		}
		if e.kubelet != nil {
			e.kubelet.close()
		}
		if e.Dir != "" {
			_ = os.RemoveAll(e.Dir)
		}
	})
}

func (e *Env) run(name string, args ...string) error {
	logf, err := os.Create(filepath.Join(e.Dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(BinDir(), name), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	e.procs = append(e.procs, cmd)
	return nil
}

func (e *Env) logTail(name string) string {
	b, _ := os.ReadFile(filepath.Join(e.Dir, name+".log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func (e *Env) installCRDs(ctx context.Context) error {
	c, err := client.New(e.Admin, client.Options{})
	if err != nil {
		return err
	}
	var names []string
	for _, doc := range bytes.Split(append(append(slices.Clone(cnpgCRDs), '\n'), pluginCRDs...), []byte("\n---\n")) {
		doc = bytes.TrimSpace(doc)
		if len(doc) == 0 || !bytes.Contains(doc, []byte("kind: CustomResourceDefinition")) {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			return fmt.Errorf("parse CRD: %w", err)
		}
		if err := c.Create(ctx, u); err != nil {
			return fmt.Errorf("create CRD %s: %w", u.GetName(), err)
		}
		names = append(names, u.GetName())
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, n := range names {
		for {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
			if err := c.Get(ctx, client.ObjectKey{Name: n}, u); err != nil {
				return err
			}
			if established(u) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("CRD %s not established after 60s", n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

func established(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitHTTP(ctx context.Context, hc *http.Client, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			body := make([]byte, 512)
			n, _ := resp.Body.Read(body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("%s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(body[:n])))
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
