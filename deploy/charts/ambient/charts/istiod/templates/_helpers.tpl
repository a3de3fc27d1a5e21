{{/* The control plane's image: <hub>/<image>:<tag>, or image as given when it names a registry. */}}
{{- define "istiod.image" -}}
{{- if contains "/" .Values.image -}}
{{ .Values.image }}
{{- else -}}
{{ .Values.hub | default .Values.global.hub }}/{{ .Values.image }}:{{ .Values.tag | default .Values.global.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{- define "istiod.labels" -}}
app.kubernetes.io/name: istiod
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: ambient
app.kubernetes.io/version: {{ .Values.tag | default .Values.global.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{/* Selector labels: Istio's, so tools that look for app=istiod find it. */}}
{{- define "istiod.selector" -}}
app: istiod
istio: pilot
{{- end }}
