package tools

import (
	"errors"
	"fmt"
	"net"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// explain turns an error into the short message a caller (usually a language model) can act on.
func explain(err error) string {
	if err == nil {
		return ""
	}
	if IsUserError(err) {
		return err.Error()
	}
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		var ne net.Error
		if errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") {
			return "The Kubernetes API server is not reachable (" + err.Error() + "); check the server's /readyz and its Kubernetes configuration, then retry."
		}
		return err.Error()
	}
	s := st.Status()
	what := describe(s.Details)
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Sprintf("Kubernetes denied this (403 Forbidden): %s. The server's service account lacks the RBAC permission; grant the rules in docs/rbac.md (server/tools/rbac/clusterrole.yaml) or use a namespace it may access.", s.Message)
	case apierrors.IsNotFound(err):
		return fmt.Sprintf("%s was not found (404). Check the name and namespace; list what exists with list_postgres_clusters or the matching list tool.", what)
	case apierrors.IsAlreadyExists(err):
		return fmt.Sprintf("%s already exists (409). Choose another name, or inspect or delete the existing object first.", what)
	case apierrors.IsConflict(err):
		return fmt.Sprintf("%s changed while it was being updated (409 Conflict): %s. Read its current state and retry.", what, s.Message)
	case apierrors.IsInvalid(err):
		var causes []string
		if s.Details != nil {
			for _, c := range s.Details.Causes {
				causes = append(causes, strings.TrimSpace(c.Field+": "+c.Message))
			}
		}
		msg := s.Message
		if len(causes) > 0 {
			msg = strings.Join(causes, "; ")
		}
		return fmt.Sprintf("The Kubernetes API server rejected %s (422 Invalid): %s. Fix those arguments and call again.", what, msg)
	case apierrors.IsUnauthorized(err):
		return "Kubernetes rejected the server's credentials (401). The server's service account token or kubeconfig is not valid; this is a deployment problem, not a problem with the call."
	case apierrors.IsTimeout(err), apierrors.IsServerTimeout(err), apierrors.IsServiceUnavailable(err), apierrors.IsTooManyRequests(err):
		return fmt.Sprintf("The Kubernetes API server is busy or timed out (%d): %s. Retry in a moment.", s.Code, s.Message)
	case apierrors.IsBadRequest(err):
		return fmt.Sprintf("The Kubernetes API server refused the request (400): %s.", s.Message)
	}
	return fmt.Sprintf("Kubernetes API error (%d %s): %s", s.Code, s.Reason, s.Message)
}

func describe(d *metav1.StatusDetails) string {
	if d == nil || d.Name == "" {
		return "the object"
	}
	kind := d.Kind
	if kind == "" {
		kind = "object"
	}
	return fmt.Sprintf("%s %q", strings.TrimSuffix(kind, "s"), d.Name)
}
