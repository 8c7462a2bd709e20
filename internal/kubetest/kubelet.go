package kubetest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// FakeKubelet answers the API server's pods/log proxy requests
// (GET /containerLogs/{namespace}/{pod}/{container}) with logs set by the test, honouring
// tailLines and limitBytes, and records every query so tests can check that nothing follows.
type FakeKubelet struct {
	srv  *http.Server
	port int
	mu   sync.Mutex
	logs map[string]string // ns/pod/container -> content
	reqs []url.Values
}

func newFakeKubelet(c *ca) (*FakeKubelet, error) {
	cfg, err := c.tlsServerConfig()
	if err != nil {
		return nil, err
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		return nil, err
	}
	k := &FakeKubelet{port: l.Addr().(*net.TCPAddr).Port, logs: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{ns}/{pod}/{container}", k.serveLogs)
	k.srv = &http.Server{Handler: mux}
	go func() { _ = k.srv.Serve(l) }()
	return k, nil
}

// SetLog sets the log content of a container.
func (k *FakeKubelet) SetLog(ns, pod, container, content string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.logs[ns+"/"+pod+"/"+container] = content
}

// Requests returns the query parameters of every log request so far.
func (k *FakeKubelet) Requests() []url.Values {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]url.Values(nil), k.reqs...)
}

func (k *FakeKubelet) serveLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	k.mu.Lock()
	k.reqs = append(k.reqs, q)
	content, ok := k.logs[r.PathValue("ns")+"/"+r.PathValue("pod")+"/"+r.PathValue("container")]
	k.mu.Unlock()
	if !ok {
		http.Error(w, fmt.Sprintf("container %q in pod %q is not running", r.PathValue("container"), r.PathValue("pod")), http.StatusBadRequest)
		return
	}
	if q.Get("follow") == "true" {
		http.Error(w, "the fake kubelet refuses follow=true: tools must never follow logs", http.StatusBadRequest)
		return
	}
	if n, err := strconv.Atoi(q.Get("tailLines")); err == nil && n >= 0 {
		lines := strings.SplitAfter(content, "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		content = strings.Join(lines, "")
	}
	if n, err := strconv.Atoi(q.Get("limitBytes")); err == nil && n >= 0 && len(content) > n {
		content = content[:n]
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(content))
}

func (k *FakeKubelet) close() { _ = k.srv.Close() }

// registerNode creates the Node whose status points the API server at the fake kubelet.
func (k *FakeKubelet) registerNode(ctx context.Context, cfg *rest.Config) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	n, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: NodeName}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create node: %w", err)
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(k.port)
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update node status: %w", err)
	}
	return nil
}
