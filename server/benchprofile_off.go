//go:build !benchtool

package main

// benchProfile does nothing in release builds (benchprofile.go is the benchmark's).
func benchProfile() func() { return func() {} }
