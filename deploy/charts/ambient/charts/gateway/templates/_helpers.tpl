{{/* The gateway's name: the Deployment's, Service's and ServiceAccount's (its identity's). */}}
{{- define "gateway.name" -}}
{{ .Values.name | default .Release.Name }}
{{- end }}

{{/* The waypoint image: <hub>/<image>:<tag>, or image as given when it names a registry. */}}
{{- define "gateway.image" -}}
{{- if contains "/" .Values.image -}}
{{ .Values.image }}
{{- else -}}
{{ .Values.hub | default .Values.global.hub }}/{{ .Values.image }}:{{ .Values.tag | default .Values.global.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{- define "gateway.labels" -}}
app.kubernetes.io/name: {{ include "gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: ambient
app.kubernetes.io/version: {{ .Values.tag | default .Values.global.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}
