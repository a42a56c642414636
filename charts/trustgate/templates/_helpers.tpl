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

{{/*
Labels of the hook Jobs, their Pods and the test Pod: without app.kubernetes.io/name, so that
the Service, the PodDisruptionBudget and the spread constraints never select them. Include with
(dict "root" $ "component" "webhook-registration").
*/}}
{{- define "trustgate.hookLabels" -}}
helm.sh/chart: {{ include "trustgate.chart" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: trustgate
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
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

{{/*
Namespaces the webhook never checks, whatever their labels: kube-system, the release namespace
(so trustgate can always start itself), cert-manager's namespace in certManager mode (trustgate's
certificate depends on it), and webhook.excludeNamespaces.
*/}}
{{- define "trustgate.excludedNamespaces" -}}
{{- $ns := list "kube-system" .Release.Namespace }}
{{- if eq .Values.certs.mode "certManager" }}
{{- $ns = append $ns .Values.certs.certManager.namespace }}
{{- end }}
{{- range .Values.webhook.excludeNamespaces }}
{{- $ns = append $ns . }}
{{- end }}
{{- $ns | uniq | toJson }}
{{- end }}

{{/*
Webhook settings shared by the validating and the mutating webhook, so both check exactly the
same objects with the same failure behaviour. Each renders YAML keys at the indentation of a
webhook entry (use with nindent 4 inside `webhooks:`).
*/}}

{{/* Name of the ValidatingWebhookConfiguration (and of the MutatingWebhookConfiguration). */}}
{{- define "trustgate.webhookConfigurationName" -}}
{{- include "trustgate.fullname" . }}
{{- end }}

{{/*
namespaceSelector. OptIn (default): only namespaces labelled <enforceLabel>=true are checked.
OptOut: every namespace except those labelled <optOutLabel>=true. Both: never the excluded
namespaces, and ANDed with webhook.namespaceSelector.
*/}}
{{- define "trustgate.webhook.namespaceSelector" -}}
namespaceSelector:
  {{- with .Values.webhook.namespaceSelector.matchLabels }}
  matchLabels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: {{ include "trustgate.excludedNamespaces" . }}
    {{- if eq .Values.webhook.enforcement "OptIn" }}
    - key: {{ .Values.webhook.enforceLabel }}
      operator: In
      values: ["true"]
    {{- else }}
    - key: {{ .Values.webhook.optOutLabel }}
      operator: NotIn
      values: ["true"]
    {{- end }}
    {{- with .Values.webhook.namespaceSelector.matchExpressions }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/* objectSelector (default: every object). */}}
{{- define "trustgate.webhook.objectSelector" -}}
{{- with .Values.webhook.objectSelector }}
objectSelector:
  {{- toYaml . | nindent 2 }}
{{- else }}
objectSelector: {}
{{- end }}
{{- end }}

{{/* CEL matchConditions (Kubernetes >= 1.30), e.g. to skip requests of a break-glass group. */}}
{{- define "trustgate.webhook.matchConditions" -}}
{{- with .Values.webhook.matchConditions }}
matchConditions:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Failure policy, timeout and the fixed protocol settings. */}}
{{- define "trustgate.webhook.policy" -}}
admissionReviewVersions: ["v1"]
sideEffects: NoneOnDryRun
failurePolicy: {{ .Values.webhook.failurePolicy }}
matchPolicy: Equivalent
timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}
{{- end }}

{{/* The workload kinds checked, on CREATE and UPDATE. */}}
{{- define "trustgate.webhook.rules" -}}
rules:
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["pods", "pods/ephemeralcontainers", "replicationcontrollers"]
    scope: Namespaced
  - apiGroups: ["apps"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["deployments", "replicasets", "statefulsets", "daemonsets"]
    scope: Namespaced
  - apiGroups: ["batch"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["jobs", "cronjobs"]
    scope: Namespaced
  {{- range .Values.extraKinds }}
  - apiGroups: [{{ .apiGroup | quote }}]
    apiVersions: [{{ .apiVersion | quote }}]
    operations: ["CREATE", "UPDATE"]
    resources: [{{ .resource | quote }}]
    scope: Namespaced
  {{- end }}
{{- end }}

{{/*
clientConfig for a path: include with (dict "root" $ "path" "/validate" "caBundle" $caBundle).
*/}}
{{- define "trustgate.webhook.clientConfig" -}}
clientConfig:
  service:
    name: {{ include "trustgate.fullname" .root }}
    namespace: {{ .root.Release.Namespace }}
    path: {{ .path }}
    port: {{ .root.Values.service.port }}
  {{- if .caBundle }}
  caBundle: {{ .caBundle }}
  {{- end }}
{{- end }}

{{/* Annotations of the webhook configurations (cert-manager's CA injection, user's). */}}
{{- define "trustgate.webhook.annotations" -}}
{{- if eq .Values.certs.mode "certManager" }}
cert-manager.io/inject-ca-from: {{ printf "%s/%s" .Release.Namespace (include "trustgate.certificateName" .) }}
{{- end }}
{{- with .Values.webhook.annotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Pod settings of the chart's hook Jobs and test Pod: they run the trustgate image itself
(`trustgate webhook ...`), as the same non-root user, in the release namespace (never checked).
*/}}
{{- define "trustgate.hookPodSpec" -}}
restartPolicy: Never
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Container settings of the hook Jobs and test Pod. */}}
{{- define "trustgate.hookContainer" -}}
image: {{ include "trustgate.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
{{- with .Values.securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.hooks.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
A volume named `ca` holding only `ca.crt`, the CA of the serving certificate: from the
`<fullname>-ca` ConfigMap when the chart knows it (generate, external), else from the TLS Secret
that cert-manager writes (its key is not projected).
*/}}
{{- define "trustgate.caVolume" -}}
- name: ca
  {{- if eq .Values.certs.mode "certManager" }}
  secret:
    secretName: {{ include "trustgate.tlsSecretName" . }}
    optional: true
    items:
      - key: ca.crt
        path: ca.crt
  {{- else }}
  configMap:
    name: {{ include "trustgate.fullname" . }}-ca
    items:
      - key: ca.crt
        path: ca.crt
  {{- end }}
{{- end }}
