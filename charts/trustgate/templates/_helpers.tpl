{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "trustgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: the release name, plus the chart name unless it contains it. */}}
{{- define "trustgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "trustgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "trustgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "trustgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "trustgate.labels" -}}
helm.sh/chart: {{ include "trustgate.chart" . }}
{{ include "trustgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: admission-webhook
app.kubernetes.io/part-of: trustgate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "trustgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "trustgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "trustgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Name of the kubernetes.io/tls Secret holding the serving certificate. */}}
{{- define "trustgate.tlsSecretName" -}}
{{- if eq .Values.certs.mode "external" }}
{{- required "certs.external.secretName is required when certs.mode is external" .Values.certs.external.secretName }}
{{- else }}
{{- printf "%s-tls" (include "trustgate.fullname" .) }}
{{- end }}
{{- end }}

{{/* cert-manager Certificate of the serving certificate. */}}
{{- define "trustgate.certificateName" -}}
{{- printf "%s-tls" (include "trustgate.fullname" .) }}
{{- end }}

{{/* DNS names the API server may use for the Service (it uses <svc>.<ns>.svc). */}}
{{- define "trustgate.dnsNames" -}}
{{- $svc := include "trustgate.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson }}
{{- end }}

{{/*
The decision budget passed as --budget: webhook.budget when set, else timeoutSeconds - 2
(whole seconds, so trustgate answers well before the API server's timeout).
*/}}
{{- define "trustgate.budget" -}}
{{- $t := int .Values.webhook.timeoutSeconds }}
{{- if .Values.webhook.budget }}
{{- .Values.webhook.budget }}
{{- else if ge $t 3 }}
{{- printf "%ds" (sub $t 2) }}
{{- else if eq $t 2 }}
{{- print "1s" }}
{{- else }}
{{- fail "webhook.timeoutSeconds 1 leaves no decision budget: set webhook.budget (below 1s) explicitly" }}
{{- end }}
{{- end }}

{{/* The --extra-kind argument of one extraKinds entry. */}}
{{- define "trustgate.extraKindArg" -}}
{{- printf "%s/%s=%s" .apiGroup .kind .podSpecPath }}
{{- end }}

{{/* Namespaces the webhook never checks. */}}
{{- define "trustgate.excludedNamespaces" -}}
{{- $ns := list "kube-system" .Release.Namespace }}
{{- range .Values.webhook.excludeNamespaces }}
{{- $ns = append $ns . }}
{{- end }}
{{- $ns | uniq | toJson }}
{{- end }}
