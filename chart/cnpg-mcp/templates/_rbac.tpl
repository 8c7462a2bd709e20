{{/*
RBAC rules of the MCP tools: exactly the calls they make (the same rules as server/tools/rbac/clusterrole.yaml,
which the tools' tests verify against a real kube-apiserver; chart/chart_test.go checks they stay equal).
Read-only mode keeps the reads only, and no Secret access at all.
*/}}
{{- define "cnpg-mcp.rules" -}}
{{- if not .Values.rbac.readOnly -}}
- apiGroups: ["postgresql.cnpg.io"]
  resources: ["clusters"]
  verbs: ["get", "list", "create", "patch", "delete"]
# switchover / promote: status.targetPrimary through the status subresource
- apiGroups: ["postgresql.cnpg.io"]
  resources: ["clusters/status"]
  verbs: ["patch"]
- apiGroups: ["postgresql.cnpg.io"]
  resources: ["databaseroles"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: ["postgresql.cnpg.io"]
  resources: ["databases", "poolers"]
  verbs: ["get", "list", "create", "delete"]
- apiGroups: ["postgresql.cnpg.io"]
  resources: ["backups"]
  verbs: ["get", "list", "create"]
- apiGroups: ["postgresql.cnpg.io"]
  resources: ["scheduledbackups"]
  verbs: ["get", "list", "create", "patch"]
# role passwords (basic-auth Secrets) and a deleted cluster's Secrets
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "create", "patch", "delete"]
# instance status, restarts and deleting a non-primary instance
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "delete"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
# the instance managers' own reports (/pg/status, /metrics) for status, diagnose, recoverability
- apiGroups: [""]
  resources: ["pods/proxy"]
  verbs: ["get"]
# the Barman Cloud plugin's recovery window (recoverability, restore)
- apiGroups: ["barmancloud.cnpg.io"]
  resources: ["objectstores"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["list", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list"]
{{- else -}}
- apiGroups: ["postgresql.cnpg.io"]
  resources: ["clusters", "databaseroles", "databases", "backups"]
  verbs: ["get", "list"]
- apiGroups: ["postgresql.cnpg.io"]
  resources: ["scheduledbackups", "poolers"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["pods/proxy"]
  verbs: ["get"]
- apiGroups: ["barmancloud.cnpg.io"]
  resources: ["objectstores"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list"]
{{- end -}}
{{- end -}}


{{/*
Impersonate mode: impersonate on users and groups, nothing else (server/tools/rbac/impersonator.yaml;
chart/chart_test.go checks they stay equal), restricted by resourceNames when identity.impersonation.users
or .groups name the users and groups the server may act as.
*/}}
{{- define "cnpg-mcp.impersonationRules" -}}
{{- $im := .Values.identity.impersonation -}}
{{- if or $im.users $im.groups -}}
{{- range $res, $names := dict "users" $im.users "groups" $im.groups }}
- apiGroups: [""]
  resources: [{{ $res | quote }}]
  verbs: ["impersonate"]
{{- if $names }}
  resourceNames: {{ toJson $names }}
{{- end }}
{{- end }}
{{- else -}}
- apiGroups: [""]
  resources: ["users", "groups"]
  verbs: ["impersonate"]
{{- end -}}
{{- end -}}
