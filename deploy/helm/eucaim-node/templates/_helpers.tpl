{{/* Names, labels and the pieces every component shares. */}}

{{- define "eucaim-node.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "eucaim-node.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels every object of the release carries. */}}
{{- define "eucaim-node.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "eucaim-node.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: eucaim-node
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector of every pod of the release. */}}
{{- define "eucaim-node.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eucaim-node.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Component helpers take (dict "root" $ "name" $name). */}}
{{- define "eucaim-node.componentName" -}}
{{- printf "%s-%s" (include "eucaim-node.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "eucaim-node.componentSelector" -}}
{{ include "eucaim-node.selectorLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "eucaim-node.componentLabels" -}}
{{ include "eucaim-node.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "eucaim-node.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{- define "eucaim-node.serviceAccountName" -}}
{{ include "eucaim-node.fullname" . }}
{{- end -}}

{{/* The secret files of a component: its own list, its Kafka password (key .name) and CA, and the password of each Orthanc it uses. */}}
{{- define "eucaim-node.secretFiles" -}}
{{- $root := .root -}}
{{- $files := list -}}
{{- range .component.secretFiles -}}
{{- $secretName := .secretName -}}
{{- $key := .key -}}
{{- if and (eq .env "EUCAIM_HMAC_KEY_FILE") (not $secretName) -}}
{{- $secretName = $root.Values.node.hmacKey.secretName -}}
{{- $key = $root.Values.node.hmacKey.key -}}
{{- end -}}
{{- if not (and $secretName $key) -}}
{{- fail (printf "components: secretFiles entry %s needs secretName and key" .env) -}}
{{- end -}}
{{- $files = append $files (dict "env" .env "secretName" $secretName "key" $key) -}}
{{- end -}}
{{- if has "kafka" .component.dependencies -}}
{{- $kafka := $root.Values.kafka -}}
{{- if hasPrefix "SASL_" $kafka.securityProtocol -}}
{{- $files = append $files (dict "env" "EUCAIM_KAFKA_SASL_PASSWORD_FILE" "secretName" $kafka.sasl.passwordsSecret "key" .name) -}}
{{- end -}}
{{- if and (has $kafka.securityProtocol (list "SSL" "SASL_SSL")) $kafka.tls.caSecret.secretName -}}
{{- $files = append $files (dict "env" "EUCAIM_KAFKA_SSL_CA_FILE" "secretName" $kafka.tls.caSecret.secretName "key" $kafka.tls.caSecret.key) -}}
{{- end -}}
{{- end -}}
{{- if and (has "mongodb" .component.dependencies) (not $root.Values.mongodb.insecurePlaintext) -}}
{{- $mongo := $root.Values.mongodb -}}
{{- /* Only this component's own MongoDB password: Secret <prefix><component>. */ -}}
{{- $files = append $files (dict "env" "EUCAIM_MONGO_PASSWORD_FILE" "secretName" (printf "%s%s" $mongo.users.passwordSecretPrefix .name) "key" $mongo.users.passwordKey) -}}
{{- if $mongo.tls.caSecret.secretName -}}
{{- $files = append $files (dict "env" "EUCAIM_MONGO_TLS_CA_FILE" "secretName" $mongo.tls.caSecret.secretName "key" $mongo.tls.caSecret.key) -}}
{{- end -}}
{{- end -}}
{{- if eq .component.module "witness" -}}
{{- $files = append $files (dict "env" "EUCAIM_WITNESS_SUBMIT_TOKEN_FILE" "secretName" $root.Values.witness.tokenSecret.secretName "key" $root.Values.witness.tokenSecret.key) -}}
{{- end -}}
{{- if has "witness" .component.dependencies -}}
{{- $files = append $files (dict "env" "EUCAIM_AUDIT_WITNESS_TOKEN_FILE" "secretName" $root.Values.witness.tokenSecret.secretName "key" $root.Values.witness.tokenSecret.key) -}}
{{- $files = append $files (dict "env" "EUCAIM_AUDIT_WITNESS_VKEY_FILE" "secretName" $root.Values.witness.vkeySecret.secretName "key" $root.Values.witness.vkeySecret.key) -}}
{{- end -}}
{{- if has "clinicalOrthanc" .component.dependencies -}}
{{- $files = append $files (dict "env" "EUCAIM_CLINICAL_ORTHANC_PASSWORD_FILE" "secretName" $root.Values.clinicalOrthanc.passwordSecret.secretName "key" $root.Values.clinicalOrthanc.passwordSecret.key) -}}
{{- end -}}
{{- if has "researchOrthanc" .component.dependencies -}}
{{- $files = append $files (dict "env" "EUCAIM_RESEARCH_ORTHANC_PASSWORD_FILE" "secretName" $root.Values.researchOrthanc.passwordSecret.secretName "key" $root.Values.researchOrthanc.passwordSecret.key) -}}
{{- end -}}
{{- toJson $files -}}
{{- end -}}


{{- /* The URL the audit service submits heads to: witness.url, or the chart's witness component. */ -}}
{{- define "eucaim-node.witnessUrl" -}}
{{- if .Values.witness.url -}}
{{- .Values.witness.url -}}
{{- else -}}
{{- if not .Values.components.witness.enabled -}}
{{- fail "witness.url is empty and components.witness is disabled: the audit service needs a witness" -}}
{{- end -}}
http://{{ include "eucaim-node.componentName" (dict "root" . "name" "witness") }}:8080
{{- end -}}
{{- end -}}
