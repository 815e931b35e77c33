{{/*
NATS: the users of the server's authorization block, their passwords, and
what each pod needs to connect as its own user.

The users and their allow-lists come from files/nats-permissions.json,
generated from libs/bus (bus.PermissionsTemplate) and kept equal to it by
a test there: one user per role, a worker's once per workerPools entry,
named worker@<pool>, with {pool} replaced by the pool's name.
*/}}

{{/*
spool.natsAuth: every user as JSON, {"users": [{name, role, pool, secret,
existing, password, bcrypt, publish, subscribe, responses}]}, sorted by
name. A password is the one in the user's Secret in the cluster (lookup),
else 32 random characters; its hash is the one kept beside it while the
password is unchanged (so that an upgrade rewrites nothing), else a new
bcrypt. Computed once per render and kept in .Values, so that every
template sees the same random passwords. Argument: root.
*/}}
{{- define "spool.natsAuth" -}}
{{- $root := . -}}
{{- if not (hasKey .Values "__spoolNatsAuth") -}}
{{- $file := .Files.Get "files/nats-permissions.json" | fromJson -}}
{{- $existing := .Values.nats.auth.existingSecrets | default dict -}}
{{- $users := list -}}
{{- range $role := keys $file.roles | sortAlpha -}}
{{- $perms := index $file.roles $role -}}
{{- $pools := list "" -}}
{{- if eq $role "worker" -}}
{{- $pools = list -}}
{{- range $root.Values.workerPools -}}
{{- $pools = append $pools .name -}}
{{- end -}}
{{- end -}}
{{- range $pool := $pools -}}
{{- $name := $role -}}
{{- if $pool -}}
{{- $name = printf "%s@%s" $role $pool -}}
{{- end -}}
{{- $publish := list -}}
{{- range $perms.publish -}}
{{- $publish = append $publish (replace "{pool}" $pool .) -}}
{{- end -}}
{{- $subscribe := list -}}
{{- range $perms.subscribe -}}
{{- $subscribe = append $subscribe (replace "{pool}" $pool .) -}}
{{- end -}}
{{- $secret := printf "%s-nats-%s" (include "spool.fullname" $root) (replace "@" "-" $name) -}}
{{- $password := "" -}}
{{- $hash := "" -}}
{{- if hasKey $existing $name -}}
{{- $secret = index $existing $name -}}
{{- $live := lookup "v1" "Secret" $root.Release.Namespace $secret | default dict -}}
{{- $password = dig "data" "password" "" $live | b64dec -}}
{{- if not $password -}}
{{- fail (printf "nats.auth.existingSecrets[%q]: Secret %s in namespace %s has no key password, or cannot be read: the chart hashes it into the NATS server's authorization block, and helm template and --dry-run=client read no Secrets (use --dry-run=server)" $name $secret $root.Release.Namespace) -}}
{{- end -}}
{{- $hash = bcrypt $password -}}
{{- else -}}
{{- $live := lookup "v1" "Secret" $root.Release.Namespace $secret | default dict -}}
{{- $password = dig "data" "password" "" $live | b64dec -}}
{{- if $password -}}
{{- if eq (dig "data" "password.sha256" "" $live | b64dec) (sha256sum $password) -}}
{{- $hash = dig "data" "password.bcrypt" "" $live | b64dec -}}
{{- end -}}
{{- else -}}
{{- $password = randAlphaNum 32 -}}
{{- end -}}
{{- if not $hash -}}
{{- $hash = bcrypt $password -}}
{{- end -}}
{{- end -}}
{{- $users = append $users (dict "name" $name "role" $role "pool" $pool "secret" $secret "existing" (hasKey $existing $name)
  "password" $password "bcrypt" $hash "publish" $publish "subscribe" $subscribe "responses" $perms.allow_responses) -}}
{{- end -}}
{{- end -}}
{{- $_ := set .Values "__spoolNatsAuth" (dict "users" $users) -}}
{{- end -}}
{{- toJson (get .Values "__spoolNatsAuth") -}}
{{- end -}}

{{/* One user of spool.natsAuth, as JSON. Arguments: dict root, user (its name). */}}
{{- define "spool.natsUser" -}}
{{- $found := dict -}}
{{- range (include "spool.natsAuth" .root | fromJson).users -}}
{{- if eq .name $.user -}}
{{- $found = . -}}
{{- end -}}
{{- end -}}
{{- if not $found -}}
{{- fail (printf "internal: no NATS user %q" .user) -}}
{{- end -}}
{{- toJson $found -}}
{{- end -}}

