{{- define "etcd-backup.fullname" -}}
{{- printf "%s-etcd-backup" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "etcd-backup.labels" -}}
app.kubernetes.io/name: etcd-backup
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: {{ .Values.mode }}
{{- end -}}

{{- define "etcd-backup.env" -}}
- name: CLUSTER_NAME
  value: {{ .Values.cluster | quote }}
- name: ETCDCTL_ENDPOINTS
  value: {{ .Values.etcd.endpoints | quote }}
- name: ETCDCTL_CACERT
  value: {{ printf "%s/%s" .Values.etcd.pkiHostPath .Values.etcd.cacert | quote }}
- name: ETCDCTL_CERT
  value: {{ printf "%s/%s" .Values.etcd.pkiHostPath .Values.etcd.cert | quote }}
- name: ETCDCTL_KEY
  value: {{ printf "%s/%s" .Values.etcd.pkiHostPath .Values.etcd.key | quote }}
- name: ETCD_BACKUP_TO
  value: {{ .Values.destination | quote }}
- name: ETCD_BACKUP_COMPRESS
  value: {{ .Values.compression | quote }}
- name: AWS_REGION
  value: {{ .Values.s3.region | quote }}
{{- if .Values.s3.endpoint }}
- name: AWS_ENDPOINT_URL_S3
  value: {{ .Values.s3.endpoint | quote }}
{{- end }}
{{- if .Values.s3.pathStyle }}
- name: ETCD_BACKUP_S3_PATH_STYLE
  value: "true"
{{- end }}
{{- if .Values.gcs.endpoint }}
- name: ETCD_BACKUP_GCS_ENDPOINT
  value: {{ .Values.gcs.endpoint | quote }}
{{- end }}
{{- if .Values.gcs.project }}
- name: ETCD_BACKUP_GCS_PROJECT
  value: {{ .Values.gcs.project | quote }}
{{- end }}
{{- if .Values.gcs.credentialsSecret }}
- name: GOOGLE_APPLICATION_CREDENTIALS
  value: {{ printf "/etc/etcd-backup/gcs/%s" .Values.gcs.credentialsKey | quote }}
{{- end }}
{{- /* The lock, for every object store: objectLock, else the older s3.objectLock. */}}
{{- $lock := .Values.objectLock | default dict }}
{{- $s3Lock := (.Values.s3 | default dict).objectLock | default dict }}
{{- $lockMode := $lock.mode | default $s3Lock.mode }}
{{- $lockDays := $lock.days | default $s3Lock.days }}
{{- /* Without days a lock lasts the daemon's --keep-within; a pod that could only fail at start is refused here. */}}
{{- if and $lockMode (not $lockDays) }}
{{- if ne .Values.mode "daemon" }}
{{- fail (printf "objectLock.days: is required with objectLock.mode %s in mode %s (set objectLock.days; only the daemon defaults them to retention.keepWithin)" $lockMode .Values.mode) }}
{{- else if not (.Values.retention | default dict).keepWithin }}
{{- fail (printf "objectLock.days: is required with objectLock.mode %s (set objectLock.days, or retention.keepWithin for the daemon to lock each backup that long)" $lockMode) }}
{{- end }}
{{- end }}
{{- if $lockMode }}
- name: ETCD_BACKUP_OBJECT_LOCK
  value: {{ $lockMode | quote }}
{{- end }}
{{- if $lockDays }}
- name: ETCD_BACKUP_OBJECT_LOCK_DAYS
  value: {{ $lockDays | quote }}
{{- end }}
{{- if or $lock.legalHold $s3Lock.legalHold }}
- name: ETCD_BACKUP_LEGAL_HOLD
  value: "true"
{{- end }}
{{- if .Values.azure.account }}
- name: AZURE_STORAGE_ACCOUNT
  value: {{ .Values.azure.account | quote }}
{{- end }}
{{- if .Values.azure.endpoint }}
- name: ETCD_BACKUP_AZURE_ENDPOINT
  value: {{ .Values.azure.endpoint | quote }}
{{- end }}
{{- if .Values.notify.secret }}
- name: ETCD_BACKUP_NOTIFY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.notify.secret | quote }}
      key: {{ .Values.notify.secretKey | quote }}
- name: ETCD_BACKUP_NOTIFY_ON
  value: {{ .Values.notify.on | quote }}
- name: ETCD_BACKUP_NOTIFY_FORMAT
  value: {{ .Values.notify.format | quote }}
{{- if .Values.notify.staleAfter }}
- name: ETCD_BACKUP_NOTIFY_STALE_AFTER
  value: {{ .Values.notify.staleAfter | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The Secrets the container's environment comes from: the store's credentials (when given) and the recipients. */}}
{{- define "etcd-backup.envFrom" -}}
{{- if and (hasPrefix "azblob://" .Values.destination) .Values.azure.credentialsSecret }}
- secretRef:
    name: {{ .Values.azure.credentialsSecret }}
{{- else if and (not (hasPrefix "azblob://" .Values.destination)) (not (hasPrefix "gs://" .Values.destination)) .Values.s3.credentialsSecret }}
- secretRef:
    name: {{ .Values.s3.credentialsSecret }}
{{- end }}
- secretRef:
    name: {{ .Values.encryption.recipientsSecret }}
{{- end -}}

{{- define "etcd-backup.podSpec" -}}
hostNetwork: true
dnsPolicy: ClusterFirstWithHostNet
automountServiceAccountToken: false
{{- if .Values.azure.workloadIdentity.enabled }}
{{- /* The workload identity webhook mounts its own projected token; the API token stays unmounted. */}}
serviceAccountName: {{ required "azure.workloadIdentity.serviceAccountName is required with workload identity" .Values.azure.workloadIdentity.serviceAccountName }}
{{- end }}
nodeSelector:
  {{- toYaml .Values.nodeSelector | nindent 2 }}
tolerations:
  {{- toYaml .Values.tolerations | nindent 2 }}
securityContext:
  runAsUser: 0
  seccompProfile:
    type: RuntimeDefault
volumes:
  - name: etcd-pki
    hostPath:
      path: {{ .Values.etcd.pkiHostPath }}
      type: Directory
  - name: tmp
    emptyDir: {}
  {{- if .Values.gcs.credentialsSecret }}
  - name: gcs-credentials
    secret:
      secretName: {{ .Values.gcs.credentialsSecret }}
      defaultMode: 0400
  {{- end }}
  {{- if .Values.encryption.identitySecret }}
  - name: identity
    secret:
      secretName: {{ .Values.encryption.identitySecret }}
      defaultMode: 0400
  {{- end }}
{{- end -}}
