{{/* Names and labels shared by every object of the release. */}}
{{- define "login-stream.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "login-stream.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component (processor or generator): never change after install. */}}
{{- define "login-stream.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "login-stream.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Where the TLS Secret is mounted. */}}
{{- define "login-stream.tlsDir" -}}/etc/login-stream/tls{{- end -}}

{{/* Rules across values that a schema cannot say clearly: each fails with one line. */}}
{{- define "login-stream.checks" -}}
{{- $p := .Values.processor -}}
{{- if gt (int $p.replicas) (int .Values.topics.inputPartitions) -}}
{{- fail (printf "processor.replicas (%d) is more than topics.inputPartitions (%d): each replica beyond the partitions would own none and sit idle" (int $p.replicas) (int .Values.topics.inputPartitions)) -}}
{{- end -}}
{{- if le (int $p.terminationGracePeriodSeconds) (int $p.stopMarginSeconds) -}}
{{- fail (printf "processor.terminationGracePeriodSeconds (%d) must be more than processor.stopMarginSeconds (%d): the processor needs time to commit its checkpoint" (int $p.terminationGracePeriodSeconds) (int $p.stopMarginSeconds)) -}}
{{- end -}}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol -}}
{{- if not (and .Values.kafka.sasl.mechanism .Values.kafka.sasl.username .Values.kafka.sasl.existingSecret) -}}
{{- fail (printf "kafka.securityProtocol=%s needs kafka.sasl.mechanism, kafka.sasl.username and kafka.sasl.existingSecret (the Secret holding the password)" .Values.kafka.securityProtocol) -}}
{{- end -}}
{{- end -}}
{{- $tls := .Values.kafka.tls -}}
{{- if and (not $tls.existingSecret) (or $tls.certificateKey $tls.keyKey $tls.keyPasswordKey) -}}
{{- fail "kafka.tls.certificateKey, keyKey and keyPasswordKey name keys of kafka.tls.existingSecret, which is empty" -}}
{{- end -}}
{{- if ne (empty $tls.certificateKey) (empty $tls.keyKey) -}}
{{- fail "mutual TLS needs both kafka.tls.certificateKey and kafka.tls.keyKey" -}}
{{- end -}}
{{- end -}}

{{/* The environment every container gets: the settings ConfigMap and the secrets by reference. */}}
{{- define "login-stream.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "login-stream.fullname" . }}
{{- $secretEnv := list -}}
{{- if .Values.kafka.sasl.existingSecret }}
{{- $secretEnv = append $secretEnv (list "KAFKA_SASL_PASSWORD" .Values.kafka.sasl.existingSecret .Values.kafka.sasl.passwordKey) -}}
{{- end -}}
{{- if and .Values.kafka.tls.existingSecret .Values.kafka.tls.keyPasswordKey }}
{{- $secretEnv = append $secretEnv (list "KAFKA_SSL_KEY_PASSWORD" .Values.kafka.tls.existingSecret .Values.kafka.tls.keyPasswordKey) -}}
{{- end -}}
{{- if .Values.sentry.existingSecret }}
{{- $secretEnv = append $secretEnv (list "SENTRY_DSN" .Values.sentry.existingSecret .Values.sentry.dsnKey) -}}
{{- end -}}
{{- if $secretEnv }}
env:
{{- range $secretEnv }}
  - name: {{ index . 0 }}
    valueFrom:
      secretKeyRef:
        name: {{ index . 1 }}
        key: {{ index . 2 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The TLS Secret's volume and mount, when there is one. */}}
{{- define "login-stream.tlsVolume" -}}
{{- if .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  secret:
    secretName: {{ .Values.kafka.tls.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "login-stream.tlsMount" -}}
{{- if .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  mountPath: {{ include "login-stream.tlsDir" . }}
  readOnly: true
{{- end }}
{{- end -}}
