{{- define "app.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "app.labels" -}}
app.kubernetes.io/name: {{ include "app.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "app.selectorLabels" -}}
app.kubernetes.io/name: {{ include "app.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* ---- glue notify hooks (templates/glue-notify-*.yaml, docs/hooks.md) ---- */}}

{{- define "app.notify.environment" -}}
{{- required "notify.environment is required when notify.enabled is true: the glue environment name (dev, staging, prod)" .Values.notify.environment -}}
{{- end -}}

{{- define "app.notify.service" -}}
{{- .Values.notify.service | default .Release.Name -}}
{{- end -}}

{{- define "app.notify.recordNamespace" -}}
{{- .Values.notify.recordNamespace | default .Release.Namespace -}}
{{- end -}}

{{- define "app.notify.name" -}}
{{- printf "%s-glue-notify" .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's deploy record, read as the "old" side by glue notify. */}}
{{- define "app.notify.recordName" -}}
{{- printf "glue-deployed-%s.%s" (include "app.notify.environment" .) .Release.Name -}}
{{- end -}}

{{/* Where the start hook keeps the Slack thread ts and the change it announced. */}}
{{- define "app.notify.stateName" -}}
{{- printf "glue-notify-%s.%s" (include "app.notify.environment" .) .Release.Name -}}
{{- end -}}

{{- define "app.notify.labels" -}}
app.kubernetes.io/name: {{ include "app.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: glue-notify
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* One hook Job running `glue notify`. Call with (dict "root" $ "phase" "..." "suffix" "..." "hooks" "..." "weight" "..."). */}}
{{- define "app.notify.job" -}}
{{- $ := .root -}}
{{- $n := $.Values.notify -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ printf "%s-%s" (include "app.notify.name" $) .suffix }}
  labels:
    {{- include "app.notify.labels" $ | nindent 4 }}
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
        {{- include "app.notify.labels" $ | nindent 8 }}
    spec:
      serviceAccountName: {{ include "app.notify.name" $ }}
      restartPolicy: Never
      securityContext:
        {{- toYaml $n.podSecurityContext | nindent 8 }}
      containers:
        - name: glue-notify
          image: "{{ $n.image.repository }}:{{ $n.image.tag }}"
          imagePullPolicy: {{ $n.image.pullPolicy }}
          command: ["glue"]
          args: ["notify", "--phase", {{ .phase | quote }}, "--best-effort"]
          env:
            - name: GLUE_ENV
              value: {{ include "app.notify.environment" $ | quote }}
            - name: GLUE_RECORD_NAMESPACE
              value: {{ include "app.notify.recordNamespace" $ | quote }}
            - name: GLUE_NOTIFY_SERVICE
              value: {{ include "app.notify.service" $ | quote }}
            - name: GLUE_NOTIFY_RELEASE
              value: {{ $.Release.Name | quote }}
            - name: GLUE_NOTIFY_TAG
              value: {{ required "image.tag is required" $.Values.image.tag | quote }}
            - name: GLUE_NOTIFY_REVISION
              value: {{ $.Values.revision | default "" | quote }}
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
                  name: {{ required "notify.slackSecret.name is required when notify.enabled is true: the name of a Secret (in the release's namespace) with the key webhook-url (an incoming webhook URL) or bot-token (a bot token; set notify.channel too)" $n.slackSecret.name | quote }}
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
