#!/usr/bin/env bash
# Speed check of a change: `protoreg breaking` and `protoreg build` on the googleapis pair
# (../shared/bench/corpus.sh) with the binary of REV (default: main's previous landing,
# HEAD~1) and the working tree's, alternating, in the same run. Prints the median wall time
# and peak RSS of RUNS runs (default 5) each.
# Usage: bench/before-after.sh [REV] [WORKDIR]   (WORKDIR default target/bench)
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:-HEAD~1}
work=${2:-target/bench}
runs=${RUNS:-5}
mkdir -p "$work"
work=$(cd "$work" && pwd)
bash ../shared/bench/corpus.sh "$work/corpus" >/dev/null
if [ -z "${REUSE:-}" ]; then  # REUSE=1: time the binaries built by the previous run
  tree="$work/before-tree"
  rm -rf "$tree"
  git worktree prune
  git worktree add -f "$tree" "$rev" -q
  (cd "$tree" && cargo build --release -q --target-dir "$work/before-target")
  cp "$work/before-target/release/protoreg" "$work/protoreg-before"
  git worktree remove -f "$tree"
  cargo build --release -q
  cp target/release/protoreg "$work/protoreg-after"
fi
cd "$work/corpus"
declare -A t m
for i in $(seq "$runs"); do
  for side in before after; do
    for job in breaking build; do
      # build writes a file: binaries before 2026-11-25 renamed their output over /dev/null.
      if [ "$job" = breaking ]; then args=(breaking new --against old --error-format json); else args=(build new -o "$work/build-out.binpb"); fi
      /usr/bin/time -o "$work/time" -f "%e %M" "$work/protoreg-$side" "${args[@]}" >/dev/null 2>&1 || true
      read -r secs kb < <(tail -n 1 "$work/time")
      t[$side.$job]+="$secs "; m[$side.$job]+="$kb "
    done
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | sed -n "$(( (runs + 1) / 2 ))p"; }
echo "googleapis $(find old -name '*.proto' | wc -l) -> $(find new -name '*.proto' | wc -l) files, $runs runs, $(nproc) cores; before = $rev"
for job in breaking build; do
  for side in before after; do
    printf '%-9s %-7s wall %6.2f s   peak RSS %5d MiB\n' "$job" "$side" \
      "$(echo "${t[$side.$job]}" | median)" $(( $(echo "${m[$side.$job]}" | median) / 1024 ))
  done
done
