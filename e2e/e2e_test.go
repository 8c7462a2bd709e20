//go:build e2e

package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/cnpg-mcp/cnpg-mcp/e2e"
	"github.com/cnpg-mcp/cnpg-mcp/e2e/beside"
	"github.com/cnpg-mcp/cnpg-mcp/e2e/cluster"
	"github.com/cnpg-mcp/cnpg-mcp/e2e/helm"
	"github.com/cnpg-mcp/cnpg-mcp/e2e/kube"
	mockconfig "github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
)

// NodePort of the server, published on 127.0.0.1 by kind/cluster.yaml.
const (
	serverNodePort   = 30080
	publicURL        = "http://127.0.0.1:30080"
	siblingNodePort  = 30081 // a second deployment behind the same upstream application (RS-04)
	siblingURL       = "http://127.0.0.1:30081"
	pgNamespace      = "e2e-pg"
	appNamespace     = "cnpg-mcp"
	siblingNamespace = "cnpg-mcp-sibling"
	// one replica of the server on its own (the suite's second instance, PXY-17)
	secondInstanceNodePort = 30082
	secondInstanceURL      = "http://127.0.0.1:30082"
	// a release of its own for the state-database switchover (chaos_test.go), so the switchover
	// disturbs no other spec running at the same time
	chaosNamespace   = "cnpg-mcp-chaos"
	chaosNodePort    = 30084
	chaosURL         = "http://127.0.0.1:30084"
	upstreamAudience = "https://cnpg-mcp.example/api" // the mock tenant's API (setup-auth0 makes it conform)
)

var clusterGVR = schema.GroupVersionResource{Group: "postgresql.cnpg.io", Version: "v1", Resource: "clusters"}

var (
	cfg  e2e.Config
	kc   *kube.Client
	kind *cluster.Cluster
	mock *beside.Mock
	hc   helm.Helm
	logw = GinkgoWriter
	// shared is what the first process prepared for every process (SynchronizedBeforeSuite).
	shared sharedState
	failed bool
)

// sharedState travels from process 1's setup to every parallel process (`ginkgo -p`; one process
// under `go test`): the kind cluster, the mock and the upstream application exist once per run.
type sharedState struct {
	// Dir is a private temporary directory of the run: cross-process locks and markers, and
	// setup-auth0's values file and client-secret manifest (a secret: never in the report).
	Dir string
	// ShimPATH and RealDocker are set when kind needs the docker --privileged shim.
	ShimPATH, RealDocker string
	// ValuesFile, SecretFile and ClientID are what `setup-auth0` prepared in the mock tenant.
	ValuesFile, SecretFile, ClientID string
}

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "cnpg-mcp e2e on kind")
}

func imageExists(img string) bool {
	return exec.Command("docker", "image", "inspect", img).Run() == nil
}

// requireImage skips a spec whose image was not built, or fails under CNPG_MCP_REQUIRE_ALL=1.
func requireImage(img, how string) {
	if imageExists(img) {
		return
	}
	msg := fmt.Sprintf("image %s is not built: %s", img, how)
	if os.Getenv("CNPG_MCP_REQUIRE_ALL") == "1" {
		Fail(msg)
	}
	Skip(msg)
}

func loadConfig() {
	GinkgoHelper()
	wd, err := os.Getwd()
	Expect(err).NotTo(HaveOccurred())
	root, err := e2e.RepoRoot(wd)
	Expect(err).NotTo(HaveOccurred())
	cfg, err = e2e.ConfigFromEnv(root)
	Expect(err).NotTo(HaveOccurred())
	hc = helm.Helm{Bin: cfg.Helm, Kubeconfig: cfg.Kubeconfig}
}

