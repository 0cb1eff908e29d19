{{/* Names and labels. */}}
{{- define "kubesvc-controlplane.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kubesvc-controlplane.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kubesvc-controlplane.labels" -}}
{{ include "kubesvc-controlplane.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kubesvc-controlplane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kubesvc-controlplane.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kubesvc-controlplane.driver" -}}
{{- (.Values.config.sql | default dict).driver | default "sqlite" | lower -}}
{{- end -}}

{{- define "kubesvc-controlplane.clustered" -}}
{{- if gt (int .Values.replicaCount) 1 }}true{{ end -}}
{{- end -}}

{{- define "kubesvc-controlplane.peerSecretName" -}}
{{- default (printf "%s-peer" (include "kubesvc-controlplane.fullname" .)) .Values.peerSecret.existingSecret -}}
{{- end -}}

{{/* Checks that fail the install with a message naming the value. */}}
{{- define "kubesvc-controlplane.validate" -}}
{{- $driver := include "kubesvc-controlplane.driver" . -}}
{{- if not (has $driver (list "sqlite" "mysql" "postgres")) -}}
{{- fail (printf "config.sql.driver must be sqlite, mysql or postgres, got %q" $driver) -}}
{{- end -}}
{{- if and (include "kubesvc-controlplane.clustered" .) (eq $driver "sqlite") -}}
{{- fail "replicaCount > 1 needs config.sql.driver mysql or postgres: SQLite is one replica's file" -}}
{{- end -}}
{{- if and (ne $driver "sqlite") (not .Values.sql.dsnSecret) (not (.Values.config.sql | default dict).dsn) -}}
{{- fail (printf "config.sql.driver %s needs sql.dsnSecret (a Secret holding the DSN)" $driver) -}}
{{- end -}}
{{- if not (has (upper .Values.grpcTLS.clientAuth) (list "NONE" "OPTIONAL" "REQUIRE")) -}}
{{- fail (printf "grpcTLS.clientAuth must be NONE, OPTIONAL or REQUIRE, got %q" .Values.grpcTLS.clientAuth) -}}
{{- end -}}
{{- if not (has (lower .Values.restTLS.clientAuth) (list "none" "want" "need")) -}}
{{- fail (printf "restTLS.clientAuth must be none, want or need, got %q" .Values.restTLS.clientAuth) -}}
{{- end -}}
{{- if and .Values.restTLS.secretName (ne (lower .Values.restTLS.clientAuth) "none") (not .Values.restTLS.caKey) -}}
{{- fail "restTLS.clientAuth want or need verifies clients against restTLS.caKey, which is empty" -}}
{{- end -}}
{{- if and (include "kubesvc-controlplane.clustered" .) ((.Values.config.kubesvc | default dict).id) -}}
{{- fail "config.kubesvc.id must stay unset with replicaCount > 1: each replica's id is its pod name, as peer discovery knows it" -}}
{{- end -}}
{{- if and .Values.sql.dsnSecret (.Values.config.sql | default dict).dsn -}}
{{- fail "set either sql.dsnSecret or config.sql.dsn, not both" -}}
{{- end -}}
{{- if and .Values.agentService.enabled (not .Values.agentService.allowInsecure) (not (and .Values.grpcTLS.secretName (eq (upper .Values.grpcTLS.clientAuth) "REQUIRE"))) -}}
{{- fail "agentService exposes the agents' endpoint outside the cluster: set grpcTLS.secretName with clientAuth REQUIRE (mTLS), or agentService.allowInsecure: true" -}}
{{- end -}}
{{- end -}}

