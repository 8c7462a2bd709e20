package main

import (
	"io"
	"slices"
	"testing"
)

// RESULT.md is committed: the flags naming paths of this machine are left out of it.
func TestRelArgs(t *testing.T) {
	got := relArgs([]string{"--bin", "/x/bin", "--rounds", "5", "--work=/tmp/w", "-result", "/x/bench/RESULT.md", "--profile", "/p", "--cache", "/c", "--root=/r", "--requests=10"})
	if want := []string{"--rounds", "5", "--requests=10"}; !slices.Equal(got, want) {
		t.Errorf("relArgs = %q, want %q", got, want)
	}
}

func TestParseRefusesUnboundedRuns(t *testing.T) {
	for _, args := range [][]string{{"--concurrency", "0"}, {"--concurrency", "1,x"}, {"--requests", "0"}, {"--max-time", "1h"}, {"--rounds", "0"}, {"extra"}} {
		if _, err := parse(args, io.Discard); err == nil {
			t.Errorf("parse(%q) accepted", args)
		}
	}
	o, err := parse(nil, io.Discard)
	if err != nil || o.cfg.Rounds < 3 || !slices.Equal(o.cfg.Concurrency, []int{1, 8, 32}) {
		t.Errorf("defaults: %+v, %v", o.cfg, err)
	}
}