// The cluster, CloudNativePG, the mock Auth0 and the upstream application are made once, by process 1;
// every process then attaches to them. The specs spread over the processes (`make e2e` runs
// E2E_PROCS of them): each top-level container works in its own namespaces, and what several share
// (the server release the tools, backups and conformance specs call) is installed once, under a lock
// (onceAcrossProcesses).
var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	loadConfig()
	Expect(os.MkdirAll(cfg.ReportDir, 0o755)).To(Succeed())
	var st sharedState
	dir, err := os.MkdirTemp("", "cnpg-mcp-e2e-")
	Expect(err).NotTo(HaveOccurred())
	st.Dir = dir

	By("checking whether kind needs the --privileged shim on this host")
	Expect(imageExists(cfg.MockImage)).To(BeTrue(), "the mock image %s is needed (make images)", cfg.MockImage)
	shimmed, err := cluster.UseDockerShimIfNeeded(ctx, filepath.Join(cfg.RepoRoot, "kind", "offline", "docker-shim"), cfg.MockImage, "--help")
	Expect(err).NotTo(HaveOccurred())
	fmt.Fprintf(logw, "docker --privileged shim: %t\n", shimmed)
	if shimmed {
		st.ShimPATH, st.RealDocker = os.Getenv("PATH"), os.Getenv("CNPG_MCP_REAL_DOCKER")
	}

	By("creating the kind cluster")
	o := cluster.Options{
		Name: cfg.ClusterName, ConfigFile: filepath.Join(cfg.RepoRoot, "kind", "cluster.yaml"),
		KubeconfigPath: cfg.Kubeconfig, Reuse: cfg.Reuse, Log: logw,
	}
	if cfg.Offline {
		patch, err := os.ReadFile(filepath.Join(cfg.RepoRoot, "kind", "offline", "kubeadm-patch.yaml"))
		Expect(err).NotTo(HaveOccurred())
		o.NodeImage = cfg.NodeImage
		o.KubeadmPatches = []string{strings.ReplaceAll(string(patch), "cnpg-mcp.local/k8s", cfg.K8sImageRepository)}
	}
	start := time.Now()
	kind, err = cluster.Up(o)
	Expect(err).NotTo(HaveOccurred())
	AddReportEntry("kind-create", time.Since(start).Round(time.Second).String())
	kc, err = kube.New(cfg.Kubeconfig)
	Expect(err).NotTo(HaveOccurred())

	By("loading the locally built images into the node: CloudNativePG's first, the others while it starts")
	Expect(kind.LoadImages(ctx, builtImages(cfg.CNPGImage)...)).To(Succeed())
	loaded := make(chan error, 1)
	go func() { loaded <- kind.LoadImages(ctx, builtImages(cfg.ServerImage, cfg.ForwardImage, cfg.PGImage)...) }()
	// only the backups spec needs these (one of them is 0.6 GB): they load for it meanwhile
	loadInBackground(st.Dir, backupImagesKey, builtImages(cfg.ObjStoreImage, cfg.PluginImage, cfg.PluginSidecarImage))

	By("installing CloudNativePG " + cfg.CNPGVersion)
	start = time.Now()
	Expect(kc.ApplyFile(ctx, cfg.CNPGManifest, "cnpg-system")).To(Succeed())
	Expect(kc.WaitDeploymentAvailable(ctx, "cnpg-system", "cnpg-controller-manager", 5*time.Minute)).To(Succeed())
	AddReportEntry("cnpg-install", time.Since(start).Round(time.Second).String())

	By("starting the mock Auth0 beside the cluster")
	mock, err = beside.StartMock(ctx, beside.MockOptions{Image: cfg.MockImage, Network: "kind", Name: mockName()})
	Expect(err).NotTo(HaveOccurred())
	fmt.Fprintf(logw, "mock Auth0: issuer %s, on the kind network at %s\n", mock.Issuer, mock.NetworkIP)

	By("preparing the upstream application with setup-auth0, as an operator would")
	setupUpstream(ctx, &st)
	Expect(<-loaded).To(Succeed())

	b, err := json.Marshal(st)
	Expect(err).NotTo(HaveOccurred())
	return b
}, func(ctx SpecContext, data []byte) {
	Expect(json.Unmarshal(data, &shared)).To(Succeed())
	if kc != nil {
		return // process 1: set up above
	}
	loadConfig()
	if shared.ShimPATH != "" {
		os.Setenv("PATH", shared.ShimPATH)
		os.Setenv("CNPG_MCP_REAL_DOCKER", shared.RealDocker)
	}
	var err error
	kind, err = cluster.Attach(cfg.ClusterName, cfg.Kubeconfig, logw)
	Expect(err).NotTo(HaveOccurred())
	kc, err = kube.New(cfg.Kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	mock, err = beside.AttachMock(ctx, mockName(), "kind")
	Expect(err).NotTo(HaveOccurred())
}, NodeTimeout(20*time.Minute))

