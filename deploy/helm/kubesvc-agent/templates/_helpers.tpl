{{/* Names and labels. */}}
{{- define "kubesvc-agent.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kubesvc-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kubesvc-agent.labels" -}}
{{ include "kubesvc-agent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kubesvc-agent.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kubesvc-agent.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The namespaces of the agent's Roles with rbac.clusterWide false, as a JSON
list: those the in-cluster account watches (inClusterAccount.namespaces),
or the release namespace when it names none or accounts are given.
*/}}
{{- define "kubesvc-agent.rbacNamespaces" -}}
{{- $ns := list -}}
{{- if not .Values.accounts -}}
{{- $ns = .Values.inClusterAccount.namespaces | default list -}}
{{- end -}}
{{- toJson (default (list .Release.Namespace) $ns | uniq) -}}
{{- end -}}

{{/*
The configuration file: .Values.config with the keys the chart manages
merged over it.
*/}}
{{- define "kubesvc-agent.config" -}}
{{- if not .Values.controlplane.address -}}
{{- fail "controlplane.address is required: host:port of the control plane's gRPC endpoint" -}}
{{- end -}}
{{- $cfg := deepCopy (.Values.config | default dict) -}}
{{- range $k := list "grpc" "insecure" "tls" -}}
{{- if hasKey ($cfg.clouddriver | default dict) $k -}}
{{- fail (printf "config.clouddriver.%s is set by the chart: use controlplane.address and controlplane.tls" $k) -}}
{{- end -}}
{{- end -}}
{{- if hasKey ($cfg.server | default dict) "port" -}}
{{- fail "config.server.port is set by the chart (8082, the health and metrics port)" -}}
{{- end -}}
{{- if hasKey ($cfg.kubernetes | default dict) "accounts" -}}
{{- fail "config.kubernetes.accounts is set by the chart: use accounts (or inClusterAccount)" -}}
{{- end -}}
{{- $cd := dict "grpc" .Values.controlplane.address "insecure" (not .Values.controlplane.tls.secretName) -}}
{{- with .Values.controlplane.tls.secretName -}}
{{- $tls := dict "cacertFile" "/etc/kubesvc/tls/ca.crt" "insecureSkipVerify" $.Values.controlplane.tls.insecureSkipVerify -}}
{{- if $.Values.controlplane.tls.clientCertificate -}}
{{- $_ := set $tls "clientCertFile" "/etc/kubesvc/tls/tls.crt" -}}
{{- $_ := set $tls "clientKeyFile" "/etc/kubesvc/tls/tls.key" -}}
{{- end -}}
{{- with $.Values.controlplane.tls.serverName -}}
{{- $_ := set $tls "serverName" . -}}
{{- end -}}
{{- $_ := set $cd "tls" $tls -}}
{{- end -}}
{{- $accounts := .Values.accounts -}}
{{- if not $accounts -}}
{{- $in := dict "name" (default .Release.Name .Values.inClusterAccount.name) "serviceAccount" true -}}
{{- range $k := list "namespaces" "omitNamespaces" "kinds" "omitKinds" -}}
{{- with index $.Values.inClusterAccount $k -}}
{{- $_ := set $in $k . -}}
{{- end -}}
{{- end -}}
{{- if not .Values.rbac.clusterWide -}}
{{- /* Roles reach the namespaces they are in (rbac.yaml) and no cluster-scoped kind: watch what they allow. */}}
{{- if hasKey $in "omitNamespaces" -}}
{{- fail "rbac.clusterWide false makes a Role in each namespace watched: set inClusterAccount.namespaces, not omitNamespaces" -}}
{{- end -}}
{{- if not (hasKey $in "namespaces") -}}
{{- $_ := set $in "namespaces" (list .Release.Namespace) -}}
{{- end -}}
{{- $_ := set $in "onlyNamespacedResources" true -}}
{{- end -}}
{{- $accounts = list $in -}}
{{- end -}}
{{- $managed := dict "clouddriver" $cd "server" (dict "port" 8082) "kubernetes" (dict "accounts" $accounts) -}}
{{- toYaml (mergeOverwrite $cfg $managed) -}}
{{- end -}}

{{/*
The configuration without its accounts: a change of it restarts the pod,
while account edits are applied live by the agent.
*/}}
{{- define "kubesvc-agent.restartConfig" -}}
{{- $cfg := include "kubesvc-agent.config" . | fromYaml -}}
{{- $_ := unset ($cfg.kubernetes | default dict) "accounts" -}}
{{- toYaml $cfg -}}
{{- end -}}
