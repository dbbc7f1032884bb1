{{/*
Names and labels shared by every template.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "ferrocache.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name given to every object: fullnameOverride, else the release name
when it contains the chart name, else "<release>-<chart>". Cut to 63
characters because some fields are DNS labels.
*/}}
{{- define "ferrocache.fullname" -}}
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

{{/* "<chart>-<version>" for the helm.sh/chart label. */}}
{{- define "ferrocache.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels. The component label keeps the operator's selectors apart
from the node pods the operator creates, which may carry the same name and
instance labels.
*/}}
{{- define "ferrocache.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferrocache.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The recommended labels (app.kubernetes.io/*) every object carries. */}}
{{- define "ferrocache.labels" -}}
helm.sh/chart: {{ include "ferrocache.chart" . }}
{{ include "ferrocache.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: ferrocache
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The ServiceAccount's name. */}}
{{- define "ferrocache.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ferrocache.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator's image reference: repository with digest, else with tag (appVersion by default). */}}
{{- define "ferrocache.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The image of node pods whose RedisCluster names none: nodeImage, else the operator's own image. */}}
{{- define "ferrocache.nodeImage" -}}
{{- default (include "ferrocache.image" .) .Values.nodeImage }}
{{- end }}

{{/* The Lease name: leaderElection.leaseName, else the full name. */}}
{{- define "ferrocache.leaseName" -}}
{{- default (include "ferrocache.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}
