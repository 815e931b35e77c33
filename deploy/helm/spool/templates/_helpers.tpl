{{/*
Names and labels.
*/}}

{{/* The chart name, truncated to a DNS label. */}}
{{- define "spool.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every resource: <release>-<chart>, or the release alone when it holds the chart name. */}}
{{- define "spool.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* chart: name-version, for the helm.sh/chart label. */}}
{{- define "spool.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The labels that select a component's pods. Arguments: dict root, component. */}}
{{- define "spool.selectorLabels" -}}
app.kubernetes.io/name: {{ include "spool.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Every label of a component's objects. Arguments: dict root, component. */}}
{{- define "spool.labels" -}}
helm.sh/chart: {{ include "spool.chart" .root }}
{{ include "spool.selectorLabels" . }}
app.kubernetes.io/part-of: spool
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{/*
The labels of a component's pods: without helm.sh/chart, so that a new
chart version alone does not roll (and drain) every pod. Arguments: dict
root, component, and pool for a worker.
*/}}
{{- define "spool.podLabels" -}}
{{ include "spool.selectorLabels" . }}
{{- with .pool }}
spool.video/pool: {{ . }}
{{- end }}
app.kubernetes.io/part-of: spool
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{- with .root.Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The labels that select one worker pool's pods. Arguments: dict root, pool (the pool's name). */}}
{{- define "spool.workerSelectorLabels" -}}
{{ include "spool.selectorLabels" (dict "root" .root "component" "worker") }}
spool.video/pool: {{ .pool }}
{{- end -}}

{{/* Every label of one worker pool's objects. Arguments: dict root, pool. */}}
{{- define "spool.workerLabels" -}}
{{ include "spool.labels" (dict "root" .root "component" "worker") }}
spool.video/pool: {{ .pool }}
{{- end -}}

{{/* The name of one pool's worker Deployment. Arguments: dict root, pool. */}}
{{- define "spool.workerName" -}}
{{- printf "%s-worker-%s" (include "spool.fullname" .root) .pool -}}
{{- end -}}

{{- define "spool.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "spool.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret the secret variables are read from. */}}
{{- define "spool.secretName" -}}
{{- default (printf "%s-secrets" (include "spool.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* An image reference. Arguments: dict root, image (a service's image values), tag (an override, may be empty). */}}
{{- define "spool.image" -}}
{{- $tag := .tag | default .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- $repo := .image.repository -}}
{{- with .root.Values.image.registry -}}
{{- $repo = printf "%s/%s" (trimSuffix "/" .) $repo -}}
{{- end -}}
{{- printf "%s:%s" $repo (toString $tag) -}}
{{- end -}}

{{/*
Values as strings. Helm reads numbers in values files as float64, which
print as 8.388608e+06; whole numbers are printed as integers.
*/}}
{{- define "spool.string" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) -}}
{{- int64 . -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end -}}

{{/*
One environment variable; nothing when the value is null or "", so that the
service's own default applies. Argument: list NAME value.
*/}}
{{- define "spool.envVar" -}}
{{- $name := index . 0 -}}
{{- $value := index . 1 -}}
{{- if not (or (kindIs "invalid" $value) (and (kindIs "string" $value) (eq $value ""))) }}
- name: {{ $name }}
  value: {{ include "spool.string" $value | quote }}
{{- end -}}
{{- end -}}

{{/* Environment variables from a map NAME: value, in name order. Argument: the map. */}}
{{- define "spool.envMap" -}}
{{- range $name, $value := . -}}
{{- include "spool.envVar" (list $name $value) -}}
{{- end -}}
{{- end -}}

{{/* One variable read from the Secret. Arguments: dict root, name, key. */}}
{{- define "spool.secretEnv" }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "spool.secretName" .root }}
      key: {{ .key }}
{{- end -}}

{{/*
The variables a service shares with the others: its identity, logging,
metrics, OpenTelemetry, NATS (as its own user), and when asked Postgres and
S3. Arguments: dict root, service (e.g. spool-dispatcher), natsUser
(spool.natsUserOf), pg (bool), s3 (bool), attrs (further OTEL resource
attributes, "k=v,..." or "").
*/}}
{{- define "spool.commonEnv" -}}
{{- $v := .root.Values -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
{{- include "spool.envVar" (list "SPOOL_LOG_LEVEL" $v.logLevel) }}
{{- include "spool.envVar" (list "SPOOL_METRICS_ADDR" (printf ":%s" (include "spool.string" $v.metrics.port))) }}
{{- include "spool.natsEnv" (dict "root" .root "user" .natsUser) }}
{{- if .pg }}
{{- include "spool.secretEnv" (dict "root" .root "name" "SPOOL_PG_DSN" "key" $v.secrets.keys.pgDsn) }}
{{- include "spool.envVar" (list "SPOOL_PG_MAX_CONNS" $v.postgres.maxConns) }}
{{- end }}
{{- if .s3 }}
{{- $user := get ($v.s3.users | default dict) (trimPrefix "spool-" .service) | default "" }}
{{- include "spool.envVar" (list "SPOOL_S3_ENDPOINT" $v.s3.endpoint) }}
{{- include "spool.envVar" (list "SPOOL_S3_ACCESS_KEY" ($user | default $v.s3.accessKey)) }}
{{- include "spool.secretEnv" (dict "root" .root "name" "SPOOL_S3_SECRET_KEY" "key" (include "spool.s3SecretKey" (dict "root" .root "service" .service))) }}
{{- include "spool.envVar" (list "SPOOL_S3_BUCKET" $v.s3.bucket) }}
{{- include "spool.envVar" (list "SPOOL_S3_REGION" $v.s3.region) }}
{{- include "spool.envVar" (list "SPOOL_S3_TLS" $v.s3.tls) }}
{{- end }}
{{- include "spool.envVar" (list "OTEL_SERVICE_NAME" .service) }}
{{- include "spool.envVar" (list "OTEL_RESOURCE_ATTRIBUTES" (printf "k8s.namespace.name=$(POD_NAMESPACE),k8s.pod.name=$(POD_NAME),k8s.node.name=$(NODE_NAME)%s" (ternary (printf ",%s" .attrs) "" (ne (.attrs | default "") "")))) }}
{{- include "spool.envVar" (list "OTEL_EXPORTER_OTLP_ENDPOINT" $v.otel.endpoint) }}
{{- if $v.otel.endpoint }}
{{- include "spool.envVar" (list "OTEL_EXPORTER_OTLP_PROTOCOL" $v.otel.protocol) }}
{{- else }}
{{- include "spool.envVar" (list "OTEL_TRACES_EXPORTER" "none") }}
{{- end }}
{{- include "spool.envVar" (list "OTEL_METRICS_EXPORTER" $v.otel.metricsExporter) }}
{{- include "spool.envMap" $v.otel.env }}
{{- end -}}

{{/*
The Secret's key of a service's S3 secret key: <secrets.keys.s3SecretKey>-<service>
when s3.users names the service, else secrets.keys.s3SecretKey. Arguments:
dict root, service (e.g. spool-worker).
*/}}
{{- define "spool.s3SecretKey" -}}
{{- $v := .root.Values -}}
{{- $svc := trimPrefix "spool-" .service -}}
{{- if get ($v.s3.users | default dict) $svc -}}
{{- printf "%s-%s" $v.secrets.keys.s3SecretKey $svc -}}
{{- else -}}
{{- $v.secrets.keys.s3SecretKey -}}
{{- end -}}
{{- end -}}

{{/* Pod annotations: Prometheus scraping and the checksums of the chart's
Secret, the catalog and the pod's NATS password. Arguments: dict root,
natsUser (spool.natsUserOf). */}}
{{- define "spool.podAnnotations" -}}
{{- $v := .root.Values -}}
{{- if $v.metrics.scrapeAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ include "spool.string" $v.metrics.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- if not $v.secrets.existingSecret }}
checksum/secret: {{ toJson $v.secrets | sha256sum }}
{{- end }}
{{- if $v.catalog }}
checksum/catalog: {{ $v.catalog | sha256sum }}
{{- end }}
{{- include "spool.natsAnnotations" (dict "root" .root "user" .natsUser) }}
{{- with $v.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The metrics container port. Argument: root. */}}
{{- define "spool.metricsPort" -}}
- name: metrics
  containerPort: {{ include "spool.string" .Values.metrics.port }}
  protocol: TCP
{{- end -}}

{{/* The pools a service serves, each declared with the models of its
workerPools entry, "pool:model,model;pool:model" (SPOOL_*_POOLS): its own
list of names, else every one of workerPools. Arguments: dict root, pools. */}}
{{- define "spool.poolList" -}}
{{- $decls := list -}}
{{- range .root.Values.workerPools -}}
{{- if or (not $.pools) (has .name $.pools) -}}
{{- $decls = append $decls (printf "%s:%s" .name (join "," .models)) -}}
{{- end -}}
{{- end -}}
{{- join ";" $decls -}}
{{- end -}}

{{/* The names of workerPools, comma-separated. Argument: root. */}}
{{- define "spool.poolNames" -}}
{{- $names := list -}}
{{- range .Values.workerPools -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- join "," $names -}}
{{- end -}}

{{/* SPOOL_CATALOG, the volume and the mount of the catalog ConfigMap, when
the values give a catalog. Argument: root. */}}
{{- define "spool.catalogEnv" -}}
{{- if .Values.catalog }}
{{- include "spool.envVar" (list "SPOOL_CATALOG" "/etc/spool/catalog/catalog.yaml") }}
{{- end }}
{{- end -}}

{{- define "spool.catalogVolume" -}}
{{- if .Values.catalog }}
- name: catalog
  configMap:
    name: {{ include "spool.fullname" . }}-catalog
{{- end }}
{{- end -}}

{{- define "spool.catalogMount" -}}
{{- if .Values.catalog }}
- name: catalog
  mountPath: /etc/spool/catalog
  readOnly: true
{{- end }}
{{- end -}}

{{/* The model volume of a worker pool: one folder per catalog model name,
mounted read-only at spool.modelsDir, which SPOOL_WORKER_MODELS_DIR names.
Argument: the pool. */}}
{{- define "spool.modelsDir" -}}
/models
{{- end -}}

{{- define "spool.modelsEnv" -}}
{{- if .modelVolume }}
{{- include "spool.envVar" (list "SPOOL_WORKER_MODELS_DIR" (include "spool.modelsDir" .)) }}
{{- end }}
{{- end -}}

{{- define "spool.modelsVolume" -}}
{{- with .modelVolume }}
- name: models
{{- if .claimName }}
  persistentVolumeClaim:
    claimName: {{ .claimName | quote }}
    readOnly: true
{{- else }}
  hostPath:
    path: {{ .hostPath | quote }}
    type: Directory
{{- end }}
{{- end }}
{{- end -}}

{{- define "spool.modelsMount" -}}
{{- if .modelVolume }}
- name: models
  mountPath: {{ include "spool.modelsDir" . }}
  readOnly: true
{{- end }}
{{- end -}}