{{/* The NATS user a pod connects as: role, worker@<pool> for a worker; ""
when the chart renders no users (nats.auth.enabled false). Arguments: dict
root, role, pool (a worker's). */}}
{{- define "spool.natsUserOf" -}}
{{- if .root.Values.nats.auth.enabled -}}
{{- if eq .role "worker" -}}
{{- printf "worker@%s" .pool -}}
{{- else -}}
{{- .role -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The Secret of the NATS server's authorization block. Argument: root. */}}
{{- define "spool.natsServerSecretName" -}}
{{- .Values.nats.auth.serverSecret.name | default (printf "%s-nats-server-auth" (include "spool.fullname" .)) -}}
{{- end -}}

{{/* A list of subjects as a NATS config array of quoted strings. Argument: the list. */}}
{{- define "spool.natsQuoteList" -}}
{{- $q := list -}}
{{- range . -}}
{{- $q = append $q (quote .) -}}
{{- end -}}
[{{ join ", " $q }}]
{{- end -}}

{{/*
The NATS server's authorization block, as libs/devstack renders it: every
user with its bcrypt hash and allow-lists, allow_responses where the role
answers requests. Argument: root.
*/}}
{{- define "spool.natsServerConf" -}}
authorization {
  users = [
{{- range (include "spool.natsAuth" . | fromJson).users }}
    {user: {{ quote .name }}, password: {{ quote .bcrypt }}, permissions: {publish: {allow: {{ include "spool.natsQuoteList" .publish }}}, subscribe: {allow: {{ include "spool.natsQuoteList" .subscribe }}}{{ if .responses }}, allow_responses: true{{ end }}}}
{{- end }}
  ]
}
{{- end -}}

{{/* Where a pod finds its NATS password, the TLS files and a credentials file. */}}
{{- define "spool.natsPasswordDir" -}}/etc/spool/nats-auth{{- end -}}
{{- define "spool.natsCredsDir" -}}/etc/spool/nats{{- end -}}
{{- define "spool.natsCADir" -}}/etc/spool/nats-tls/ca{{- end -}}
{{- define "spool.natsClientDir" -}}/etc/spool/nats-tls/client{{- end -}}

{{/*
The SPOOL_NATS_* variables of a pod: the URL (tls:// with nats.tls), the
ack wait and replicas, its user and password file, or the credentials
file, and the TLS files. Arguments: dict root, user (spool.natsUserOf).
*/}}
{{- define "spool.natsEnv" -}}
{{- $v := .root.Values.nats -}}
{{- $url := $v.url -}}
{{- if $v.tls.enabled -}}
{{- $url = regexReplaceAll "(^|,)\\s*nats://" $url "${1}tls://" -}}
{{- end -}}
{{- include "spool.envVar" (list "SPOOL_NATS_URL" $url) }}
{{- include "spool.envVar" (list "SPOOL_NATS_ACK_WAIT" $v.ackWait) }}
{{- include "spool.envVar" (list "SPOOL_NATS_REPLICAS" (include "spool.string" $v.replicas)) }}
{{- if .user }}
{{- include "spool.envVar" (list "SPOOL_NATS_USER" .user) }}
{{- include "spool.envVar" (list "SPOOL_NATS_PASSWORD_FILE" (printf "%s/password" (include "spool.natsPasswordDir" .))) }}
{{- end }}
{{- if $v.credsSecret }}
{{- include "spool.envVar" (list "SPOOL_NATS_CREDS" (printf "%s/nats.creds" (include "spool.natsCredsDir" .))) }}
{{- end }}
{{- if $v.tls.enabled }}
{{- if $v.tls.caSecret }}
{{- include "spool.envVar" (list "SPOOL_NATS_TLS_CA" (printf "%s/ca.crt" (include "spool.natsCADir" .))) }}
{{- end }}
{{- if $v.tls.clientSecret }}
{{- include "spool.envVar" (list "SPOOL_NATS_TLS_CERT" (printf "%s/tls.crt" (include "spool.natsClientDir" .))) }}
{{- include "spool.envVar" (list "SPOOL_NATS_TLS_KEY" (printf "%s/tls.key" (include "spool.natsClientDir" .))) }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The volumes of spool.natsEnv's files. Arguments: dict root, user. */}}
{{- define "spool.natsVolumes" -}}
{{- $v := .root.Values.nats -}}
{{- if .user }}
- name: nats-password
  secret:
    secretName: {{ (include "spool.natsUser" . | fromJson).secret }}
    items:
      - key: password
        path: password
{{- end }}
{{- if $v.credsSecret }}
- name: nats-creds
  secret:
    secretName: {{ $v.credsSecret }}
    items:
      - key: nats.creds
        path: nats.creds
{{- end }}
{{- if $v.tls.enabled }}
{{- with $v.tls.caSecret }}
- name: nats-tls-ca
  secret:
    secretName: {{ . }}
    items:
      - key: {{ $v.tls.caKey }}
        path: ca.crt
{{- end }}
{{- with $v.tls.clientSecret }}
- name: nats-tls-client
  secret:
    secretName: {{ . }}
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
{{- end }}
{{- end -}}

{{/* The mounts of spool.natsVolumes, read-only. Arguments: dict root, user. */}}
{{- define "spool.natsMounts" -}}
{{- $v := .root.Values.nats -}}
{{- if .user }}
- name: nats-password
  mountPath: {{ include "spool.natsPasswordDir" . }}
  readOnly: true
{{- end }}
{{- if $v.credsSecret }}
- name: nats-creds
  mountPath: {{ include "spool.natsCredsDir" . }}
  readOnly: true
{{- end }}
{{- if $v.tls.enabled }}
{{- if $v.tls.caSecret }}
- name: nats-tls-ca
  mountPath: {{ include "spool.natsCADir" . }}
  readOnly: true
{{- end }}
{{- if $v.tls.clientSecret }}
- name: nats-tls-client
  mountPath: {{ include "spool.natsClientDir" . }}
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{/* A pod annotation that changes with its user's password, so that its
pods roll when the password is rotated. Arguments: dict root, user. */}}
{{- define "spool.natsAnnotations" -}}
{{- if .user }}
checksum/nats-password: {{ (include "spool.natsUser" . | fromJson).password | sha256sum }}
{{- end }}
{{- end -}}