{{/*
Fails when .user (the values' config) sets a key of .managed, the keys the
chart sets in this rendering (.path: the dotted path of both), like the
agent chart: they must agree with the objects the chart makes. Other keys
under a managed map (server.ssl, kubesvc.grpc.server, ...) pass through.
.hints: [prefix, what to set instead] pairs, the first matching prefix wins.
*/}}
{{- define "kubesvc-controlplane.refuseManaged" -}}
{{- $user := .user -}}
{{- range $k, $v := .managed -}}
{{- $path := printf "%s.%s" $.path $k -}}
{{- if and (hasKey $user $k) (not (kindIs "invalid" (index $user $k))) -}}
{{- $u := index $user $k -}}
{{- if and (kindIs "map" $v) (kindIs "map" $u) -}}
{{- include "kubesvc-controlplane.refuseManaged" (dict "managed" $v "user" $u "path" $path "hints" $.hints) -}}
{{- else -}}
{{- $hint := "" -}}
{{- range $h := $.hints -}}
{{- if and (not $hint) (or (eq $path (first $h)) (hasPrefix (printf "%s." (first $h)) $path)) -}}
{{- $hint = last $h -}}
{{- end -}}
{{- end -}}
{{- fail (printf "%s is set by the chart: %s" $path (default "see the keys it manages in its values.yaml" $hint)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The configuration file: .Values.config with the keys the chart manages
merged over it; setting one of them under config fails.
*/}}
{{- define "kubesvc-controlplane.config" -}}
{{- $fullname := include "kubesvc-controlplane.fullname" . -}}
{{- $cfg := deepCopy (.Values.config | default dict) -}}
{{- $grpcServer := dict "port" 9091 -}}
{{- $kubesvc := dict "grpc" (dict "server" $grpcServer) -}}
{{- $server := dict "port" 7002 -}}
{{- $sql := dict -}}
{{- if eq (include "kubesvc-controlplane.driver" .) "sqlite" -}}
{{- $_ := set $sql "path" "/var/lib/kubesvc/kubesvc.db" -}}
{{- end -}}
{{- if .Values.sql.dsnSecret -}}
{{- $_ := set $sql "dsnFile" (printf "/etc/kubesvc/sql/%s" .Values.sql.dsnKey) -}}
{{- end -}}
{{- if include "kubesvc-controlplane.clustered" . -}}
{{- $_ := set $kubesvc "cluster" "kubernetes" -}}
{{- $_ := set $kubesvc "cluster-kubernetes" (dict "namespace" .Release.Namespace "clouddriverServiceNamePrefix" $fullname "httpPortName" "http") -}}
{{- $_ := set $kubesvc "peerSecretFile" "/etc/kubesvc/peer/secret" -}}
{{- end -}}
{{- if .Values.grpcTLS.secretName -}}
{{- $sec := dict "enabled" true "certificateChain" "file:/etc/kubesvc/grpc-tls/tls.crt" "privateKey" "file:/etc/kubesvc/grpc-tls/tls.key" "clientAuth" (upper .Values.grpcTLS.clientAuth) -}}
{{- if ne (upper .Values.grpcTLS.clientAuth) "NONE" -}}
{{- $_ := set $sec "trustCertCollection" "file:/etc/kubesvc/grpc-tls/ca.crt" -}}
{{- end -}}
{{- $_ := set $grpcServer "security" $sec -}}
{{- end -}}
{{- if .Values.restTLS.secretName -}}
{{- $ssl := dict "enabled" true "certificate" "file:/etc/kubesvc/rest-tls/tls.crt" "certificate-private-key" "file:/etc/kubesvc/rest-tls/tls.key" "client-auth" (lower .Values.restTLS.clientAuth) -}}
{{- $peer := dict "serverName" (default (printf "%s.%s.svc" $fullname .Release.Namespace) .Values.restTLS.peerServerName) -}}
{{- with .Values.restTLS.caKey -}}
{{- $_ := set $peer "caFile" (printf "/etc/kubesvc/rest-tls/%s" .) -}}
{{- if ne (lower $.Values.restTLS.clientAuth) "none" -}}
{{- $_ := set $ssl "trust-certificate" (printf "/etc/kubesvc/rest-tls/%s" .) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $server "ssl" $ssl -}}
{{- $_ := set $kubesvc "peerTls" $peer -}}
{{- end -}}
{{- with .Values.dynamicAccounts.encryptionKeySecret -}}
{{- $_ := set $kubesvc "dynamicAccounts" (dict "encryptionKeyFile" (printf "/etc/kubesvc/dynamic/%s" $.Values.dynamicAccounts.encryptionKeyKey)) -}}
{{- end -}}
{{- $managed := dict "server" $server "kubesvc" $kubesvc -}}
{{- if $sql -}}
{{- $_ := set $managed "sql" $sql -}}
{{- end -}}
{{- $hints := list
  (list "config.server.port" "use service.httpPort (the container listens on 7002)")
  (list "config.kubesvc.grpc.server.port" "use service.grpcPort (the container listens on 9091)")
  (list "config.kubesvc.grpc.server.security" "use grpcTLS.secretName and grpcTLS.clientAuth")
  (list "config.server.ssl" "use restTLS.secretName, restTLS.clientAuth and restTLS.caKey")
  (list "config.kubesvc.peerTls" "use restTLS.peerServerName and restTLS.caKey")
  (list "config.sql.path" "the SQLite file lives in the chart's data volume: use persistence")
  (list "config.sql.dsnFile" "use sql.dsnSecret and sql.dsnKey")
  (list "config.kubesvc.cluster" "replicaCount > 1 turns on peer discovery through the chart's Service")
  (list "config.kubesvc.cluster-kubernetes" "replicaCount > 1 turns on peer discovery through the chart's Service")
  (list "config.kubesvc.peerSecretFile" "use peerSecret.existingSecret")
  (list "config.kubesvc.dynamicAccounts.encryptionKeyFile" "use dynamicAccounts.encryptionKeySecret and dynamicAccounts.encryptionKeyKey")
-}}
{{- include "kubesvc-controlplane.refuseManaged" (dict "managed" $managed "user" $cfg "path" "config" "hints" $hints) -}}
{{- toYaml (mergeOverwrite $cfg $managed) -}}
{{- end -}}
