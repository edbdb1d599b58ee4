{{- define "kafka-proxy.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kafka-proxy.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kafka-proxy.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The host clients are told to connect to. */}}
{{- define "kafka-proxy.advertisedHost" -}}
{{- if eq .Values.mode "sidecar" -}}
127.0.0.1
{{- else -}}
{{- .Values.advertisedHost | default (printf "%s.%s.svc" (include "kafka-proxy.fullname" .) .Release.Namespace) -}}
{{- end -}}
{{- end -}}

{{/* The kafka-proxy server arguments, one per line. */}}
{{- define "kafka-proxy.args" -}}
{{- $listen := ternary "127.0.0.1" "0.0.0.0" (eq .Values.mode "sidecar") -}}
{{- $adv := include "kafka-proxy.advertisedHost" . -}}
- server
{{- range .Values.brokers }}
- --bootstrap-server-mapping={{ .upstream }},{{ $listen }}:{{ .port }},{{ $adv }}:{{ .port }}
{{- end }}
{{- if .Values.dynamicListeners.enabled }}
- --default-listener-ip={{ $listen }}
{{- if .Values.dynamicListeners.sequentialMinPort }}
- --dynamic-sequential-min-port={{ .Values.dynamicListeners.sequentialMinPort }}
{{- end }}
{{- else }}
- --dynamic-listeners-disable
{{- end }}
{{- with .Values.upstream.tls }}
{{- if .enabled }}
- --tls-enable
{{- if .caKey }}
- --tls-ca-chain-cert-file=/etc/kafka-proxy/upstream-tls/{{ .caKey }}
{{- end }}
{{- if .certKey }}
- --tls-client-cert-file=/etc/kafka-proxy/upstream-tls/{{ .certKey }}
- --tls-client-key-file=/etc/kafka-proxy/upstream-tls/{{ .keyKey }}
{{- end }}
{{- if .keyPasswordKey }}
- --tls-client-key-password-file=/etc/kafka-proxy/upstream-tls/{{ .keyPasswordKey }}
{{- end }}
- --tls-refresh=1m
{{- end }}
{{- end }}
{{- with .Values.upstream.sasl }}
{{- if .enabled }}
- --sasl-enable
- --sasl-method={{ .method }}
- --sasl-jaas-config-file=/etc/kafka-proxy/upstream-sasl/{{ .jaasKey }}
{{- end }}
{{- end }}
{{- if .Values.listener.tls.enabled }}
- --proxy-listener-tls-enable
- --proxy-listener-cert-file=/etc/kafka-proxy/listener-tls/tls.crt
- --proxy-listener-key-file=/etc/kafka-proxy/listener-tls/tls.key
- --proxy-listener-tls-refresh=1m
{{- end }}
{{- with .Values.listener.allowCIDRs }}
- --proxy-listener-allow-cidr={{ join "," . }}
{{- end }}
{{- if .Values.listener.maxConnectionsPerIP }}
- --proxy-listener-max-connections-per-ip={{ .Values.listener.maxConnectionsPerIP }}
{{- end }}
{{- if .Values.auth.local.enabled }}
- --auth-local-enable
- --auth-local-mechanism={{ join "," .Values.auth.local.mechanisms }}
- --auth-local-users-file=/etc/kafka-proxy/users/users.yaml
{{- end }}
{{- if .Values.acls.configMapName }}
- --acl-file=/etc/kafka-proxy/acls
{{- end }}
{{- with .Values.acls.superUsers }}
- --acl-super-users={{ join ";" . }}
{{- end }}
{{- with .Values.audit.log }}
- --audit-log={{ . }}
{{- end }}
- --http-listen-address=0.0.0.0:{{ .Values.http.port }}
- --log-format={{ .Values.logFormat }}
- --shutdown-drain-timeout={{ .Values.drainTimeoutSeconds }}s
{{- range .Values.extraArgs }}
- {{ . }}
{{- end }}
{{- end -}}

{{/* The kafka-proxy container. */}}
{{- define "kafka-proxy.container" -}}
- name: kafka-proxy
  image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args:
    {{- include "kafka-proxy.args" . | nindent 4 }}
  ports:
    {{- if ne .Values.mode "sidecar" }}
    {{- range $i, $b := .Values.brokers }}
    - name: broker-{{ $i }}
      containerPort: {{ $b.port }}
    {{- end }}
    {{- end }}
    - name: http
      containerPort: {{ .Values.http.port }}
  {{- if .Values.preStopSeconds }}
  lifecycle:
    preStop:
      sleep:
        seconds: {{ .Values.preStopSeconds }}
  {{- end }}
  livenessProbe:
    httpGet:
      path: /health
      port: http
    periodSeconds: 10
  readinessProbe:
    httpGet:
      path: /ready
      port: http
    periodSeconds: 10
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    capabilities:
      drop: ["ALL"]
    seccompProfile:
      type: RuntimeDefault
  volumeMounts:
    {{- if .Values.upstream.tls.enabled }}
    - name: upstream-tls
      mountPath: /etc/kafka-proxy/upstream-tls
      readOnly: true
    {{- end }}
    {{- if .Values.upstream.sasl.enabled }}
    - name: upstream-sasl
      mountPath: /etc/kafka-proxy/upstream-sasl
      readOnly: true
    {{- end }}
    {{- if .Values.listener.tls.enabled }}
    - name: listener-tls
      mountPath: /etc/kafka-proxy/listener-tls
      readOnly: true
    {{- end }}
    {{- if .Values.auth.local.enabled }}
    - name: users
      mountPath: /etc/kafka-proxy/users
      readOnly: true
    {{- end }}
    {{- if .Values.acls.configMapName }}
    - name: acls
      mountPath: /etc/kafka-proxy/acls
      readOnly: true
    {{- end }}
{{- end -}}

{{- define "kafka-proxy.volumes" -}}
{{- if .Values.upstream.tls.enabled }}
- name: upstream-tls
  secret:
    secretName: {{ required "upstream.tls.secretName is required with upstream.tls.enabled" .Values.upstream.tls.secretName }}
{{- end }}
{{- if .Values.upstream.sasl.enabled }}
- name: upstream-sasl
  secret:
    secretName: {{ required "upstream.sasl.jaasSecretName is required with upstream.sasl.enabled" .Values.upstream.sasl.jaasSecretName }}
{{- end }}
{{- if .Values.listener.tls.enabled }}
- name: listener-tls
  secret:
    secretName: {{ required "listener.tls.secretName is required with listener.tls.enabled" .Values.listener.tls.secretName }}
{{- end }}
{{- if .Values.auth.local.enabled }}
- name: users
  secret:
    secretName: {{ required "auth.local.usersSecretName is required with auth.local.enabled" .Values.auth.local.usersSecretName }}
{{- end }}
{{- if .Values.acls.configMapName }}
- name: acls
  configMap:
    name: {{ .Values.acls.configMapName }}
{{- end }}
{{- end -}}
