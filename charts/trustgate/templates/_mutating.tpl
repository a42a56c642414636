{{- /*
The MutatingWebhookConfiguration of `/mutate` (values `mutation.*`): verified tags are pinned to
`tag@digest` before the validating webhook, the final gate, sees the object. Same name, failure
policy, timeout, selectors, match conditions and annotations as the validating webhook (the
shared `trustgate.webhook.*` templates); rules: Pods (and their ephemeralcontainers subresource)
only, unless `mutation.pinTemplates` (then every kind the validating webhook checks).
Called with (dict "root" . "caBundle" $caBundle); registered by the post-install Job like the
validating one.
*/}}
{{- define "trustgate.mutatingWebhookConfiguration" -}}
{{- $root := .root }}
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: {{ include "trustgate.webhookConfigurationName" $root }}
  labels:
    {{- include "trustgate.labels" $root | nindent 4 }}
  {{- with include "trustgate.webhook.annotations" $root }}
  annotations:
    {{- . | nindent 4 }}
  {{- end }}
webhooks:
  - name: pin.trustgate.dev
    {{- include "trustgate.webhook.policy" $root | nindent 4 }}
    reinvocationPolicy: IfNeeded
    {{- include "trustgate.webhook.clientConfig" (dict "root" $root "path" "/mutate" "caBundle" .caBundle) | nindent 4 }}
    {{- include "trustgate.webhook.namespaceSelector" $root | nindent 4 }}
    {{- include "trustgate.webhook.objectSelector" $root | nindent 4 }}
    {{- include "trustgate.webhook.matchConditions" $root | nindent 4 }}
    {{- if $root.Values.mutation.pinTemplates }}
    {{- include "trustgate.webhook.rules" $root | nindent 4 }}
    {{- else }}
    rules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["CREATE", "UPDATE"]
        resources: ["pods", "pods/ephemeralcontainers"]
        scope: Namespaced
    {{- end }}
{{- end }}
