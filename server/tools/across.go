package tools

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxListNamespaces bounds the namespaces an all-namespaces list visits one by one.
const maxListNamespaces = 100

// skippedNamespace is a namespace an all-namespaces list could not look into, and why.
type skippedNamespace struct {
	Namespace string `json:"namespace"`
	Reason    string `json:"reason"`
}

// listEverywhere runs list over every namespace the caller may see, for a list tool's
// all_namespaces: the server's namespace allow-list one by one, else the whole cluster at once
// (list("")), falling back to one namespace at a time when that is forbidden (a user with rights in
// some namespaces only). A namespace where listing is forbidden is skipped and reported, not an
// error; what is listed is exactly what the identity the call acts as may see. It returns the
// namespaces listed (nil: all, at once).
func (c *call) listEverywhere(ctx context.Context, what string, list func(ns string) error) ([]string, []skippedNamespace, error) {
	namespaces := c.AllowedNamespaces
	if len(namespaces) == 0 {
		err := list("")
		if err == nil || !apierrors.IsForbidden(err) {
			return nil, nil, err
		}
		all, nerr := c.Core.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if apierrors.IsForbidden(nerr) {
			return nil, nil, userErrorf("%s may not list %s in all namespaces, nor list the namespaces to look into each: name a namespace (the namespace argument) instead; get_my_permissions says what %s may do in a namespace",
				c.actor(), what, c.actor())
		}
		if nerr != nil {
			return nil, nil, nerr
		}
		namespaces = nil
		for _, n := range all.Items {
			namespaces = append(namespaces, n.Name)
		}
	}
	var listed []string
	var skipped []skippedNamespace
	for i, ns := range namespaces {
		if i == maxListNamespaces {
			skipped = append(skipped, skippedNamespace{Namespace: fmt.Sprintf("%d more", len(namespaces)-i), Reason: fmt.Sprintf("at most %d namespaces are visited one by one; name a namespace", maxListNamespaces)})
			break
		}
		err := list(ns)
		switch {
		case err == nil:
			listed = append(listed, ns)
		case apierrors.IsForbidden(err):
			skipped = append(skipped, skippedNamespace{Namespace: ns, Reason: fmt.Sprintf("%s may not list %s there", c.actor(), what)})
		default:
			return nil, nil, err
		}
	}
	return listed, skipped, nil
}

// actor names who the call acts as in Kubernetes, for messages.
func (c *call) actor() string {
	if c.who != "" {
		return c.who
	}
	return "this server's service account"
}

// skippedText is the line a list adds about skipped namespaces ("" when none).
func skippedText(skipped []skippedNamespace) string {
	if len(skipped) == 0 {
		return ""
	}
	var parts []string
	for _, s := range skipped {
		parts = append(parts, s.Namespace+" ("+s.Reason+")")
	}
	return "Skipped namespaces: " + strings.Join(parts, "; ") + ".\n"
}