func mockName() string { return cfg.ClusterName + "-mockauth0" }

var _ = ReportAfterEach(func(r SpecReport) {
	if r.Failed() {
		failed = true
	}
})

// Every process marks a failure in the shared directory; process 1, which runs its part after the
// others have finished, dumps the cluster's state once and tears everything down.
var _ = SynchronizedAfterSuite(func(ctx SpecContext) {
	if failed && shared.Dir != "" {
		_ = os.WriteFile(filepath.Join(shared.Dir, fmt.Sprintf("failed-%d", GinkgoParallelProcess())), nil, 0o600)
	}
}, func(ctx SpecContext) {
	marks, _ := filepath.Glob(filepath.Join(shared.Dir, "failed-*"))
	if (failed || len(marks) > 0) && kc != nil {
		dir := filepath.Join(cfg.ReportDir, "dump")
		fmt.Fprintf(logw, "a spec failed: pod logs and events in %s\n", dir)
		_ = kc.Dump(ctx, dir, "cnpg-system", pgNamespace, appNamespace, siblingNamespace, chaosNamespace, appNamespace+"-unconfigured",
			"e2e-tools", "e2e-tools-2", "e2e-backups", impNamespace, teamA, teamB, "kube-system", "local-path-storage")
		if mock != nil {
			_ = os.WriteFile(filepath.Join(dir, "mockauth0.log"), []byte(mock.Logs(ctx)), 0o644)
		}
	}
	if shared.Dir != "" {
		_ = os.RemoveAll(shared.Dir)
	}
	if mock != nil {
		_ = mock.Close()
	}
	if !cfg.Keep && !cfg.Reuse && kind != nil {
		Expect(cluster.Down(cfg.ClusterName, logw)).To(Succeed())
	}
}, NodeTimeout(5*time.Minute))

// builtImages returns those of imgs that are set and built.
func builtImages(imgs ...string) []string {
	var out []string
	for _, img := range imgs {
		if img != "" && imageExists(img) {
			out = append(out, img)
		}
	}
	return out
}

const backupImagesKey = "load-backup-images"

// loadInBackground loads images into the node in a goroutine of process 1 that outlives the setup,
// holding the lock onceAcrossProcesses(key) takes: a spec that needs the images waits for the lock and
// finds them loaded, or, when the background load failed (said in key+".failed"), loads them itself.
func loadInBackground(dir, key string, imgs []string) {
	GinkgoHelper()
	f, err := os.OpenFile(filepath.Join(dir, key+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	Expect(err).NotTo(HaveOccurred())
	Expect(syscall.Flock(int(f.Fd()), syscall.LOCK_EX)).To(Succeed()) // free: nobody else runs yet
	go func() {
		defer f.Close() // releases the lock
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		start := time.Now()
		if err := kind.LoadImages(ctx, imgs...); err != nil {
			_ = os.WriteFile(filepath.Join(dir, key+".failed"), []byte(err.Error()), 0o600)
			return
		}
		_ = os.WriteFile(filepath.Join(dir, key+".done"), []byte(time.Since(start).Round(time.Second).String()), 0o600)
	}()
}

// onceAcrossProcesses runs fn once per run across every parallel process: the first process to take
// the lock named key runs it and leaves a mark; the others wait for the lock, see the mark and return.
// If fn fails, the lock is released without a mark, and the next process tries again.
func onceAcrossProcesses(ctx context.Context, key string, fn func()) {
	GinkgoHelper()
	f, err := os.OpenFile(filepath.Join(shared.Dir, key+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		Expect(err).To(MatchError(syscall.EWOULDBLOCK), "lock %s", key)
		select {
		case <-ctx.Done():
			Fail(fmt.Sprintf("waiting for another process to finish %s: %v", key, ctx.Err()))
		case <-time.After(250 * time.Millisecond):
		}
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	mark := filepath.Join(shared.Dir, key+".done")
	if _, err := os.Stat(mark); err == nil {
		return
	}
	fn()
	Expect(os.WriteFile(mark, nil, 0o600)).To(Succeed())
}

var _ = Describe("CloudNativePG on kind", Ordered, Label("cnpg"), func() {
	It("brings a one-instance PostgreSQL Cluster to a healthy state and answers queries", func(ctx SpecContext) {
		_, err := kc.Typed.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: pgNamespace}}, metav1.CreateOptions{})
		if err != nil {
			Expect(err.Error()).To(ContainSubstring("already exists"))
		}
		spec := map[string]any{"instances": int64(1), "storage": map[string]any{"size": "1Gi"}}
		if cfg.PGImage != "" {
			spec["imageName"], spec["imagePullPolicy"] = cfg.PGImage, "IfNotPresent"
		}
		pg := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
			"metadata": map[string]any{"name": "pg", "namespace": pgNamespace}, "spec": spec,
		}}
		start := time.Now()
		Expect(kc.Apply(ctx, pgNamespace, pg)).To(Succeed())
		Expect(kube.WaitFor(ctx, "Cluster pg healthy", 8*time.Minute, func(ctx context.Context) (bool, string, error) {
			o, err := kc.Get(ctx, clusterGVR, pgNamespace, "pg")
			if err != nil {
				return false, "", err
			}
			phase, _, _ := unstructured.NestedString(o.Object, "status", "phase")
			ready, _, _ := unstructured.NestedInt64(o.Object, "status", "readyInstances")
			return phase == "Cluster in healthy state" && ready == 1, phase, nil
		})).To(Succeed())
		AddReportEntry("pg-cluster-healthy", time.Since(start).Round(time.Second).String())

		out, err := kc.Exec(ctx, pgNamespace, "pg-1", "postgres", "psql", "-Atc", "select 42")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(out)).To(Equal("42"))
	}, SpecTimeout(10*time.Minute))
})

