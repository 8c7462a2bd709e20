//go:build benchtool

package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// benchProfile starts a CPU profile into $CNPG_MCP_BENCH_CPUPROFILE when it is set, and returns what
// stops it. Compiled only into the benchmark's build (-tags benchtool, bench/cmd/bench-peers
// --profile): release builds read no such variable.
func benchProfile() func() {
	path := os.Getenv("CNPG_MCP_BENCH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cnpg-mcp-server: CPU profile:", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}
