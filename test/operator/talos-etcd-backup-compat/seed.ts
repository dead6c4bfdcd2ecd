/**
 * The seed-style TalosEtcdBackup: the Talos operator's example with its fields exactly (endpoint and bucket pointed
 * at a test's S3). Shared by the compatibility e2e (API server stand-in) and the real kube-apiserver test.
 */
export const seedYaml = (endpoint: string) => `
apiVersion: talos.alperen.cloud/v1alpha1
kind: TalosEtcdBackup
metadata:
  name: talosetcdbackup-sample
spec:
  talosControlPlaneRef:
    name: taloscontrolplane-sample
  backupStorage:
    s3:
      bucket: backups
      region: us-west-2
      accessKeyID:
        name: my-s3-credentials
        key: accessKeyID
      secretAccessKey:
        name: my-s3-credentials
        key: secretAccessKey
      endpoint: ${endpoint}
      insecureSkipTLSVerify: false
`;
