{{/*
spool.validate fails the render on values that would deploy a broken
system, naming the value and what it must be. Every template that renders
pools includes it; the first failure stops the render.
*/}}
{{- define "spool.validate" -}}
{{- $v := .Values -}}
{{- $seen := dict -}}
{{- $margin := $v.worker.drainMarginSeconds -}}
{{- if or (kindIs "invalid" $margin) (le (float64 $margin) 0.0) -}}
{{- fail (printf "worker.drainMarginSeconds must be > 0 so that terminationGracePeriodSeconds is above the drain timeout; got %v" $margin) -}}
{{- end -}}
{{- range $i, $p := $v.workerPools -}}
{{- $where := printf "workerPools[%d]" $i -}}
{{- if not (kindIs "map" $p) -}}
{{- fail (printf "%s must be a map with at least name, gpuProduct, maxReplicas and longestSegmentSeconds" $where) -}}
{{- end -}}
{{- $name := $p.name | default "" | toString -}}
{{- if not $name -}}
{{- fail (printf "%s.name is required" $where) -}}
{{- end -}}
{{- $where = printf "workerPools[%d] (%q)" $i $name -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $name) -}}
{{- fail (printf "%s: the pool name must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit), as it names the Deployment, the label spool.video/pool, the subject spool.segments.<pool> and the consumer pool-<pool>" $where) -}}
{{- end -}}
{{- $deployment := include "spool.workerName" (dict "root" $ "pool" $name) -}}
{{- if gt (len $deployment) 63 -}}
{{- fail (printf "%s: the worker Deployment name %q is %d characters, over 63; shorten the pool name or the release name (or set fullnameOverride)" $where $deployment (len $deployment)) -}}
{{- end -}}
{{- if hasKey $seen $name -}}
{{- fail (printf "%s: duplicate pool name; workerPools[%d] has the same name, and pool names must be unique" $where (get $seen $name)) -}}
{{- end -}}
{{- $_ := set $seen $name $i -}}
{{- if or (not (kindIs "slice" $p.models)) (not $p.models) -}}
{{- fail (printf "%s.models is required: the catalog models the pool serves, e.g. [skyreels-v2-df-14b-720p]; every worker of the pool loads them all, and jobs of these models are routed to it" $where) -}}
{{- end -}}
{{- if not $p.gpuProduct -}}
{{- fail (printf "%s.gpuProduct is required: the node label nvidia.com/gpu.product of the pool's GPUs, e.g. NVIDIA-H100-80GB-HBM3" $where) -}}
{{- end -}}
{{- if and (hasKey $p "gpusPerPod") (lt (int64 $p.gpusPerPod) 1) -}}
{{- fail (printf "%s.gpusPerPod must be ≥ 1; got %v" $where $p.gpusPerPod) -}}
{{- end -}}
{{- if or (not (hasKey $p "longestSegmentSeconds")) (lt (int64 $p.longestSegmentSeconds) 1) -}}
{{- fail (printf "%s.longestSegmentSeconds is required and must be ≥ 1: the longest a segment runs on this pool, the worker's drain timeout" $where) -}}
{{- end -}}
{{- $min := int64 ($p.minReplicas | default 0) -}}
{{- if lt $min 0 -}}
{{- fail (printf "%s.minReplicas must be ≥ 0; got %d" $where $min) -}}
{{- end -}}
{{- if or (not (hasKey $p "maxReplicas")) (lt (int64 $p.maxReplicas) 1) (lt (int64 $p.maxReplicas) $min) -}}
{{- fail (printf "%s.maxReplicas is required, ≥ 1 and ≥ minReplicas (%d)" $where $min) -}}
{{- end -}}
{{- if $p.modelVolume -}}
{{- $dir := include "spool.modelsDir" $p -}}
{{- range (hasKey $p "volumes" | ternary $p.volumes $v.worker.volumes | default list) -}}
{{- if and (kindIs "map" .) (eq (toString .name) "models") -}}
{{- fail (printf "%s: a volume is named models, the name of the pool's modelVolume; rename it" $where) -}}
{{- end -}}
{{- end -}}
{{- range (hasKey $p "volumeMounts" | ternary $p.volumeMounts $v.worker.volumeMounts | default list) -}}
{{- if and (kindIs "map" .) (eq (clean (toString .mountPath)) $dir) -}}
{{- fail (printf "%s: volumeMounts mounts %s at %s, where the pool's modelVolume is mounted; move it" $where (toString .name) $dir) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (hasKey $p "lagThreshold") (lt (int64 $p.lagThreshold) 1) -}}
{{- fail (printf "%s.lagThreshold must be ≥ 1; got %v" $where $p.lagThreshold) -}}
{{- end -}}
{{- end -}}
{{- range $svc := list "dispatcher" "gateway" -}}
{{- range (index $v $svc).pools -}}
{{- if not (has . (include "spool.poolNames" $ | splitList ",")) -}}
{{- fail (printf "%s.pools: pool %q is not in workerPools, where the models it serves are declared" $svc .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- with $v.dispatcher.pools -}}
{{- range $v.workerPools -}}
{{- if not (has .name $v.dispatcher.pools) -}}
{{- fail (printf "workerPools: pool %q is missing from dispatcher.pools %v; no dispatcher would feed its consumer pool-%s (leave dispatcher.pools empty to serve every pool)" .name $v.dispatcher.pools .name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- with $v.nats -}}
{{- if and .credsSecret .auth.enabled -}}
{{- fail "nats.credsSecret (a credentials file, for servers in operator/JWT mode) and nats.auth.enabled (the chart's NATS users and passwords) exclude each other: set nats.auth.enabled=false to connect with the credentials file" -}}
{{- end -}}
{{- $users := list "admin" "client" "dispatcher" "gateway" "stitcher" -}}
{{- range $v.workerPools -}}
{{- $users = append $users (printf "worker@%s" .name) -}}
{{- end -}}
{{- range $user, $secret := .auth.existingSecrets -}}
{{- if not (has $user $users) -}}
{{- fail (printf "nats.auth.existingSecrets: no NATS user %q; the users are %s" $user (join ", " $users)) -}}
{{- end -}}
{{- if not $secret -}}
{{- fail (printf "nats.auth.existingSecrets[%q]: name the Secret (with key password)" $user) -}}
{{- end -}}
{{- end -}}
{{- if and .auth.existingSecrets (not .auth.enabled) -}}
{{- fail "nats.auth.existingSecrets needs nats.auth.enabled" -}}
{{- end -}}
{{- if and (not .tls.enabled) (or .tls.caSecret .tls.clientSecret) -}}
{{- fail "nats.tls.caSecret and nats.tls.clientSecret need nats.tls.enabled=true" -}}
{{- end -}}
{{- end -}}
{{- if and (not $v.secrets.existingSecret) (not $v.secrets.pgDsn) -}}
{{- fail "secrets.pgDsn is required when secrets.existingSecret is empty" -}}
{{- end -}}
{{- end -}}