func chartDir() string { return filepath.Join(cfg.RepoRoot, "chart", "cnpg-mcp") }

func imageValues() map[string]any {
	repo, tag, _ := strings.Cut(cfg.ServerImage, ":")
	return map[string]any{"repository": repo, "tag": tag, "pullPolicy": "Never"}
}

// setupUpstream runs `cnpg-mcp-server setup-auth0` against the mock's Management API (twice: the
// second run must change nothing), then adds the other releases' callbacks to the application, as an
// operator adds Allowed Callback URLs in the Auth0 dashboard, and the second user of RS-09. Once, in
// process 1's setup: the Management API's callback list is read, changed and written back.
func setupUpstream(ctx context.Context, st *sharedState) {
	GinkgoHelper()
	bin := filepath.Join(cfg.RepoRoot, "bin", "cnpg-mcp-server")
	_, err := os.Stat(bin)
	Expect(err).NotTo(HaveOccurred(), "make images builds bin/cnpg-mcp-server")
	values, secret := filepath.Join(st.Dir, "values.yaml"), filepath.Join(st.Dir, "client-secret.yaml")
	run := func() string {
		GinkgoHelper()
		cmd := exec.CommandContext(ctx, bin, "setup-auth0", "--domain", strings.TrimSuffix(mock.Issuer, "/"),
			"--public-url", publicURL, "--audience", upstreamAudience, "--app-name", "cnpg-mcp-server (e2e)",
			"--values-file", values, "--secret-file", secret)
		cmd.Env = append(os.Environ(), "AUTH0_MGMT_CLIENT_ID="+mockconfig.DefaultSetupClientID, "AUTH0_MGMT_CLIENT_SECRET="+mockconfig.DefaultSetupSecret)
		out, err := cmd.CombinedOutput()
		fmt.Fprintf(logw, "setup-auth0:\n%s", out)
		Expect(err).NotTo(HaveOccurred(), "setup-auth0: %s", out)
		return string(out)
	}
	Expect(run()).To(MatchRegexp(`application .*: created`))
	second := run()
	Expect(second).NotTo(MatchRegexp(`: (created|updated)`), "a second setup-auth0 run must change nothing")

	b, err := os.ReadFile(values)
	Expect(err).NotTo(HaveOccurred())
	var v struct {
		OIDC struct {
			ClientID string `json:"clientID"`
		} `json:"oidc"`
	}
	Expect(yaml.Unmarshal(b, &v)).To(Succeed())
	Expect(v.OIDC.ClientID).NotTo(BeEmpty())
	for _, base := range []string{siblingURL, impURL, chaosURL} {
		Expect(mock.AddCallback(ctx, v.OIDC.ClientID, base+"/auth/callback")).To(Succeed())
	}
	Expect(mock.CreateUser(ctx, secondUser, secondPassword)).To(Succeed())
	st.ValuesFile, st.SecretFile, st.ClientID = values, secret, v.OIDC.ClientID
}

