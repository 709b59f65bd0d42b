{{/* The values key the parent chart uses for this chart (its alias or "glue-hooks"). */}}
{{- define "glue-hooks.key" -}}
{{- .Chart.Name -}}
{{- end -}}

{{- define "glue-hooks.environment" -}}
{{- required (printf "%s.environment is required when %s.enabled is true: the glue environment name (dev, staging, prod)" (include "glue-hooks.key" .) (include "glue-hooks.key" .)) .Values.environment -}}
{{- end -}}

{{- define "glue-hooks.tag" -}}
{{- required (printf "%s.tag is required when %s.enabled is true: the image tag this release deploys (the same value as the chart's image tag)" (include "glue-hooks.key" .) (include "glue-hooks.key" .)) (toString .Values.tag) -}}
{{- end -}}

{{- define "glue-hooks.slackSecret" -}}
{{- required (printf "%s.slackSecret.name is required when %s.enabled is true: the name of a Secret (in the release's namespace) with the key webhook-url (an incoming webhook URL) or bot-token (a bot token; set %s.channel too)" (include "glue-hooks.key" .) (include "glue-hooks.key" .) (include "glue-hooks.key" .)) .Values.slackSecret.name -}}
{{- end -}}

{{- define "glue-hooks.service" -}}
{{- .Values.service | default .Release.Name -}}
{{- end -}}

{{- define "glue-hooks.recordNamespace" -}}
{{- .Values.recordNamespace | default .Release.Namespace -}}
{{- end -}}

{{- define "glue-hooks.name" -}}
{{- printf "%s-glue-notify" .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's deploy record, read as the "old" side by glue notify. */}}
{{- define "glue-hooks.recordName" -}}
{{- printf "glue-deployed-%s.%s" (include "glue-hooks.environment" .) .Release.Name -}}
{{- end -}}

{{/* Where the start hook keeps the Slack thread ts and the change it announced. */}}
{{- define "glue-hooks.stateName" -}}
{{- printf "glue-notify-%s.%s" (include "glue-hooks.environment" .) .Release.Name -}}
{{- end -}}

{{- define "glue-hooks.labels" -}}
app.kubernetes.io/name: glue-notify
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: glue-notify
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "glue-hooks-%s" .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
Hook annotations. "setup": created before the start Job of each install/upgrade
(and rollback, for the RBAC), replaced by the next one. "sweep": the same
object again as a pre-delete hook that Helm deletes once the uninstall's hooks
succeeded: Helm never deletes hook objects with the release, so this is how
`helm uninstall` removes the setup objects (docs/hooks.md).
*/}}
{{- define "glue-hooks.hook" -}}
{{- if eq .mode "sweep" -}}
"helm.sh/hook": pre-delete
"helm.sh/hook-weight": "-10"
"helm.sh/hook-delete-policy": before-hook-creation,hook-succeeded
{{- else -}}
"helm.sh/hook": {{ .events }}
"helm.sh/hook-weight": "-10"
"helm.sh/hook-delete-policy": before-hook-creation
{{- end -}}
{{- end -}}

{{/* The hook identity: ServiceAccount, Role, RoleBinding. Call with (dict "root" $ "mode" "setup"|"sweep"). */}}
{{- define "glue-hooks.rbac" -}}
{{- $ := .root -}}
{{- $hook := include "glue-hooks.hook" (dict "mode" .mode "events" "pre-install,pre-upgrade,pre-rollback") -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "glue-hooks.name" $ }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "glue-hooks.labels" $ | nindent 4 }}
  annotations:
    {{- $hook | nindent 4 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ include "glue-hooks.name" $ }}
  namespace: {{ include "glue-hooks.recordNamespace" $ }}
  labels:
    {{- include "glue-hooks.labels" $ | nindent 4 }}
  annotations:
    {{- $hook | nindent 4 }}
rules:
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [get]
    resourceNames:
      - {{ printf "glue-deployed-%s" (include "glue-hooks.environment" $) | quote }}
      - {{ include "glue-hooks.recordName" $ | quote }}
      - {{ include "glue-hooks.stateName" $ | quote }}
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [update]
    resourceNames:
      - {{ include "glue-hooks.stateName" $ | quote }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ include "glue-hooks.name" $ }}
  namespace: {{ include "glue-hooks.recordNamespace" $ }}
  labels:
    {{- include "glue-hooks.labels" $ | nindent 4 }}
  annotations:
    {{- $hook | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ include "glue-hooks.name" $ }}
