package kube

import (
	"strings"
	"testing"
)

func TestDecodeSplitsDocumentsAndSkipsEmptyOnes(t *testing.T) {
	objs, err := Decode(strings.NewReader("---\n# comment only\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].GetKind() != "Namespace" || objs[1].GetName() != "b" {
		t.Fatalf("got %d objects: %v", len(objs), objs)
	}
	if _, err := Decode(strings.NewReader("kind: [unclosed\n")); err == nil {
		t.Fatal("broken YAML accepted")
	}
}
