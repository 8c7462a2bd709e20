//go:build !benchtool

package tools

// benchToolset is empty in every normal build: the benchmark's one small tool exists only with
// -tags benchtool (benchtool.go).
const benchToolset = ""

func benchTools(*Deps) []Tool { return nil }
