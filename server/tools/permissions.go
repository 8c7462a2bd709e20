package tools

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// cnpgResources are the CloudNativePG resources the tools use (API group postgresql.cnpg.io); every
// other resource named in a tool's calls is a core ("") resource.
var cnpgResources = []string{"clusters", "databaseroles", "databases", "poolers", "backups", "scheduledbackups", "imagecatalogs", "clusterimagecatalogs"}

const cnpgGroup = "postgresql.cnpg.io"

// pluginGroup is the Barman Cloud plugin's API group (objectstores), which the backup tools read.
const pluginGroup = "barmancloud.cnpg.io"

func permissionTools(d *Deps) []Tool {
	return []Tool{
		build(d, spec{
			name: "get_my_permissions", title: "What may I do here?", area: "observability", readOnly: true, idempotent: true,
			desc: "Say who the tools act as in Kubernetes (you, when the server impersonates the signed-in user; else the server) and what that identity may do in a namespace: " +
				"which tools it can use there, what each other tool lacks, and its RBAC rules for the resources the tools touch (a SelfSubjectRulesReview).",
			calls:  []string{"create selfsubjectreviews", "create selfsubjectrulesreviews"},
			params: []mcp.ToolOption{pNamespace(), pFormat()},
		}, myPermissions),
	}
}

type permissionsArgs struct {
	Namespace string `json:"namespace"`
	Format    string `json:"format"`
}

// rulePermits reports whether rules allow verb on group/resource for any object (rules limited to
// named objects do not count: a list or create needs more).
func rulePermits(rules []authzv1.ResourceRule, verb, group, resource string) bool {
	for _, r := range rules {
		if len(r.ResourceNames) > 0 {
			continue
		}
		if (slices.Contains(r.Verbs, verb) || slices.Contains(r.Verbs, "*")) &&
			(slices.Contains(r.APIGroups, group) || slices.Contains(r.APIGroups, "*")) &&
			(slices.Contains(r.Resources, resource) || slices.Contains(r.Resources, "*") ||
				(strings.Contains(resource, "/") && slices.Contains(r.Resources, "*/"+strings.SplitN(resource, "/", 2)[1]))) {
			return true
		}
	}
	return false
}

// needed is one permission a tool's call needs.
type needed struct {
	verb, group, resource string
	optional              bool // only on some paths (a wait, a rollback)
}

func (n needed) String() string {
	r, sub, _ := strings.Cut(n.resource, "/")
	if n.group != "" {
		r += "." + n.group
	}
	if sub != "" {
		r += "/" + sub
	}
	return n.verb + " " + r
}

// neededBy parses a tool's documented calls ("verb resource[/sub] (details)") into permissions;
// a call made only on some paths — "(wait)", "(rollback)", "(fallback …)" — is optional.
func neededBy(t Tool) []needed {
	var out []needed
	for _, call := range t.Calls {
		f := strings.Fields(call)
		if len(f) < 2 {
			continue
		}
		n := needed{verb: f[0], resource: f[1], optional: strings.Contains(call, "(wait)") || strings.Contains(call, "(rollback)") || strings.Contains(call, "(fallback")}
		base, sub, _ := strings.Cut(n.resource, "/")
		if res, group, qualified := strings.Cut(base, "."); qualified {
			// a resource of another API group, named with it ("objectstores.barmancloud.cnpg.io")
			n.resource, n.group = res, group
			if sub != "" {
				n.resource += "/" + sub
			}
			base = res
		}
		switch {
		case n.group != "":
		case slices.Contains(cnpgResources, base):
			n.group = cnpgGroup
		case base == "selfsubjectrulesreviews":
			n.group = "authorization.k8s.io"
		case base == "selfsubjectreviews":
			n.group = "authentication.k8s.io"
		}
		if !slices.ContainsFunc(out, func(x needed) bool { return x.verb == n.verb && x.resource == n.resource }) {
			out = append(out, n)
		}
	}
	return out
}

