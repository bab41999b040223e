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

{{/* The operator's image and the proxy pods' default one: both from image.registry and image.tag
unless image.repository / proxyImage.* name others (`make push REGISTRY=... TAG=...` pushes
REGISTRY/operator:TAG and REGISTRY/proxy:TAG). */}}
{{- define "weather-operator.image" -}}
{{- $repository := .Values.image.repository | default (printf "%s/operator" (trimSuffix "/" .Values.image.registry)) -}}
{{- printf "%s:%s" $repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "weather-operator.proxyImage" -}}
{{- $repository := .Values.proxyImage.repository | default (printf "%s/proxy" (trimSuffix "/" .Values.image.registry)) -}}
{{- printf "%s:%s" $repository (.Values.proxyImage.tag | default .Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "weather-operator.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "weather-operator.fullname" .) -}}
{{- end -}}

{{- define "weather-operator.peeringName" -}}
{{- .Values.peering.name | default (include "weather-operator.fullname" .) -}}
{{- end -}}
