{{/* Names */}}
{{- define "cnpg-mcp.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cnpg-mcp.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cnpg-mcp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "cnpg-mcp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cnpg-mcp
{{- end -}}

{{- define "cnpg-mcp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cnpg-mcp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cnpg-mcp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "cnpg-mcp.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "cnpg-mcp.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
RBAC objects outside the release namespace (the ClusterRole and its binding, the Roles in the managed
namespaces) carry the release namespace too: the same release name in two namespaces (a read-only and a
read-write server, say) must not fight over one ClusterRole.
*/}}
{{- define "cnpg-mcp.rbacName" -}}
{{- printf "%s-%s" .Release.Namespace (include "cnpg-mcp.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Secrets the server reads (referenced; created only on request) */}}
{{- define "cnpg-mcp.clientSecretName" -}}
{{- default (printf "%s-oidc-client" (include "cnpg-mcp.fullname" .)) .Values.oidc.clientSecret.existingSecret -}}
{{- end -}}

{{- define "cnpg-mcp.keysSecretName" -}}
{{- default (printf "%s-keys" (include "cnpg-mcp.fullname" .)) .Values.keys.existingSecret -}}
{{- end -}}

{{- define "cnpg-mcp.stateClusterName" -}}
{{- printf "%s-state" (include "cnpg-mcp.fullname" .) | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "cnpg-mcp.postgresSecretName" -}}
{{- if .Values.store.postgres.cnpgCluster.enabled -}}
{{- printf "%s-app" (include "cnpg-mcp.stateClusterName" .) -}}
{{- else -}}
{{- .Values.store.postgres.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "cnpg-mcp.postgresSecretKey" -}}
{{- if .Values.store.postgres.cnpgCluster.enabled -}}uri{{- else -}}{{ .Values.store.postgres.key }}{{- end -}}
{{- end -}}

{{- define "cnpg-mcp.pvcName" -}}
{{- default (printf "%s-data" (include "cnpg-mcp.fullname" .)) .Values.store.file.existingClaim -}}
{{- end -}}

{{/* Paths inside the container (one place, used by the ConfigMap and the Deployment) */}}
{{- define "cnpg-mcp.paths" -}}
configDir: /etc/cnpg-mcp
config: /etc/cnpg-mcp/oidc.yaml
clientSecretDir: /etc/cnpg-mcp/client
keysDir: /etc/cnpg-mcp/keys
postgresDir: /etc/cnpg-mcp/postgres
dataDir: /var/lib/cnpg-mcp
{{- end -}}

{{/*
Validation: every value combination that cannot work fails the render with a message saying what to do.
*/}}
{{- define "cnpg-mcp.validate" -}}
{{- $_ := required "publicURL is required: the URL MCP clients reach this server at, e.g. --set publicURL=https://mcp.example.com" .Values.publicURL -}}
{{- if not (regexMatch "^https?://[^/?#]+(/[^?#]*)?$" .Values.publicURL) -}}
{{- fail (printf "publicURL %q must be an absolute http(s) URL without query or fragment" .Values.publicURL) -}}
{{- end -}}
{{- if hasSuffix "/" .Values.publicURL -}}
{{- fail (printf "publicURL %q must not end with \"/\" (it is the issuer, compared byte for byte)" .Values.publicURL) -}}
{{- end -}}
{{- if eq .Values.store.type "file" -}}
{{- if gt (int .Values.replicaCount) 1 -}}
{{- fail "store.type=file keeps state in one file that one process can open: set replicaCount=1, or store.type=postgres for several replicas" -}}
{{- end -}}
{{- else if eq .Values.store.type "postgres" -}}
{{- if and (not .Values.store.postgres.existingSecret) (not .Values.store.postgres.cnpgCluster.enabled) -}}
{{- fail "store.type=postgres needs store.postgres.existingSecret (a Secret with a connection URI) or store.postgres.cnpgCluster.enabled=true" -}}
{{- end -}}
{{- else -}}
{{- fail (printf "store.type must be \"file\" or \"postgres\", not %q" .Values.store.type) -}}
{{- end -}}
{{- end -}}