var installed = map[string]bool{}

// installServer installs the chart in namespace ns from setup-auth0's values file and Secret manifest,
// plus what this cluster needs (the local image, a NodePort, generated keys, the mock's sidecar), and
// waits until the server answers /readyz at base through the NodePort. Once per namespace and run
// (top-level containers run in random order).
func installServer(ctx context.Context, ns, base string, nodePort int, extra map[string]any) {
	GinkgoHelper()
	requireImage(cfg.ServerImage, "make images builds it")
	requireImage(cfg.ForwardImage, "make images builds it")
	if installed[ns] {
		return
	}
	onceAcrossProcesses(ctx, "install-"+ns, func() { installChart(ctx, ns, base, nodePort, extra) })
	// The Deployment is available before kube-proxy routes the NodePort to the new pod.
	Expect(waitReady(ctx, base)).To(Succeed())
	installed[ns] = true
}

func installChart(ctx context.Context, ns, base string, nodePort int, extra map[string]any) {
	GinkgoHelper()
	start := time.Now()
	_, err := kc.Typed.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		Fail(err.Error())
	}
	Expect(kc.ApplyFile(ctx, shared.SecretFile, ns)).To(Succeed())
	values := map[string]any{
		"publicURL":      base,
		"image":          imageValues(),
		"service":        map[string]any{"type": "NodePort", "nodePort": nodePort},
		"secrets":        map[string]any{"create": map[string]any{"keys": true}},
		"initContainers": []any{mock.Sidecar(cfg.ForwardImage)},
		"store":          map[string]any{"file": map[string]any{"size": "100Mi"}},
	}
	for k, v := range extra {
		values[k] = v
	}
	Expect(hc.Install(ctx, "cnpg-mcp", ns, chartDir(), values, shared.ValuesFile)).To(Succeed())
	if st, _ := values["store"].(map[string]any); st["type"] == "postgres" {
		waitStateDatabase(ctx, ns)
	}
	Expect(kc.WaitDeploymentAvailable(ctx, ns, "cnpg-mcp", 3*time.Minute)).To(Succeed())
	Expect(waitReady(ctx, base)).To(Succeed())
	AddReportEntry("chart-install-ready "+ns, time.Since(start).Round(time.Second).String())
}

