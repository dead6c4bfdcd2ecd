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
{{- end -}}

{{- define "etcd-backup.podSpec" -}}
hostNetwork: true
dnsPolicy: ClusterFirstWithHostNet
automountServiceAccountToken: false
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
