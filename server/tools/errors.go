package tools

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// explain turns an error into the short message a caller (usually a language model) can act on.
func explain(err error) string { return explainAs(err, "") }

// forbiddenRe parses the RBAC authorizer's message (kube-apiserver's forbiddenMessage), e.g.
// `User "u" cannot patch resource "clusters" in API group "postgresql.cnpg.io" in the namespace "a"`
// (verbs include constrained impersonation's `impersonate-on:user-info:list`).
var forbiddenRe = regexp.MustCompile(`User "([^"]*)" cannot ([a-z][a-z:-]*) resource "([^"]+)" in API group "([^"]*)"(?: in the namespace "([^"]*)"| (at the cluster scope))?`)

// denial is what a 403 from the RBAC authorizer says: who may not do what where.
type denial struct {
	user, verb, what, where string
}

func parseDenial(msg string) (denial, bool) {
	m := forbiddenRe.FindStringSubmatch(msg)
	if m == nil {
		return denial{}, false
	}
	res, sub, _ := strings.Cut(m[3], "/")
	what := res
	if m[4] != "" {
		what += "." + m[4]
	}
	if sub != "" {
		what += "/" + sub
	}
	where := "in all namespaces (at the cluster scope)"
	if m[5] != "" {
		where = "in namespace " + m[5]
	}
	return denial{user: m[1], verb: m[2], what: what, where: where}, true
}

// forbidden explains a 403. who is the impersonated user ("" when the call ran as the server).
func forbidden(msg, who string) string {
	d, parsed := parseDenial(msg)
	switch {
	case who != "" && parsed && strings.HasPrefix(d.verb, "impersonate"):
		// "impersonate" (users, groups), or a constrained-impersonation verb such as
		// "impersonate-on:user-info:list" (Kubernetes 1.35+) when neither kind of rule allows it.
		return fmt.Sprintf("Kubernetes refused to let this server act as %s (403 Forbidden: %s may not %s %s). This is a deployment problem, not a problem with the call: "+
			"the server's service account needs the impersonation ClusterRole of docs/rbac.md (\"impersonate mode\"), and a restricted one must list this user and their groups "+
			"(chart values identity.impersonation.users and .groups, server settings kubernetes.impersonation.users and .groups). Tell an administrator; nothing was done.", who, d.user, d.verb, d.what)
	case who != "" && parsed:
		return fmt.Sprintf("Kubernetes denied this (403 Forbidden): %s may not %s %s %s. This server acts as you in Kubernetes, so Kubernetes RBAC decides what you may do: "+
			"ask a cluster administrator for a Role that grants it (docs/rbac.md has examples), or work where you have that right (get_my_permissions lists what you may do in a namespace).",
			who, d.verb, d.what, d.where)
	case who != "":
		return fmt.Sprintf("Kubernetes denied this (403 Forbidden) to %s: %s. This server acts as you in Kubernetes, so Kubernetes RBAC decides what you may do (docs/rbac.md; get_my_permissions lists what you may do in a namespace).", who, msg)
	}
	return fmt.Sprintf("Kubernetes denied this (403 Forbidden): %s. The server's service account lacks the RBAC permission; grant the rules in docs/rbac.md (server/tools/rbac/clusterrole.yaml) or use a namespace it may access.", msg)
}

// explainRequest is explain for a request whose 403 may come without the authorizer's message (a
// non-JSON request such as pods/log: client-go reports "unknown"): the denial is then built from
// what the caller knows it asked for.
func (c *call) explainRequest(err error, verb, group, resource, ns string) string {
	var st apierrors.APIStatus
	if c.who != "" && apierrors.IsForbidden(err) && errors.As(err, &st) {
		if _, ok := parseDenial(st.Status().Message); !ok {
			msg := fmt.Sprintf(`User %q cannot %s resource %q in API group %q in the namespace %q`, c.who, verb, resource, group, ns)
			return forbidden(msg, c.who)
		}
	}
	return c.explain(err)
}

// explainAs is explain for a call that acted as the Kubernetes user who ("" for the server itself).
func explainAs(err error, who string) string {
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
		return forbidden(s.Message, who)
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
