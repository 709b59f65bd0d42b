{{- define "glue-sync.environment" -}}
{{- required "environment is required: the glue environment this release pulls and deploys (dev, staging, prod)" .Values.environment -}}
{{- end -}}

{{- define "glue-sync.remote" -}}
{{- required "remote is required: the deployment repository (ssh://..., git@host:path or https://...)" .Values.remote -}}
{{- end -}}

{{- define "glue-sync.namespaces" -}}
{{- if not .Values.rbac.namespaces -}}
{{- fail "rbac.namespaces is required: the namespaces the environment's releases deploy into (the ServiceAccount may change nothing else)" -}}
{{- end -}}
{{- toJson .Values.rbac.namespaces -}}
{{- end -}}

{{- define "glue-sync.recordNamespace" -}}
{{- .Values.rbac.recordNamespace | default (first .Values.rbac.namespaces) -}}
{{- end -}}

{{- define "glue-sync.ssh" -}}
{{- $url := include "glue-sync.remote" . -}}
{{- if or (hasPrefix "ssh://" $url) (regexMatch "^[^/:@]+@[^/:]+:" $url) -}}true{{- end -}}
{{- end -}}

{{- define "glue-sync.name" -}}
{{- printf "%s-glue-sync" .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "glue-sync.labels" -}}
app.kubernetes.io/name: glue-sync
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "glue-sync-%s" .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "glue-sync.selector" -}}
app.kubernetes.io/name: glue-sync
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The pod: `glue sync` as the image's non-root user on a read-only root. Call with (dict "root" $ "args" list). */}}
{{- define "glue-sync.pod" -}}
{{- $ := .root -}}
{{- $v := $.Values -}}
serviceAccountName: {{ include "glue-sync.name" $ }}
securityContext:
  {{- toYaml $v.podSecurityContext | nindent 2 }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: glue-sync
    image: "{{ $v.image.repository }}:{{ $v.image.tag }}"
    imagePullPolicy: {{ $v.image.pullPolicy }}
    command: ["glue"]
    args:
      {{- toYaml .args | nindent 6 }}
    env:
      - name: GLUE_ENV
        value: {{ include "glue-sync.environment" $ | quote }}
      - name: GLUE_REMOTE
        value: {{ include "glue-sync.remote" $ | quote }}
      - name: GLUE_BRANCH
        value: {{ $v.branch | quote }}
      - name: GLUE_SYNC_WORK_DIR
        value: /tmp/glue/work
      - name: GLUE_RECORD_NAMESPACE
        value: {{ include "glue-sync.recordNamespace" $ | quote }}
      - name: HOME
        value: /tmp
      - name: TMPDIR
        value: /tmp
      {{- if include "glue-sync.ssh" $ }}
      - name: GLUE_SSH_KEY_FILE
        value: /etc/glue/deploy-key/key
      - name: GLUE_SSH_KNOWN_HOSTS
        value: {{ required "knownHosts is required with an SSH remote: the git server's known_hosts lines (its host key is checked)" $v.knownHosts | quote }}
      {{- end }}
      {{- with $v.tokenSecret.name }}
      - name: GLUE_GIT_USERNAME
        value: {{ $v.tokenSecret.username | quote }}
      - name: GLUE_GIT_TOKEN
        valueFrom:
          secretKeyRef:
            name: {{ . | quote }}
            key: {{ $v.tokenSecret.key | quote }}
      {{- end }}
      {{- with $v.slackSecret.name }}
      {{- with $v.channel }}
      - name: SLACK_CHANNEL
        value: {{ . | quote }}
      {{- end }}
      - name: SLACK_WEBHOOK_URL
        valueFrom:
          secretKeyRef:
            name: {{ . | quote }}
            key: {{ $v.slackSecret.webhookUrlKey | quote }}
            optional: true
      - name: SLACK_BOT_TOKEN
        valueFrom:
          secretKeyRef:
            name: {{ . | quote }}
            key: {{ $v.slackSecret.botTokenKey | quote }}
            optional: true
      {{- end }}
    resources:
      {{- toYaml $v.resources | nindent 6 }}
    securityContext:
      {{- toYaml $v.securityContext | nindent 6 }}
    {{- if eq $v.mode "deployment" }}
    readinessProbe:
      exec:
        command: ["test", "-f", "/tmp/glue/health/ok"]
      periodSeconds: 10
    livenessProbe:
      exec:
        command: ["test", "-f", "/tmp/glue/health/ok"]
      {{- toYaml $v.livenessProbe | nindent 6 }}
    {{- end }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
      {{- if include "glue-sync.ssh" $ }}
      - name: deploy-key
        mountPath: /etc/glue/deploy-key
        readOnly: true
      {{- end }}
volumes:
  - name: tmp
    emptyDir: {}
  {{- if include "glue-sync.ssh" $ }}
  - name: deploy-key
    secret:
      secretName: {{ required "deployKey.secretName is required with an SSH remote: a Secret with the read-only deploy key" $v.deployKey.secretName | quote }}
      defaultMode: 0400
      items:
        - key: {{ $v.deployKey.key | quote }}
          path: key
  {{- end }}
{{- end -}}
