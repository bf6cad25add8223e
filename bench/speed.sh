#!/usr/bin/env bash
# Benchmark of issue 14's targets, buf measured in the same run: on the googleapis pair
# (../shared/bench/corpus.sh), `protoreg breaking new --against old` cold (empty cache) and
# without cache, warm (nothing changed), warm after editing 3 leaf files of the new side,
# after editing one widely imported file (google/api/annotations.proto); `protoreg build`
# cold; and `protoreg breaking --against-git HEAD` on proto-examples. Each line is the median
# wall time and peak RSS of RUNS runs (default 5).
# Usage: bench/speed.sh [WORKDIR]   (default target/bench; BUF=0 skips buf's runs)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=${1:-target/bench}
runs=${RUNS:-5}
mkdir -p "$work"
work=$(cd "$work" && pwd)
bash ../shared/bench/corpus.sh "$work/corpus" >/dev/null
buf="$repo/target/tools/buf-1.75.0/node_modules/.bin/buf"
if [ "${BUF:-1}" != 0 ] && [ ! -x "$buf" ]; then
  npm install --no-audit --no-fund --prefix target/tools/buf-1.75.0 @bufbuild/buf@1.75.0 >/dev/null
fi
cargo build --release --quiet
protoreg="$repo/target/release/protoreg"
export PROTOREG_CACHE_DIR="$work/speed-cache"

# A private copy of the pair: the edits below must not touch the shared corpus.
pair="$work/speed-pair"
rm -rf "$pair" && mkdir -p "$pair"
cp -r "$work/corpus/old" "$work/corpus/new" "$pair/"
cd "$pair"
# Three leaf files (imported by no file) of the new side.
mapfile -t leaves < <(comm -23 \
  <(cd new && find google/cloud -name '*.proto' | sort) \
  <(grep -rhoE '^import (public |weak )?"[^"]+"' --include='*.proto' new | sed -E 's/.*"(.+)"/\1/' | sort -u) \
  | awk 'NR % 97 == 1' | head -n 3)
for f in "${leaves[@]}"; do cp "new/$f" "new/$f.orig"; done
cp new/google/api/annotations.proto new/google/api/annotations.proto.orig
edit_leaves() { # distinct content each call: every run misses those files' units
  for f in "${leaves[@]}"; do
    { cat "new/$f.orig"; printf '\nmessage ProtoregSpeedEdit%s { string note = 1; }\n' "$1"; } >"new/$f"
  done
}
edit_shared() { { cat new/google/api/annotations.proto.orig; printf '\n// edit %s\n' "$1"; } >new/google/api/annotations.proto; }
restore() {
  for f in "${leaves[@]}"; do cp "new/$f.orig" "new/$f"; done
  cp new/google/api/annotations.proto.orig new/google/api/annotations.proto
}
# The .orig copies are not .proto files: invisible to both tools.

median() { tr ' ' '\n' | grep -v '^$' | sort -n | sed -n "$(( (runs + 1) / 2 ))p"; }
declare -A T M
measure() { # name, setup command (run before each timed run, untimed), command...
  local name=$1 setup=$2; shift 2
  local ts="" ms=""
  for i in $(seq "$runs"); do
    eval "$setup"
    /usr/bin/time -o "$work/time" -f "%e %M" "$@" >"$work/out.$name" 2>"$work/err.$name" || true
    read -r secs kb < <(tail -n 1 "$work/time")
    ts+="$secs "; ms+="$kb "
  done
  T[$name]=$(echo "$ts" | median); M[$name]=$(( $(echo "$ms" | median) / 1024 ))
  printf '%-34s %7.2f s  %6d MiB\n' "$name" "${T[$name]}" "${M[$name]}"
}

echo "googleapis $(find old -name '*.proto' | wc -l) -> $(find new -name '*.proto' | wc -l) files; $runs runs; $(nproc) cores; leaves: ${leaves[*]}"
restore
if [ "${BUF:-1}" != 0 ]; then
  measure "buf breaking" ":" "$buf" breaking new --against old --error-format json
  measure "buf build" ":" "$buf" build new -o "$work/buf.binpb"
fi
measure "breaking --no-cache" ":" "$protoreg" breaking new --against old --error-format json --no-cache
measure "breaking cold (empty cache)" "rm -rf '$PROTOREG_CACHE_DIR'" "$protoreg" breaking new --against old --error-format json
cp "$work/out.breaking cold (empty cache)" "$work/expected.jsonl"
measure "breaking warm (no change)" ":" "$protoreg" breaking new --against old --error-format json
cmp -s "$work/out.breaking warm (no change)" "$work/expected.jsonl" || { echo "warm output differs"; exit 1; }
n=0
measure "breaking warm, 3 leaf files edited" 'n=$((n+1)); edit_leaves $n' "$protoreg" breaking new --against old --error-format json
restore
"$protoreg" breaking new --against old --no-cache --error-format json >/dev/null || true
measure "breaking, annotations.proto edited" 'n=$((n+1)); edit_shared $n' "$protoreg" breaking new --against old --error-format json
restore
measure "build (cold)" ":" "$protoreg" build new -o "$work/protoreg.binpb"
cd "$repo/proto-examples"
measure "examples --against-git HEAD" ":" "$protoreg" breaking --against-git HEAD
measure "examples --against-git HEAD, no cache" ":" "$protoreg" breaking --against-git HEAD --no-cache
if [ "${BUF:-1}" != 0 ]; then
  python3 - "${T[buf breaking]}" "${M[buf breaking]}" "${T[breaking cold (empty cache)]}" "${M[breaking cold (empty cache)]}" "${T[buf build]}" "${T[build (cold)]}" <<'PY'
import sys
bt, bm, pt, pm, bb, pb = map(float, sys.argv[1:])
print(f"breaking cold / buf: wall {pt / bt:.1%} (target <= 10%), memory {pm:.0f} MiB (target <= 1,200 MB = 1,144 MiB)")
print(f"build / buf build: wall {pb / bb:.1%} (target <= 25%)")
PY
fi
