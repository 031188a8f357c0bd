{{/* Names: at most 63 characters (DNS labels), as Kubernetes requires of many of them. */}}
{{- define "kubetune.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<chart>, or just <release> when it already contains the chart name. */}}
{{- define "kubetune.fullname" -}}
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

{{/* A name derived from the full name with a suffix, still at most 63 characters. */}}
{{- define "kubetune.suffixed" -}}
{{- $suffix := index . 1 }}
{{- printf "%s-%s" (include "kubetune.fullname" (index . 0) | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix }}
{{- end }}

{{- define "kubetune.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubetune.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubetune.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The standard labels but app.kubernetes.io/component, which each object sets. */}}
{{- define "kubetune.commonLabels" -}}
helm.sh/chart: {{ include "kubetune.chart" . }}
app.kubernetes.io/name: {{ include "kubetune.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubetune
{{- end }}

{{/* The labels of the operator's objects. */}}
{{- define "kubetune.labels" -}}
{{ include "kubetune.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The labels of the helm test's objects (never matched by the operator's selector). */}}
{{- define "kubetune.testLabels" -}}
{{ include "kubetune.commonLabels" . }}
app.kubernetes.io/component: helm-test
{{- end }}

{{- define "kubetune.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kubetune.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kubetune.image" -}}
{{- $repository := required "image.repository must name the operator image (built by hack/build-operator-image.sh)" .Values.image.repository }}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The image of the helm test pod and of its trials: the operator image unless set. */}}
{{- define "kubetune.testImage" -}}
{{- if .Values.test.image.repository }}
{{- printf "%s:%s" .Values.test.image.repository (default "latest" .Values.test.image.tag) }}
{{- else }}
{{- include "kubetune.image" . }}
{{- end }}
{{- end }}

{{- define "kubetune.testNamespace" -}}
{{- if .Values.test.namespace }}
{{- .Values.test.namespace }}
{{- else if .Values.watchNamespaces }}
{{- first .Values.watchNamespaces }}
{{- else }}
{{- .Release.Namespace }}
{{- end }}
{{- end }}

{{/*
The operator's permissions in a namespace it watches: exactly the calls operator/kubetune/kube and
kopf make. kopf patches the Experiments themselves (the last-handled-configuration annotation)
and their status (handler progress); no finalizer is ever added (no deletion handlers, daemons
or timers). The operator creates Trials and Jobs, patches their status (curves, stop requests,
outcomes), deletes the Jobs of stopped trials, reads pods and their logs (learning curves of
running trials, and the Stdout metrics source), and posts core v1 Events. Owner references with blockOwnerDeletion
need update on <owner>/finalizers where OwnerReferencesPermissionEnforcement is on.
*/}}
{{- define "kubetune.operatorRules" -}}
- apiGroups: [kubetune.io]
  resources: [experiments, trials]
  verbs: [get, list, watch, patch]
- apiGroups: [kubetune.io]
  resources: [trials]
  verbs: [create]
- apiGroups: [kubetune.io]
  resources: [experiments/status, trials/status]
  verbs: [patch]
- apiGroups: [kubetune.io]
  resources: [experiments/finalizers, trials/finalizers]
  verbs: [update]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- if has "JobSet" .Values.trialKinds }}
- apiGroups: [jobset.x-k8s.io]
  resources: [jobsets]
  verbs: [get, list, watch, create, delete]
{{- end }}
{{- if has "PyTorchJob" .Values.trialKinds }}
- apiGroups: [kubeflow.org]
  resources: [pytorchjobs]
  verbs: [get, list, watch, create, delete]
{{- end }}
{{- end }}

{{/* kopf's resource observer: notices CRDs being created or deleted (read-only, cluster scope). */}}
{{- define "kubetune.crdRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- end }}