// ensureServer installs the server the tools and the conformance suite run against as an operator runs
// it for high availability (installHA). One replica is also reachable on its own at NodePort 30082
// (the suite's second instance, PXY-17).
func ensureServer(ctx context.Context) {
	GinkgoHelper()
	if installed[appNamespace] {
		return
	}
	installHA(ctx, appNamespace, publicURL, serverNodePort)
	onceAcrossProcesses(ctx, "replica-b", func() {
		pods, err := kc.Typed.CoreV1().Pods(appNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=cnpg-mcp,app.kubernetes.io/instance=cnpg-mcp"})
		Expect(err).NotTo(HaveOccurred())
		var running []corev1.Pod
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
				running = append(running, p)
			}
		}
		Expect(running).To(HaveLen(2), "two server replicas")
		one := running[0]
		one.Labels["e2e.cnpg-mcp/replica"] = "b"
		_, err = kc.Typed.CoreV1().Pods(appNamespace).Update(ctx, &one, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(kc.ApplyYAML(ctx, appNamespace, fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: cnpg-mcp-replica-b}
spec:
  type: NodePort
  selector: {app.kubernetes.io/name: cnpg-mcp, app.kubernetes.io/instance: cnpg-mcp, e2e.cnpg-mcp/replica: b}
  ports: [{name: http, port: 80, targetPort: http, nodePort: %d}]
`, secondInstanceNodePort))).To(Succeed())
	})
	Expect(waitReady(ctx, secondInstanceURL)).To(Succeed())
}

// installHA installs a release as an operator runs it for high availability: two replicas sharing a
// PostgreSQL store (a CloudNativePG Cluster the chart creates) behind the NodePort Service, which
// spreads requests over both, so flows cross replicas.
func installHA(ctx context.Context, ns, base string, nodePort int) {
	GinkgoHelper()
	installServer(ctx, ns, base, nodePort, map[string]any{
		"replicaCount": 2,
		"store": map[string]any{"type": "postgres", "postgres": map[string]any{
			"cnpgCluster": map[string]any{"enabled": true, "instances": 1, "storage": map[string]any{"size": "1Gi"}},
		}},
	})
}

// waitStateDatabase waits for the chart's CloudNativePG Cluster holding the server's state, then
// replaces the server pods that started before its Secret existed (they exit, saying the DSN file is
// missing, and would otherwise wait out the crash-loop back-off).
func waitStateDatabase(ctx context.Context, ns string) {
	GinkgoHelper()
	start := time.Now()
	Expect(kube.WaitFor(ctx, "the state database cnpg-mcp-state", 8*time.Minute, func(ctx context.Context) (bool, string, error) {
		o, err := kc.Get(ctx, clusterGVR, ns, "cnpg-mcp-state")
		if err != nil {
			return false, "", err
		}
		phase, _, _ := unstructured.NestedString(o.Object, "status", "phase")
		return phase == "Cluster in healthy state", phase, nil
	})).To(Succeed())
	AddReportEntry("state-database-healthy", time.Since(start).Round(time.Second).String())
	pods, err := kc.Typed.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=cnpg-mcp,app.kubernetes.io/instance=cnpg-mcp"})
	Expect(err).NotTo(HaveOccurred())
	for _, p := range pods.Items {
		ready := false
		for _, c := range p.Status.Conditions {
			ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
		}
		if !ready {
			_ = kc.Typed.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{})
		}
	}
}

func requireFile(path, how string) {
	GinkgoHelper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	msg := fmt.Sprintf("%s is missing: %s", path, how)
	if os.Getenv("CNPG_MCP_REQUIRE_ALL") == "1" {
		Fail(msg)
	}
	Skip(msg)
}

// waitReady polls <base>/readyz from the host until it answers 200.
func waitReady(ctx context.Context, base string) error {
	hc := &http.Client{Timeout: 5 * time.Second}
	return kube.WaitFor(ctx, base+"/readyz from the host", time.Minute, func(ctx context.Context) (bool, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if err != nil {
			return false, "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false, err.Error(), nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status, nil
	})
}

var _ = Describe("the Helm chart", Ordered, Label("chart"), func() {
	chart := chartDir

	It("installs with only publicURL set, and the server refuses to start saying what to configure", func(ctx SpecContext) {
		requireImage(cfg.ServerImage, "make images builds it once the server's main package exists")
		ns := appNamespace + "-unconfigured"
		Expect(hc.Install(ctx, "cnpg-mcp", ns, chart(), map[string]any{
			"publicURL": "https://mcp.example.com", "image": imageValues(),
		})).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { _ = hc.Uninstall(ctx, "cnpg-mcp", ns) })

		var logs string
		Expect(kube.WaitFor(ctx, "the unconfigured server exits", 3*time.Minute, func(ctx context.Context) (bool, string, error) {
			pods, err := kc.Typed.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=cnpg-mcp"})
			if err != nil || len(pods.Items) == 0 {
				return false, "no pod yet", err
			}
			p := pods.Items[0]
			for _, cs := range p.Status.ContainerStatuses {
				if cs.Ready {
					return false, "", fmt.Errorf("the server became ready without an upstream identity provider")
				}
				term := cs.LastTerminationState.Terminated
				if term == nil {
					term = cs.State.Terminated
				}
				if term != nil && term.ExitCode != 0 {
					tail := int64(50)
					b, _ := kc.Typed.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: cs.Name, Previous: cs.State.Terminated == nil, TailLines: &tail}).DoRaw(ctx)
					logs = string(b)
					return true, "", nil
				}
			}
			return false, "waiting for the container to exit", nil
		})).To(Succeed())
		AddReportEntry("unconfigured-server-log", logs)
		Expect(logs).To(ContainSubstring("issuer"), "the refusal must name the missing upstream setting")
	}, SpecTimeout(5*time.Minute))

	It("installs configured against the mock Auth0 and becomes ready", func(ctx SpecContext) {
		ensureServer(ctx)
		for _, path := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get(publicURL + path)
			Expect(err).NotTo(HaveOccurred())
			resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusOK), path)
		}
	}, SpecTimeout(5*time.Minute))
})

// The whole conformance suite, through the real browser, against the in-cluster server, with every
// need a kind cluster can meet: the mock's admin API (upstream view), an upstream application for
// direct upstream tokens (RS-05), a second user (RS-09), a sibling deployment behind the same upstream
// application (RS-04), one of the two replicas on its own (PXY-17) and a write tool for the
// narrow-scope probe (SC-02/03). What stays skipped, with the suite's reason: client metadata documents
// (the server fetches them only from public https addresses) and checks that move the server's clock;
// `make test` runs those against the in-process stack.
var _ = Describe("the conformance suite against the in-cluster server", Ordered, Label("conformance"), SpecPriority(60), func() {
	BeforeAll(func(ctx SpecContext) {
		requireFile(filepath.Join(cfg.RepoRoot, "bin", "mcp-auth-conformance"), "make images builds it (conformance/cmd/mcp-auth-conformance)")
		ensureServer(ctx)
		installServer(ctx, siblingNamespace, siblingURL, siblingNodePort, nil) // the embedded file store
	}, NodeTimeout(15*time.Minute))

	// Each specification version has its own rows (session checks only before 2026-07-28).
	for _, version := range []string{"2025-06-18", "2025-11-25", "2026-07-28"} {
		It("passes every check through a real browser, MCP "+version, func(ctx SpecContext) {
			dir := filepath.Join(cfg.ReportDir, "conformance", version)
			cmd := exec.CommandContext(ctx, filepath.Join(cfg.RepoRoot, "bin", "mcp-auth-conformance"),
				"--target", publicURL+"/mcp",
				"--spec-version", version,
				"--chromium", chromium(),
				"--mock-auth0-admin", mock.Issuer,
				"--upstream-client-id", mockconfig.DefaultClientID, "--upstream-audience", upstreamAudience,
				"--second-username", secondUser,
				"--sibling-target", siblingURL+"/mcp",
				"--second-instance", secondInstanceURL+"/mcp",
				"--scope-probe-tool", "scale_postgres_cluster", "--scope-probe-granted", "mcp:read", "--scope-probe-needs", "mcp:write",
				"--scope-probe-args", `{"name":"conformance","namespace":"`+pgNamespace+`","instances":2,"dry_run":true}`,
				"--report-dir", dir, "--verbose", "--no-color")
			// secrets through the environment, not the command line
			cmd.Env = append(os.Environ(),
				"MCP_AUTH_CONFORMANCE_UPSTREAM_CLIENT_SECRET="+mockconfig.DefaultClientSecret,
				"MCP_AUTH_CONFORMANCE_SECOND_PASSWORD="+secondPassword)
			cmd.Stdout, cmd.Stderr = logw, logw
			start := time.Now()
			err := cmd.Run()
			AddReportEntry("conformance "+version, fmt.Sprintf("%s; HTML report: %s", time.Since(start).Round(time.Second), filepath.Join(dir, "index.html")))
			Expect(err).NotTo(HaveOccurred(), "conformance failures: see %s/index.html", dir)
		}, SpecTimeout(15*time.Minute))
	}
})

const (
	secondUser     = "second@example.com" // created in the mock tenant for RS-09
	secondPassword = "second-password"
)

// chromium is the browser for the suite and the tools' login: $E2E_CHROMIUM, else Debian's chromium,
// else a Chrome on PATH (GitHub's runners ship google-chrome).
func chromium() string {
	GinkgoHelper()
	if p := os.Getenv("E2E_CHROMIUM"); p != "" {
		requireFile(p, "E2E_CHROMIUM names a Chromium binary")
		return p
	}
	for _, p := range []string{"/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/google-chrome", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	requireFile("/usr/lib/chromium/chromium", "install chromium (make deps) or set E2E_CHROMIUM")
	return ""
}
