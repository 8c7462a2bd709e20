package tools

import (
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"a", "pg-main", "pg1", strings.Repeat("a", 63)} {
		if err := checkName("name", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for in, want := range map[string][]string{
		"":                      {"required"},
		"PG":                    {"uppercase", `"pg"`},
		"my_db":                 {"characters other than", `"my-db"`},
		"-pg":                   {"starts or ends", `"pg"`},
		strings.Repeat("a", 64): {"64 characters"},
		"pg.main":               {"RFC 1123", `"pg-main"`},
	} {
		err := checkName("cluster name", in)
		if err == nil || !IsUserError(err) {
			t.Fatalf("%q accepted", in)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: %q lacks %q", in, err, w)
			}
		}
	}
}

func TestCheckQuantity(t *testing.T) {
	for _, ok := range []string{"10Gi", "500Mi", "1Ti", "1G"} {
		if _, err := checkQuantity("storage_size", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "ten", "0", "-1Gi", "10GB"} {
		if _, err := checkQuantity("storage_size", bad); err == nil || !strings.Contains(err.Error(), "10Gi") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestCheckQuantityFuzzRegressions: inputs FuzzCheckQuantity found (also in testdata/fuzz). A huge decimal
// exponent made resource.ParseQuantity run for ever; a value beyond an int64 of bytes was accepted and
// written back as something else ("1000000P" prints as "1").
func TestCheckQuantityFuzzRegressions(t *testing.T) {
	for in, want := range map[string]string{
		"1E0000003000000000000000": "not a usable size",
		"1e300":                    "not a usable size",
		strings.Repeat("1", 65):    "not a usable size",
		"1000000P":                 "larger than Kubernetes can represent exactly",
		"1000000Pi":                "larger than Kubernetes can represent exactly",
		"1e99":                     "larger than Kubernetes can represent exactly",
	} {
		done := make(chan error, 1)
		go func() {
			_, err := checkQuantity("storage_size", in)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "storage_size") {
				t.Errorf("%q: got %v, want an error containing %q", in, err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q: checkQuantity did not return within 10s", in)
		}
	}
	for _, ok := range []string{"1e3", "5E+2", "7Ei", "100Ti"} {
		if _, err := checkQuantity("storage_size", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

func TestCheckCron(t *testing.T) {
	for _, ok := range []string{"0 0 2 * * *", "*/30 * * * * *", "0 0 0 1 jan-mar ?", "0 0 12 * * MON-FRI", "0 15,45 * * * sun", "@daily", "@every 6h"} {
		if err := checkCron(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for in, want := range map[string]string{
		"0 2 * * *":     "5 fields",
		"0 0 24 * * *":  "hour",
		"60 0 0 * * *":  "second",
		"0 0 0 32 * *":  "day of month",
		"0 0 0 * 13 *":  "month",
		"0 0 0 * * 7":   "day of week",
		"0 0 0 * * x":   "day of week",
		"0 */0 * * * *": "step",
		"0 5-1 * * * *": "backwards",
		"":              "0 fields",
	} {
		err := checkCron(in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "seconds") {
			t.Errorf("%q: %v (want %q)", in, err, want)
		}
	}
}

func TestExplain(t *testing.T) {
	gr := schema.GroupResource{Group: "postgresql.cnpg.io", Resource: "clusters"}
	for name, tc := range map[string]struct {
		err  error
		want []string
	}{
		"403":          {apierrors.NewForbidden(gr, "pg", errors.New("no")), []string{"403 Forbidden", "RBAC", "docs/rbac.md"}},
		"404":          {apierrors.NewNotFound(gr, "pg"), []string{`cluster "pg"`, "404", "list_postgres_clusters"}},
		"409 exists":   {apierrors.NewAlreadyExists(gr, "pg"), []string{"already exists (409)"}},
		"409 conflict": {apierrors.NewConflict(gr, "pg", errors.New("the object has been modified")), []string{"409 Conflict", "retry"}},
		"422": {apierrors.NewInvalid(schema.GroupKind{Group: "postgresql.cnpg.io", Kind: "Cluster"}, "pg",
			field.ErrorList{field.Invalid(field.NewPath("spec", "instances"), 0, "must be >= 1")}), []string{"422", "spec.instances", "must be >= 1"}},
		"401":         {apierrors.NewUnauthorized("x"), []string{"401", "deployment problem"}},
		"timeout":     {apierrors.NewTimeoutError("slow", 1), []string{"Retry"}},
		"unreachable": {&net.OpError{Op: "dial", Err: errors.New("connection refused")}, []string{"not reachable", "/readyz"}},
		"user":        {userErrorf("fix it like this"), []string{"fix it like this"}},
	} {
		got := explain(tc.err)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", name, got, w)
			}
		}
	}
}

func TestTruncate(t *testing.T) {
	s := strings.Repeat("é", 20000) // 40000 bytes
	got := truncate(s, MaxTextChars)
	if len(got) > MaxTextChars || !strings.Contains(got, "truncated") || !strings.HasPrefix(got, "é") {
		t.Fatalf("len %d", len(got))
	}
	if truncate("short", 10) != "short" {
		t.Fatal("short text changed")
	}
}

// Arguments the schema accepts but the tool's Go type cannot hold (3.0 for a whole number, sent
// verbatim by a client) are explained without Go type names.
func TestDecodeMessage(t *testing.T) {
	var a struct {
		Instances int `json:"instances"`
	}
	err := json.Unmarshal([]byte(`{"instances":3.0}`), &a)
	got := decodeMessage("scale_postgres_cluster", err)
	want := "scale_postgres_cluster: instances must be a whole number written without a decimal point (got number 3.0). Nothing was done"
	if !strings.HasPrefix(got, want) || strings.Contains(got, "Go struct") || strings.Contains(got, "int") && !strings.Contains(got, "point") {
		t.Fatalf("got %q\nwant %q…", got, want)
	}
	got = decodeMessage("x", errors.New(`json: unknown field "bogus"`))
	if !strings.Contains(got, `unknown argument "bogus"`) {
		t.Fatalf("unknown field: %q", got)
	}
}
