{{/* RBAC rules for the MCP tools; reconciled with server/tools/rbac. */}}
{{- define "cnpg-mcp.rules" -}}
{{- $ro := list "get" "list" "watch" -}}
{{- $rw := list "get" "list" "watch" "create" "update" "patch" "delete" -}}
{{- $readOnly := .Values.rbac.readOnly -}}
# Exactly what the MCP tools do. Read-only mode keeps only reads, and no Secret access at all.
- apiGroups: [postgresql.cnpg.io]
  resources: [clusters, backups, scheduledbackups, poolers, databases, databaseroles]
  verbs: {{ ternary $ro $rw $readOnly | toJson }}
{{- if not $readOnly }}
# switchover / promote: status.targetPrimary through the status subresource
- apiGroups: [postgresql.cnpg.io]
  resources: [clusters/status]
  verbs: [get, patch]
# role passwords (basic-auth Secrets) and the cluster's Secrets when a cluster is deleted
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, create, update, patch, delete]
{{- end }}
# instances: status, bounded log tails, and (not read-only) deleting a non-primary instance
- apiGroups: [""]
  resources: [pods]
  verbs: {{ ternary $ro (list "get" "list" "watch" "delete") $readOnly | toJson }}
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, list, watch]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [get, list, watch]
{{- end }}
