#!/usr/bin/env bash
# hack/fuzz.sh — run every Go fuzz target of the module, one after another, each for FUZZTIME
# (`make fuzz FUZZTIME=10m`). FUZZ_TARGETS is an optional regular expression on target names,
# FUZZ_PARALLEL the number of fuzz workers (default: GOMAXPROCS). Crashers are written by go test to
# <package>/testdata/fuzz/<Target>/ — commit them: they become seeds that `make test` runs.
# Prints one line per target (time, execs, new interesting inputs, result) and exits 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}
FUZZ_TARGETS=${FUZZ_TARGETS:-.}
GO=${GO:-go}
parallel=()
[ -n "${FUZZ_PARALLEL:-}" ] && parallel=(-parallel "$FUZZ_PARALLEL")
logdir=${FUZZ_LOG_DIR:-$(mktemp -d)}
mkdir -p "$logdir"
summary=()
failed=0
while IFS=: read -r file name; do
  [[ "$name" =~ $FUZZ_TARGETS ]] || continue
  pkg="./$(dirname "$file")"
  log="$logdir/$name.log"
  start=$(date +%s)
  echo "fuzz: $name in $pkg for $FUZZTIME (log: $log)" >&2
  $GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "${parallel[@]}" "$pkg" >"$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  last=$(grep -E '^fuzz: elapsed:' "$log" | tail -1)
  execs=$(sed -n 's/.*execs: \([0-9]*\).*/\1/p' <<<"$last")
  newi=$(sed -n 's/.*new interesting: \([0-9]*\).*/\1/p' <<<"$last")
  total=$(sed -n 's/.*(total: \([0-9]*\)).*/\1/p' <<<"$last")
  result=ok
  if [ $rc -ne 0 ]; then
    result="FAIL (crasher: $(grep -o 'testdata/fuzz/[^ ]*' "$log" | head -1))"
    failed=1
    tail -30 "$log" >&2
  fi
  summary+=("$(printf '%-28s %-28s %6ss %12s execs %5s new interesting (corpus %s)  %s' "$name" "$pkg" "$took" "${execs:-?}" "${newi:-?}" "${total:-?}" "$result")")
done < <(git grep -n --no-color -E '^func Fuzz[A-Za-z0-9_]*\(' -- '*_test.go' | sed -E 's/^([^:]*):[0-9]+:func (Fuzz[A-Za-z0-9_]*)\(.*/\1:\2/')
echo
printf '%s\n' "${summary[@]}"
exit $failed
