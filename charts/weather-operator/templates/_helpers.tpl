{{/* The name of every object: the release name when it contains the chart's name (so release
"weather-operator" gives the kustomize base's names), else "<release>-weather-operator". */}}
{{- define "weather-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "weather-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "weather-operator.labels" -}}
{{ include "weather-operator.selectorLabels" . }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: weather-proxy-fleet
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "weather-operator.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "weather-operator.fullname" .) -}}
{{- end -}}

{{- define "weather-operator.peeringName" -}}
{{- .Values.peering.name | default (include "weather-operator.fullname" .) -}}
{{- end -}}
