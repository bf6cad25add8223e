#!/usr/bin/env bash
# Benchmark: `protoreg breaking` vs `buf breaking` (1.75, from npm) on two published versions
# of the googleapis protos (../shared/bench/corpus.sh), in the same run on the same machine.
# Prints wall time and peak memory (median of RUNS runs) and whether both tools report the
# same findings. Usage: bench/breaking.sh [WORKDIR] (default target/bench); RUNS=3.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/bench}
runs=${RUNS:-3}
mkdir -p "$work"
work=$(cd "$work" && pwd)
bash ../shared/bench/corpus.sh "$work/corpus" >/dev/null
if [ ! -x "$work/buf/node_modules/.bin/buf" ]; then
  mkdir -p "$work/buf"
  npm install --prefix "$work/buf" --silent --no-audit --no-fund @bufbuild/buf@1.75.0 >/dev/null
fi
buf="$work/buf/node_modules/.bin/buf"
cargo build --release --quiet
protoreg="$PWD/target/release/protoreg"
echo "corpus: $(find "$work/corpus/old" -name '*.proto' | wc -l) -> $(find "$work/corpus/new" -name '*.proto' | wc -l) files; $(nproc) cores"

measure() { # name, output file, command...
  local name=$1 out=$2; shift 2
  local times=() mems=()
  for _ in $(seq "$runs"); do
    local t
    /usr/bin/time -o "$out.time" -f "%e %M" "$@" --error-format json >"$out" 2>"$out.err" || true
    t=$(tail -n 1 "$out.time")
    times+=("${t% *}"); mems+=("${t#* }")
  done
  local mt mm
  mt=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
  mm=$(printf '%s\n' "${mems[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
  printf '%-10s wall %7.2f s   peak RSS %6d MiB   findings %s\n' "$name" "$mt" $(( mm / 1024 )) "$(wc -l <"$out")"
  echo "$mt $mm" >"$out.stats"
}
cd "$work/corpus"
measure buf "$work/buf.jsonl" "$buf" breaking new --against old
measure protoreg "$work/protoreg.jsonl" "$protoreg" breaking new --against old
python3 - "$work/buf.jsonl" "$work/protoreg.jsonl" <<'PY'
import json, sys
from collections import Counter
def load(p): return [json.loads(l) for l in open(p) if l.strip()]
key = lambda f: (f.get("type"), f.get("path"), f.get("start_line"), f.get("start_column"), f.get("end_line"), f.get("end_column"))
b, p = Counter(map(key, load(sys.argv[1]))), Counter(map(key, load(sys.argv[2])))
both = sum((b & p).values())
print(f"same findings (type, path, span): {both} of {sum(b.values())} buf / {sum(p.values())} protoreg; only buf {sum((b - p).values())}, only protoreg {sum((p - b).values())}")
PY
read -r bt bm <"$work/buf.jsonl.stats"; read -r pt pm <"$work/protoreg.jsonl.stats"
python3 -c "print('protoreg/buf: wall {:.0%}, memory {:.0%}'.format($pt / $bt, $pm / $bm))"
