{{- /*
The MutatingWebhookConfiguration of `/mutate` (values `mutation.*`): verified tags are pinned to
`tag@digest` before the validating webhook, the final gate, sees the object. Same name, failure
policy, timeout, selectors and annotations as the validating webhook; rules: Pods (and their
ephemeralcontainers subresource) only, unless `mutation.pinTemplates` (then every kind the
validating webhook checks). Called with (dict "root" . "caBundle" $caBundle).
*/}}
{{- define "trustgate.mutatingWebhookConfiguration" -}}
{{- $root := .root }}
{{- $fullname := include "trustgate.fullname" $root }}
{{- $mode := $root.Values.certs.mode }}
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "trustgate.labels" $root | nindent 4 }}
  {{- if or (eq $mode "certManager") $root.Values.webhook.annotations }}
  annotations:
    {{- if eq $mode "certManager" }}
    cert-manager.io/inject-ca-from: {{ printf "%s/%s" $root.Release.Namespace (include "trustgate.certificateName" $root) }}
    {{- end }}
    {{- with $root.Values.webhook.annotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
webhooks:
  - name: pin.trustgate.dev
    admissionReviewVersions: ["v1"]
    sideEffects: NoneOnDryRun
    reinvocationPolicy: IfNeeded
    failurePolicy: {{ $root.Values.webhook.failurePolicy }}
    matchPolicy: Equivalent
    timeoutSeconds: {{ $root.Values.webhook.timeoutSeconds }}
    clientConfig:
      service:
        name: {{ $fullname }}
        namespace: {{ $root.Release.Namespace }}
        path: /mutate
        port: {{ $root.Values.service.port }}
      {{- if .caBundle }}
      caBundle: {{ .caBundle }}
      {{- end }}
    {{- include "trustgate.mutate.selectors" $root | nindent 4 }}
    rules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["CREATE", "UPDATE"]
        {{- if $root.Values.mutation.pinTemplates }}
        resources: ["pods", "pods/ephemeralcontainers", "replicationcontrollers"]
        {{- else }}
        resources: ["pods", "pods/ephemeralcontainers"]
        {{- end }}
        scope: Namespaced
      {{- if $root.Values.mutation.pinTemplates }}
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
      {{- range $root.Values.extraKinds }}
      - apiGroups: [{{ .apiGroup | quote }}]
        apiVersions: [{{ .apiVersion | quote }}]
        operations: ["CREATE", "UPDATE"]
        resources: [{{ .resource | quote }}]
        scope: Namespaced
      {{- end }}
      {{- end }}
{{- end }}

{{- /*
namespaceSelector and objectSelector of the mutating webhook: the validating webhook's, so both
webhooks see the same objects. (Where the chart keeps these selectors in named templates, include
those instead.)
*/}}
{{- define "trustgate.mutate.selectors" -}}
namespaceSelector:
  {{- with .Values.webhook.namespaceSelector.matchLabels }}
  matchLabels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: {{ include "trustgate.excludedNamespaces" . }}
    - key: {{ .Values.webhook.optOutLabel }}
      operator: NotIn
      values: ["true"]
    {{- with .Values.webhook.namespaceSelector.matchExpressions }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- with .Values.webhook.objectSelector }}
objectSelector:
  {{- toYaml . | nindent 2 }}
{{- else }}
objectSelector: {}
{{- end }}
{{- end }}
