// Package objstore puts a real backup target on the e2e cluster: an S3-compatible object store
// (versitygw with its posix backend, credentials in a Secret) and CloudNativePG's Barman Cloud plugin
// (CNPG-I), installed from the plugin module's own manifest with its TLS certificates made here
// instead of by cert-manager.
package objstore

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/cnpg-mcp/cnpg-mcp/e2e/kube"
)

// Names used on the cluster.
const (
	PluginNamespace  = "cnpg-system" // the plugin must live beside the operator
	PluginDeployment = "barman-cloud"
	PluginService    = "barman-cloud" // also the DNS name in the server certificate
	ServerTLSSecret  = "barman-cloud-server-tls"
	ClientTLSSecret  = "barman-cloud-client-tls"

	StoreName    = "s3" // Deployment and Service of the object store
	StorePort    = 7070 // versitygw's default S3 port
	Bucket       = "backups"
	CredsSecret  = "s3-creds"
	AccessKeyKey = "ACCESS_KEY_ID"
	SecretKeyKey = "ACCESS_SECRET_KEY"
)

// PluginManifest reads the plugin module's manifest.yaml and returns its objects for this cluster:
// cert-manager's Issuer and Certificates dropped (TLSSecrets replaces them), the plugin's image and
// its sidecar image (the SIDECAR_IMAGE Secret) set to the given ones. Empty images keep the manifest's
// with the "-testing:main" development tag turned into the release tag (online runs).
func PluginManifest(path, version, pluginImage, sidecarImage string) ([]*unstructured.Unstructured, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	objs, err := kube.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	release := func(img string) string { return strings.Replace(img, "-testing:main", ":"+version, 1) }
	var out []*unstructured.Unstructured
	seenDeploy, seenSidecar := false, false
	for _, o := range objs {
		if strings.HasPrefix(o.GetAPIVersion(), "cert-manager.io/") {
			continue
		}
		switch o.GetKind() {
		case "Deployment":
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			for i := range cs {
				c := cs[i].(map[string]any)
				img, _ := c["image"].(string)
				c["image"] = release(img)
				if pluginImage != "" {
					c["image"] = pluginImage
				}
				c["imagePullPolicy"] = "IfNotPresent"
				seenDeploy = true
			}
			if err := unstructured.SetNestedSlice(o.Object, cs, "spec", "template", "spec", "containers"); err != nil {
				return nil, err
			}
		case "Secret":
			data, _, _ := unstructured.NestedStringMap(o.Object, "data")
			if enc, ok := data["SIDECAR_IMAGE"]; ok {
				raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(enc), ""))
				if err != nil {
					return nil, fmt.Errorf("SIDECAR_IMAGE: %w", err)
				}
				img := release(strings.TrimSpace(string(raw)))
				if sidecarImage != "" {
					img = sidecarImage
				}
				data["SIDECAR_IMAGE"] = base64.StdEncoding.EncodeToString([]byte(img))
				if err := unstructured.SetNestedStringMap(o.Object, data, "data"); err != nil {
					return nil, err
				}
				seenSidecar = true
			}
		}
		out = append(out, o)
	}
	if !seenDeploy || !seenSidecar {
		return nil, fmt.Errorf("%s: no plugin Deployment or SIDECAR_IMAGE Secret found (deployment %t, sidecar %t)", path, seenDeploy, seenSidecar)
	}
	return out, nil
}

// TLSSecrets makes what cert-manager would: a self-signed server certificate for the plugin's
// Service name and a self-signed client certificate for the operator. The operator trusts the
// server's tls.crt as its root; the plugin trusts the client's tls.crt (--client-cert).
func TLSSecrets() ([]*unstructured.Unstructured, error) {
	server, err := selfSigned("barman-cloud", []string{PluginService, PluginService + "." + PluginNamespace, PluginService + "." + PluginNamespace + ".svc"}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	client, err := selfSigned("barman-cloud-client", nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	return []*unstructured.Unstructured{tlsSecret(ServerTLSSecret, server), tlsSecret(ClientTLSSecret, client)}, nil
}

type pair struct{ cert, key []byte }

func selfSigned(cn string, dns []string, usage x509.ExtKeyUsage) (pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return pair{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return pair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return pair{}, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return pair{}, err
	}
	return pair{cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})}, nil
}

