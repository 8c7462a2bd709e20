package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// Labels and annotations used by the tools. The annotation names are CloudNativePG's (the api
// module does not export them).
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "cnpg-mcp"
	LabelCluster   = "cnpg.io/cluster"
	LabelInstance  = "cnpg.io/instanceName"
	LabelReload    = "cnpg.io/reload"

	AnnotationRestart     = "kubectl.kubernetes.io/restartedAt"
	AnnotationReload      = "cnpg.io/reloadedAt"
	AnnotationHibernation = "cnpg.io/hibernation"
	AnnotationFenced      = "cnpg.io/fencedInstances"
	AnnotationValidation  = "cnpg.io/validation"
)

const mergePatchType = "application/merge-patch+json"

func createOpts(dry bool) []client.CreateOption {
	if dry {
		return []client.CreateOption{client.DryRunAll}
	}
	return nil
}

func patchOpts(dry bool) []client.SubResourcePatchOption {
	if dry {
		return []client.SubResourcePatchOption{client.DryRunAll}
	}
	return nil
}

func objPatchOpts(dry bool) []client.PatchOption {
	if dry {
		return []client.PatchOption{client.DryRunAll}
	}
	return nil
}

func deleteOpts(dry bool) []client.DeleteOption {
	if dry {
		return []client.DeleteOption{client.DryRunAll}
	}
	return nil
}

// mergePatch sends a JSON merge patch (never the whole object) and returns the patch document.
func (c *call) mergePatch(ctx context.Context, obj client.Object, patch map[string]any, dry bool) (map[string]any, error) {
	b, err := json.Marshal(patch)
	if err != nil {
		return nil, err
	}
	if err := c.Client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, b), objPatchOpts(dry)...); err != nil {
		return nil, err
	}
	return patch, nil
}

// statusMergePatch sends a JSON merge patch to the status subresource.
func (c *call) statusMergePatch(ctx context.Context, obj client.Object, patch map[string]any, dry bool) (map[string]any, error) {
	b, err := json.Marshal(patch)
	if err != nil {
		return nil, err
	}
	if err := c.Client.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, b), patchOpts(dry)...); err != nil {
		return nil, err
	}
	return patch, nil
}

// namespacedCluster resolves the namespace argument and reads the named Cluster.
func (c *call) namespacedCluster(ctx context.Context, nsArg, name string) (string, *cnpgv1.Cluster, error) {
	ns, err := c.namespace(nsArg)
	if err != nil {
		return "", nil, err
	}
	cl, err := c.getCluster(ctx, ns, name)
	return ns, cl, err
}

func (c *call) getCluster(ctx context.Context, ns, name string) (*cnpgv1.Cluster, error) {
	if err := checkName("cluster name", name); err != nil {
		return nil, err
	}
	var cl cnpgv1.Cluster
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cl); err != nil {
		return nil, err
	}
	return &cl, nil
}

// toMap converts a typed object into its JSON form for structured output.
func toMap(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "managedFields")
	}
	return m
}

func typeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: cnpgv1.SchemeGroupVersion.String(), Kind: kind}
}

func managedLabels(cluster string) map[string]string {
	l := map[string]string{LabelManagedBy: ManagedByValue}
	if cluster != "" {
		l[LabelCluster] = cluster
	}
	return l
}

// dryRunText prefixes the summary of a dry run.
func dryRunText(dry bool, s string) string {
	if dry {
		return "DRY RUN (validated by the API server, nothing changed): " + s + "\nCall again with dry_run: false to apply."
	}
	return s
}

func limitList[T any](items []T) ([]T, bool) {
	if len(items) > MaxListItems {
		return items[:MaxListItems], true
	}
	return items, false
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func joinOr(items []string, empty string) string {
	if len(items) == 0 {
		return empty
	}
	return strings.Join(items, ", ")
}

func fmtObj(ns, name string) string { return fmt.Sprintf("%s/%s", ns, name) }

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

// yamlish renders v as YAML for readable dry-run output.
func yamlish(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
