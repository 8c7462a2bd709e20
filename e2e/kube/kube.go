// Package kube holds the Kubernetes helpers of the e2e suite: server-side apply of YAML manifests, waits
// with a deadline, and a diagnostics dump (pod logs, events) for failures.
package kube

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"
)

// Client bundles the typed and dynamic clients of one cluster.
type Client struct {
	Config  *rest.Config
	Typed   kubernetes.Interface
	Dynamic dynamic.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
}

// New connects to the cluster of a kubeconfig file.
func New(kubeconfig string) (*Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{Config: cfg, Typed: typed, Dynamic: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}, nil
}

// Decode splits a multi-document YAML stream into objects (empty documents skipped).
func Decode(r io.Reader) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReaderSize(r, 1<<20), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("decode manifest: %w", err)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// ApplyFile server-side applies every object of a YAML file (CRDs first, then the rest).
func (c *Client) ApplyFile(ctx context.Context, path, defaultNamespace string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	objs, err := Decode(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return c.Apply(ctx, defaultNamespace, objs...)
}

// ApplyYAML server-side applies the objects of a YAML string.
func (c *Client) ApplyYAML(ctx context.Context, defaultNamespace, doc string) error {
	objs, err := Decode(strings.NewReader(doc))
	if err != nil {
		return err
	}
	return c.Apply(ctx, defaultNamespace, objs...)
}

// applyOrder puts what others depend on first: CRDs, namespaces, then configuration (a ConfigMap a
// Deployment reads at start-up must exist before its pods start), then the rest in file order.
func applyOrder(kind string) int {
	switch kind {
	case "CustomResourceDefinition":
		return 0
	case "Namespace":
		return 1
	case "ServiceAccount", "ConfigMap", "Secret":
		return 2
	}
	return 3
}

// Apply server-side applies objects with the field manager "cnpg-mcp-e2e", in applyOrder; the REST
// mapping is refreshed when a kind is unknown (a CRD applied just before).
func (c *Client) Apply(ctx context.Context, defaultNamespace string, objs ...*unstructured.Unstructured) error {
	sort.SliceStable(objs, func(i, j int) bool { return applyOrder(objs[i].GetKind()) < applyOrder(objs[j].GetKind()) })
	for _, o := range objs {
		if err := c.applyOne(ctx, defaultNamespace, o); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) resource(o *unstructured.Unstructured, defaultNamespace string) (dynamic.ResourceInterface, error) {
	gvk := o.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", gvk, o.GetName(), err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := o.GetNamespace()
		if ns == "" {
			ns = defaultNamespace
		}
		return c.Dynamic.Resource(m.Resource).Namespace(ns), nil
	}
	return c.Dynamic.Resource(m.Resource), nil
}

func (c *Client) applyOne(ctx context.Context, defaultNamespace string, o *unstructured.Unstructured) error {
	body, err := o.MarshalJSON()
	if err != nil {
		return err
	}
	// A CRD just created needs a moment before its kind is served: retry for up to 30 s.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ri, err := c.resource(o, defaultNamespace)
		if err == nil {
			force := true
			_, err = ri.Patch(ctx, o.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "cnpg-mcp-e2e", Force: &force})
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("apply %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		time.Sleep(time.Second)
	}
}

// Get reads an object by group/version/resource.
func (c *Client) Get(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, error) {
	return c.Dynamic.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
}

// WaitFor polls cond every interval until it returns true, an error, or timeout passes. The last
// "not yet" reason is in the timeout error.
func WaitFor(ctx context.Context, what string, timeout time.Duration, cond func(context.Context) (bool, string, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		ok, why, err := cond(ctx)
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return nil
		}
		if why != "" {
			last = why
		} else if err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not done after %s (last state: %s)", what, timeout, last)
		case <-time.After(2 * time.Second):
		}
	}
}

// WaitDeploymentAvailable waits until a Deployment has all its replicas updated and available.
func (c *Client) WaitDeploymentAvailable(ctx context.Context, ns, name string, timeout time.Duration) error {
	return WaitFor(ctx, "deployment "+ns+"/"+name+" available", timeout, func(ctx context.Context) (bool, string, error) {
		d, err := c.Typed.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		s := d.Status
		return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.AvailableReplicas == want,
			fmt.Sprintf("%d/%d available", s.AvailableReplicas, want), nil
	})
}

// Dump writes the pods, their container logs (current and previous) and the events of each namespace
// into dir, for a failed run.
func (c *Client) Dump(ctx context.Context, dir string, namespaces ...string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	for _, ns := range namespaces {
		var sum bytes.Buffer
		pods, err := c.Typed.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, p := range pods.Items {
			fmt.Fprintf(&sum, "pod %s phase=%s\n", p.Name, p.Status.Phase)
			for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
				fmt.Fprintf(&sum, "  container %s ready=%t restarts=%d state=%s\n", cs.Name, cs.Ready, cs.RestartCount, stateOf(cs.State))
				for _, prev := range []bool{false, true} {
					if prev && cs.RestartCount == 0 {
						continue
					}
					tail := int64(500)
					b, err := c.Typed.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: cs.Name, Previous: prev, TailLines: &tail}).DoRaw(ctx)
					if err != nil {
						b = []byte("(no log: " + err.Error() + ")\n")
					}
					suffix := ""
					if prev {
						suffix = ".previous"
					}
					_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s_%s_%s%s.log", ns, p.Name, cs.Name, suffix)), b, 0o644)
				}
			}
		}
		evs, err := c.Typed.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			sort.Slice(evs.Items, func(i, j int) bool { return evs.Items[i].LastTimestamp.Before(&evs.Items[j].LastTimestamp) })
			for _, e := range evs.Items {
				fmt.Fprintf(&sum, "event %s %s %s/%s: %s: %s\n", e.LastTimestamp.Format(time.RFC3339), e.Type,
					e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
			}
		}
		_ = os.WriteFile(filepath.Join(dir, ns+"_summary.txt"), sum.Bytes(), 0o644)
	}
	return errors.Join(errs...)
}

func stateOf(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running"
	case s.Waiting != nil:
		return "waiting(" + s.Waiting.Reason + ")"
	case s.Terminated != nil:
		return fmt.Sprintf("terminated(%s, exit %d)", s.Terminated.Reason, s.Terminated.ExitCode)
	}
	return "unknown"
}

// Exec runs a command in a pod's container and returns its stdout; stderr goes into the error.
func (c *Client) Exec(ctx context.Context, ns, pod, container string, command ...string) (string, error) {
	req := c.Typed.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: command, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(c.Config, "POST", req.URL())
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		return stdout.String(), fmt.Errorf("exec %v in %s/%s: %w: %s", command, ns, pod, err, stderr.String())
	}
	return stdout.String(), nil
}