func tlsSecret(name string, p pair) *unstructured.Unstructured {
	b64 := base64.StdEncoding.EncodeToString
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
		"metadata": map[string]any{"name": name, "namespace": PluginNamespace},
		"data":     map[string]any{"tls.crt": b64(p.cert), "tls.key": b64(p.key), "ca.crt": b64(p.cert)},
	}}
}

// Store returns the object store's objects in ns: the credentials Secret, a versitygw Deployment
// (posix backend on an emptyDir; the bucket is created by barman-cloud on first upload) and its
// Service. accessKey/secretKey are the root credentials.
func Store(ns, image, accessKey, secretKey string) []*unstructured.Unstructured {
	labels := map[string]any{"app": StoreName}
	return []*unstructured.Unstructured{
		{Object: map[string]any{
			"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": CredsSecret, "namespace": ns},
			"stringData": map[string]any{AccessKeyKey: accessKey, SecretKeyKey: secretKey},
		}},
		{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": StoreName, "namespace": ns},
			"spec": map[string]any{
				"replicas": int64(1), "selector": map[string]any{"matchLabels": labels}, "strategy": map[string]any{"type": "Recreate"},
				"template": map[string]any{
					"metadata": map[string]any{"labels": labels},
					"spec": map[string]any{
						"securityContext": map[string]any{"runAsNonRoot": true, "runAsUser": int64(65532), "runAsGroup": int64(65532), "fsGroup": int64(65532)},
						"containers": []any{map[string]any{
							"name": "versitygw", "image": image, "imagePullPolicy": "IfNotPresent",
							// the posix backend keeps object metadata in a sidecar directory, so the
							// volume needs no extended attributes
							"args": []any{"--port", fmt.Sprintf(":%d", StorePort), "posix", "--sidecar", "/data/meta", "/data/buckets"},
							"env": []any{
								map[string]any{"name": "ROOT_ACCESS_KEY", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": CredsSecret, "key": AccessKeyKey}}},
								map[string]any{"name": "ROOT_SECRET_KEY", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": CredsSecret, "key": SecretKeyKey}}},
							},
							"ports":          []any{map[string]any{"name": "s3", "containerPort": int64(StorePort)}},
							"readinessProbe": map[string]any{"tcpSocket": map[string]any{"port": int64(StorePort)}, "periodSeconds": int64(2)},
							"volumeMounts": []any{
								map[string]any{"name": "buckets", "mountPath": "/data/buckets"},
								map[string]any{"name": "meta", "mountPath": "/data/meta"},
							},
							"securityContext": map[string]any{"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": map[string]any{"drop": []any{"ALL"}}},
						}},
						"volumes": []any{
							map[string]any{"name": "buckets", "emptyDir": map[string]any{}},
							map[string]any{"name": "meta", "emptyDir": map[string]any{}},
						},
					},
				},
			},
		}},
		{Object: map[string]any{
			"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": StoreName, "namespace": ns},
			"spec": map[string]any{"selector": labels, "ports": []any{map[string]any{"name": "s3", "port": int64(StorePort), "targetPort": int64(StorePort)}}},
		}},
	}
}

// Endpoint is the store's URL inside the cluster.
func Endpoint(ns string) string {
	return fmt.Sprintf("http://%s.%s.svc:%d", StoreName, ns, StorePort)
}

// ObjectStore is the plugin's ObjectStore pointing at the store, with the credentials Secret.
func ObjectStore(ns, name string) *unstructured.Unstructured {
	ref := func(key string) map[string]any { return map[string]any{"name": CredsSecret, "key": key} }
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "barmancloud.cnpg.io/v1", "kind": "ObjectStore", "metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"configuration": map[string]any{
				"destinationPath": "s3://" + Bucket + "/",
				"endpointURL":     Endpoint(ns),
				"s3Credentials":   map[string]any{"accessKeyId": ref(AccessKeyKey), "secretAccessKey": ref(SecretKeyKey)},
				"wal":             map[string]any{"maxParallel": int64(2)},
			},
			"retentionPolicy": "7d",
		},
	}}
}
