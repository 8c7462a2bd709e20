//go:build e2e

package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cnpg-mcp/cnpg-mcp/chaos"
	"github.com/cnpg-mcp/cnpg-mcp/e2e/kube"
	mockconfig "github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
)

// stateCluster is the CloudNativePG Cluster the chart creates for the server's own store.
const stateCluster = "cnpg-mcp-state"

// Zero lost grants across a switchover of the server's own state database (issue 11): a release of its
// own (chaosNamespace, so no other spec running beside it sees the switchover), whose two server
// replicas share the chart's CloudNativePG Cluster; it is scaled to two instances and switched over
// (status.targetPrimary, as `kubectl cnpg promote` and our promote_cluster_instance tool do), there and
// back, while clients refresh and call the MCP endpoint through both replicas — a new connection per
// request, so the NodePort Service picks a pod for every request. The chaos tier's client loop
// (package chaos) asserts that no grant is lost, no valid access token is answered 401, every token
// the server acknowledged is usable at the end, and reports the recovery time after each switchover.
var _ = Describe("zero lost grants across a switchover of the state database", Ordered, Label("chaos"), SpecPriority(80), func() {
	It("keeps every grant while clients refresh through both replicas and the state database switches over", func(ctx SpecContext) {
		installHA(ctx, chaosNamespace, chaosURL, chaosNodePort)

		By("scaling the state cluster " + stateCluster + " to two instances")
		patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"instances": 2}})
		_, err := kc.Dynamic.Resource(clusterGVR).Namespace(chaosNamespace).Patch(ctx, stateCluster, types.MergePatchType, patch, metav1.PatchOptions{})
		Expect(err).NotTo(HaveOccurred())
		start := time.Now()
		Expect(waitStateHealthy(ctx, chaosNamespace, 2, "", 10*time.Minute)).To(Succeed())
		AddReportEntry("state-cluster-two-instances", time.Since(start).Round(time.Second).String())

		By("running the clients and switching the primary over, twice")
		rep, err := chaos.Run(ctx, chaos.Options{
			Target: chaos.Target{MCPURL: chaosURL + "/mcp", Username: mockconfig.DefaultUserEmail, Password: mockconfig.DefaultUserPassword,
				NoKeepAlive: true},
			Clients: 10, RetryFor: 3 * time.Minute, RecheckFor: 2 * time.Minute,
			Logf: func(format string, a ...any) { fmt.Fprintf(logw, format+"\n", a...) },
		}, chaos.Scenario{
			Name:          "switchover-" + stateCluster,
			Description:   "switchover of the server's CloudNativePG state cluster while 10 clients refresh through both replicas",
			Cycles:        2,
			Settle:        5 * time.Second,
			RecoverWithin: 3 * time.Minute,
			Inject: func(ctx context.Context, r *chaos.Runner, _ int) (chaos.Window, error) {
				o, err := kc.Get(ctx, clusterGVR, chaosNamespace, stateCluster)
				if err != nil {
					return chaos.Window{}, err
				}
				current, _, _ := unstructured.NestedString(o.Object, "status", "currentPrimary")
				names, _, _ := unstructured.NestedStringSlice(o.Object, "status", "instanceNames")
				i := slices.IndexFunc(names, func(n string) bool { return n != current })
				if i < 0 {
					return chaos.Window{}, fmt.Errorf("no instance other than the primary %s in %v", current, names)
				}
				target := names[i]
				r.WaitRefreshInFlight(ctx, 5*time.Second)
				began := time.Now()
				status, _ := json.Marshal(map[string]any{
					"metadata": map[string]any{"resourceVersion": o.GetResourceVersion()},
					"status": map[string]any{"targetPrimary": target, "targetPrimaryTimestamp": began.UTC().Format(metav1.RFC3339Micro),
						"phase": "Switchover in progress", "phaseReason": "Switching over to " + target + " (e2e chaos)"},
				})
				if _, err := kc.Dynamic.Resource(clusterGVR).Namespace(chaosNamespace).Patch(ctx, stateCluster, types.MergePatchType, status, metav1.PatchOptions{}, "status"); err != nil {
					return chaos.Window{}, fmt.Errorf("request the switchover: %w", err)
				}
				if err := waitStateHealthy(ctx, chaosNamespace, 2, target, 5*time.Minute); err != nil {
					return chaos.Window{}, err
				}
				return chaos.Window{Fault: fmt.Sprintf("switchover %s → %s", current, target), Start: began, End: time.Now()}, nil
			},
		})
		Expect(err).NotTo(HaveOccurred())
		summary := chaos.Table([]*chaos.Report{rep}) + rep.Details(20)
		fmt.Fprintln(logw, summary)
		AddReportEntry("chaos "+rep.Scenario, summary)
		Expect(rep.Problems()).To(BeEmpty(), summary)
	}, SpecTimeout(30*time.Minute))
})

// waitStateHealthy waits until the state cluster in ns is healthy with n ready instances (and, when
// primary is set, that instance as its primary).
func waitStateHealthy(ctx context.Context, ns string, n int64, primary string, timeout time.Duration) error {
	what := fmt.Sprintf("%s healthy with %d instances", stateCluster, n)
	if primary != "" {
		what += ", primary " + primary
	}
	return kube.WaitFor(ctx, what, timeout, func(ctx context.Context) (bool, string, error) {
		o, err := kc.Get(ctx, clusterGVR, ns, stateCluster)
		if err != nil {
			return false, "", err
		}
		phase, _, _ := unstructured.NestedString(o.Object, "status", "phase")
		ready, _, _ := unstructured.NestedInt64(o.Object, "status", "readyInstances")
		current, _, _ := unstructured.NestedString(o.Object, "status", "currentPrimary")
		ok := phase == "Cluster in healthy state" && ready == n && (primary == "" || current == primary)
		return ok, fmt.Sprintf("%s, %d ready, primary %s", phase, ready, current), nil
	})
}