subjects:
  - kind: ServiceAccount
    name: {{ include "glue-hooks.name" $ }}
    namespace: {{ $.Release.Namespace }}
{{- end -}}

{{/* The start -> finish state, empty. Call with (dict "root" $ "mode" "setup"|"sweep"). */}}
{{- define "glue-hooks.state" -}}
{{- $ := .root -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "glue-hooks.stateName" $ }}
  namespace: {{ include "glue-hooks.recordNamespace" $ }}
  labels:
    {{- include "glue-hooks.labels" $ | nindent 4 }}
    gitops-glue.dev/kind: notify-state
  annotations:
    {{- include "glue-hooks.hook" (dict "mode" .mode "events" "pre-install,pre-upgrade") | nindent 4 }}
{{- end -}}

{{/* One hook Job running `glue notify`. Call with (dict "root" $ "phase" "..." "suffix" "..." "hooks" "..." "weight" "..."). */}}
{{- define "glue-hooks.job" -}}
{{- $ := .root -}}
{{- $n := $.Values -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ printf "%s-%s" (include "glue-hooks.name" $) .suffix }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "glue-hooks.labels" $ | nindent 4 }}
  annotations:
    "helm.sh/hook": {{ .hooks }}
    "helm.sh/hook-weight": {{ .weight | quote }}
    "helm.sh/hook-delete-policy": before-hook-creation,hook-succeeded
spec:
  backoffLimit: 0
  activeDeadlineSeconds: {{ $n.activeDeadlineSeconds | int }}
  ttlSecondsAfterFinished: 600
  template:
    metadata:
      labels:
        {{- include "glue-hooks.labels" $ | nindent 8 }}
    spec:
      serviceAccountName: {{ include "glue-hooks.name" $ }}
      restartPolicy: Never
      securityContext:
        {{- toYaml $n.podSecurityContext | nindent 8 }}
      {{- with $n.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $n.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: glue-notify
          image: "{{ $n.image.repository }}:{{ $n.image.tag }}"
          imagePullPolicy: {{ $n.image.pullPolicy }}
          command: ["glue"]
          args: ["notify", "--phase", {{ .phase | quote }}, "--best-effort"]
          env:
            - name: GLUE_ENV
              value: {{ include "glue-hooks.environment" $ | quote }}
            - name: GLUE_RECORD_NAMESPACE
              value: {{ include "glue-hooks.recordNamespace" $ | quote }}
            - name: GLUE_NOTIFY_SERVICE
              value: {{ include "glue-hooks.service" $ | quote }}
            - name: GLUE_NOTIFY_RELEASE
              value: {{ $.Release.Name | quote }}
            - name: GLUE_NOTIFY_TAG
              value: {{ include "glue-hooks.tag" $ | quote }}
            - name: GLUE_NOTIFY_REVISION
              value: {{ $n.revision | default "" | toString | quote }}
            - name: GLUE_NOTIFY_SOURCE_REPO
              value: {{ $n.sourceRepo | default "" | quote }}
            - name: GLUE_NOTIFY_THREAD
              value: {{ $n.thread | default "reply" | quote }}
            - name: GLUE_QUIET_WHEN_UNCHANGED
              value: {{ ternary "true" "false" (eq (toString $n.quietWhenUnchanged) "true") | quote }}
            {{- with $n.pipelineUrl }}
            - name: GLUE_PIPELINE_URL
              value: {{ . | quote }}
            {{- end }}
            {{- with $n.actor }}
            - name: GLUE_ACTOR
              value: {{ . | quote }}
            {{- end }}
            {{- with $n.channel }}
            - name: SLACK_CHANNEL
              value: {{ . | quote }}
            {{- end }}
            - name: SLACK_WEBHOOK_URL
              valueFrom:
                secretKeyRef:
                  name: {{ include "glue-hooks.slackSecret" $ | quote }}
                  key: {{ $n.slackSecret.webhookUrlKey | quote }}
                  optional: true
            - name: SLACK_BOT_TOKEN
              valueFrom:
                secretKeyRef:
                  name: {{ $n.slackSecret.name | quote }}
                  key: {{ $n.slackSecret.botTokenKey | quote }}
                  optional: true
          resources:
            {{- toYaml $n.resources | nindent 12 }}
          securityContext:
            {{- toYaml $n.securityContext | nindent 12 }}
{{- end -}}