func myPermissions(ctx context.Context, c *call, a *permissionsArgs) (*Result, error) {
	ns, err := c.namespace(a.Namespace)
	if err != nil {
		return nil, err
	}
	who := c.who
	var groups []string
	if ssr, err := c.Core.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{}); err == nil {
		who, groups = ssr.Status.UserInfo.Username, ssr.Status.UserInfo.Groups
	}
	review, err := c.Core.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authzv1.SelfSubjectRulesReview{Spec: authzv1.SelfSubjectRulesReviewSpec{Namespace: ns}}, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	rules := review.Status.ResourceRules
	var usable []string
	var denied []any
	var deniedText []string
	for _, t := range c.tools {
		var missing []string
		for _, n := range neededBy(t) {
			if !n.optional && !rulePermits(rules, n.verb, n.group, n.resource) {
				missing = append(missing, n.String())
			}
		}
		if len(missing) == 0 {
			usable = append(usable, t.Def.Name)
			continue
		}
		denied = append(denied, map[string]any{"tool": t.Def.Name, "missing": missing})
		deniedText = append(deniedText, fmt.Sprintf("  - %s: needs %s", t.Def.Name, strings.Join(missing, ", ")))
	}
	// The identity's rules for what the tools touch, one line per API group and resource.
	type key struct{ group, resource string }
	verbs := map[key][]string{}
	for _, r := range rules {
		if len(r.ResourceNames) > 0 {
			continue
		}
		for _, g := range r.APIGroups {
			if g != "" && g != cnpgGroup && g != pluginGroup && g != "*" {
				continue
			}
			for _, res := range r.Resources {
				k := key{g, res}
				for _, v := range r.Verbs {
					if !slices.Contains(verbs[k], v) {
						verbs[k] = append(verbs[k], v)
					}
				}
			}
		}
	}
	var ruleRows []any
	var ruleText []string
	for k, v := range verbs {
		sort.Strings(v)
		ruleRows = append(ruleRows, map[string]any{"api_group": k.group, "resource": k.resource, "verbs": v})
		ruleText = append(ruleText, fmt.Sprintf("  - %s %s: %s", firstNonEmpty(k.group, `core ("")`), k.resource, strings.Join(v, ", ")))
	}
	sort.Strings(ruleText)
	sort.Slice(ruleRows, func(i, j int) bool {
		a, b := ruleRows[i].(map[string]any), ruleRows[j].(map[string]any)
		return a["api_group"].(string)+"/"+a["resource"].(string) < b["api_group"].(string)+"/"+b["resource"].(string)
	})

	var b strings.Builder
	if c.who != "" {
		fmt.Fprintf(&b, "In namespace %s the tools act as you: Kubernetes user %s", ns, who)
	} else {
		fmt.Fprintf(&b, "In namespace %s the tools act as this server's own identity %s (not as you; every signed-in user gets the same rights)", ns, firstNonEmpty(who, "(unknown)"))
	}
	if len(groups) > 0 {
		fmt.Fprintf(&b, ", groups %s", strings.Join(groups, ", "))
	}
	fmt.Fprintf(&b, ".\nUsable here: %d of %d tools", len(usable), len(c.tools))
	if len(usable) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(usable, ", "))
	}
	b.WriteString(".\n")
	if len(deniedText) > 0 {
		b.WriteString("Not usable here, for lack of Kubernetes permissions:\n" + strings.Join(deniedText, "\n") + "\n")
	}
	if len(ruleText) > 0 {
		b.WriteString("Rules for CloudNativePG, Barman Cloud plugin and core resources:\n" + strings.Join(ruleText, "\n") + "\n")
	} else {
		b.WriteString("No rules for CloudNativePG, Barman Cloud plugin or core resources in this namespace.\n")
	}
	if review.Status.Incomplete {
		fmt.Fprintf(&b, "The API server says this list may be incomplete (%s): an authorizer besides RBAC may allow more.\n", firstNonEmpty(review.Status.EvaluationError, "no reason given"))
	}
	if denied == nil {
		denied = []any{}
	}
	return &Result{Text: b.String(), JSONText: a.Format == "json", Data: map[string]any{
		"namespace": ns, "user": who, "groups": groups, "impersonated": c.who != "",
		"usable_tools": usable, "denied_tools": denied, "rules": ruleRows, "incomplete": review.Status.Incomplete,
	}}, nil
}
