package objstore

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestPluginManifestRewrite(t *testing.T) {
	for _, tc := range []struct{ plugin, sidecar, wantPlugin, wantSidecar string }{
		{"cnpg-mcp.local/plugin-barman-cloud:v0.15.0", "cnpg-mcp.local/plugin-barman-cloud-sidecar:v0.15.0",
			"cnpg-mcp.local/plugin-barman-cloud:v0.15.0", "cnpg-mcp.local/plugin-barman-cloud-sidecar:v0.15.0"},
		// online: the development tag becomes the release
		{"", "", "/plugin-barman-cloud:v0.15.0", "/plugin-barman-cloud-sidecar:v0.15.0"},
	} {
		objs, err := PluginManifest("testdata/manifest-tail.yaml", "v0.15.0", tc.plugin, tc.sidecar)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, o := range objs {
			kinds = append(kinds, o.GetKind())
			if strings.HasPrefix(o.GetAPIVersion(), "cert-manager.io") {
				t.Fatalf("cert-manager object kept: %s", o.GetKind())
			}
			switch o.GetKind() {
			case "Deployment":
				cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
				img := cs[0].(map[string]any)["image"].(string)
				if !strings.HasSuffix(img, tc.wantPlugin) || strings.Contains(img, "testing") {
					t.Errorf("plugin image %q, want …%s", img, tc.wantPlugin)
				}
			case "Secret":
				enc, _, _ := unstructured.NestedString(o.Object, "data", "SIDECAR_IMAGE")
				raw, err := base64.StdEncoding.DecodeString(enc)
				if err != nil || !strings.HasSuffix(string(raw), tc.wantSidecar) || strings.Contains(string(raw), "testing") {
					t.Errorf("sidecar image %q (%v), want …%s", raw, err, tc.wantSidecar)
				}
			}
		}
		if strings.Join(kinds, ",") != "Secret,Service,Deployment" {
			t.Fatalf("kinds %v", kinds)
		}
	}
	if _, err := PluginManifest("testdata/README-missing.yaml", "v0", "", ""); err == nil {
		t.Fatal("a missing manifest is not an error")
	}
}

// The certificates work the way the operator and the plugin use them: the operator trusts the
// server Secret's tls.crt for the name "barman-cloud" and presents the client Secret's pair; the
// plugin requires a client certificate signed by the client Secret's tls.crt.
func TestTLSSecretsHandshake(t *testing.T) {
	secrets, err := TLSSecrets()
	if err != nil {
		t.Fatal(err)
	}
	data := func(i int, k string) []byte {
		b, err := base64.StdEncoding.DecodeString(secrets[i].Object["data"].(map[string]any)[k].(string))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	serverPair, err := tls.X509KeyPair(data(0, "tls.crt"), data(0, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	clientPair, err := tls.X509KeyPair(data(1, "tls.crt"), data(1, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	clientCAs, roots := x509.NewCertPool(), x509.NewCertPool()
	clientCAs.AppendCertsFromPEM(data(1, "tls.crt"))
	roots.AppendCertsFromPEM(data(0, "tls.crt"))

	handshake := func(serverName string, cert []tls.Certificate) error {
		l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{serverPair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs, MinVersion: tls.VersionTLS13})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			c, err := l.Accept()
			if err == nil {
				_ = c.(*tls.Conn).Handshake()
				_, _ = io.WriteString(c, "ok")
				_ = c.Close()
			}
		}()
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: roots, ServerName: serverName, Certificates: cert, MinVersion: tls.VersionTLS13})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = io.ReadAll(c) // TLS 1.3: a refused client certificate shows on the first read
		return err
	}
	if err := handshake(PluginService, []tls.Certificate{clientPair}); err != nil {
		t.Fatalf("operator → plugin handshake: %v", err)
	}
	if err := handshake("other-plugin", []tls.Certificate{clientPair}); err == nil {
		t.Fatal("the server certificate is accepted for another name")
	}
	if err := handshake(PluginService, nil); err == nil {
		t.Fatal("the plugin side accepts a client without a certificate")
	}
	if err := handshake(PluginService, []tls.Certificate{serverPair}); err == nil {
		t.Fatal("the plugin side accepts a client certificate it does not trust")
	}
}
