#!/usr/bin/env bash
# Benchmark of the registry at googleapis scale (../shared/bench/corpus.sh `old/`, ~5.5k
# files): push of the whole corpus as one subject, a re-push of identical content, a push
# with a few files changed and how much the database grows for it, reading the large
# descriptor set back, and read latency of another subject while a push compiles.
# (Reads per second of a typical descriptor: bench/registry.sh.)
# Usage: bench/registry-scale.sh [sqlite|postgres] [WORKDIR] (default sqlite target/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
work=${2:-target/bench}
mkdir -p "$work"
work=$(cd "$work" && pwd)
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || { echo "wrk is needed (apt-get install wrk)"; exit 1; }; }
bash ../shared/bench/corpus.sh "$work/corpus" >/dev/null
cargo build --release --quiet -p protoreg
bin=$PWD/target/release/protoreg
run=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$run"; }
trap cleanup EXIT
[ -n "${KEEP_LOG:-}" ] && trap 'cp "$run/err" "$KEEP_LOG"; cleanup' EXIT
case $backend in
  sqlite) db="sqlite://$run/bench.db" ;;
  postgres)
    pg=${PROTOREG_BENCH_POSTGRES_ADMIN:-postgres://postgres@127.0.0.1:5432/test}
    name=protoreg_bench_$$
    psql "$pg" -qc "CREATE DATABASE $name" >/dev/null
    db="${pg%/*}/$name"
    trap 'cleanup; psql "$pg" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null' EXIT
    ;;
  *) echo "backend: sqlite or postgres"; exit 1 ;;
esac
start_server() {
  "$bin" serve --listen 127.0.0.1:0 --database "$db" >"$run/out" 2>>"$run/err" &
  pid=$!
  for _ in $(seq 200); do grep -q listening "$run/out" 2>/dev/null && break; sleep 0.05; done
  base=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$run/out")
  export PROTOREG_REGISTRY=$base
}
start_server
# The database's size: SQLite's pages (after a WAL checkpoint) or PostgreSQL's tables.
db_bytes() {
  case $backend in
    sqlite) python3 -c "
import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute('PRAGMA wal_checkpoint(TRUNCATE)')
print(c.execute('PRAGMA page_count').fetchone()[0] * c.execute('PRAGMA page_size').fetchone()[0] - c.execute('PRAGMA freelist_count').fetchone()[0] * c.execute('PRAGMA page_size').fetchone()[0])" "$run/bench.db" ;;
    postgres) psql "$db" -Atc "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'" ;;
  esac
}
now() { date +%s.%N; }
ms() { python3 -c "import sys; print(f'{(float(sys.argv[2]) - float(sys.argv[1])) * 1000:.0f} ms')" "$1" "$2"; }
mod=$run/module
cp -r "$work/corpus/old" "$mod"
files=$(find "$mod" -name '*.proto' | wc -l)
text=$(find "$mod" -name '*.proto' -print0 | du -cb --files0-from=- | tail -1 | cut -f1)
echo "corpus: $files files, $((text / 1000000)) MB of text; backend $backend; $(nproc) cores"
# This machine's speed drifts: a compile of the corpus alone, to read the figures against.
t0=$(now); "$bin" build "$mod" -o "$run/gauge.binpb"; t1=$(now); rm -f "$run/gauge.binpb"
echo "gauge: protoreg build of the corpus $(ms "$t0" "$t1")"
empty=$(db_bytes)
t0=$(now); "$bin" push "$mod" --subject googleapis >/dev/null; t1=$(now)
echo "push of the corpus (compile, store; client gzip included): $(ms "$t0" "$t1")"
first=$(db_bytes)
echo "database after it: $(( (first - empty) / 1000000 )) MB"
t0=$(now); "$bin" push "$mod" --subject googleapis | grep -q unchanged; t1=$(now)
echo "re-push of identical content: $(ms "$t0" "$t1")"
# A compatible change under the default policy (BACKWARD, FILE): checked against the
# version before it.
printf '\nmessage BenchCompatible {\n  string note = 1;\n}\n' >>"$mod/google/type/date.proto"
t0=$(now); "$bin" push "$mod" --subject googleapis >/dev/null; t1=$(now)
echo "push of a compatible change, checked BACKWARD against the previous version: $(ms "$t0" "$t1")"
first=$(db_bytes)
curl -s -X PUT -H 'content-type: application/json' -d '{"mode":"NONE"}' "$base/v1/subjects/googleapis/config" >/dev/null
changed=0
for f in google/type/money.proto google/api/http.proto google/rpc/status.proto; do
  printf '\nmessage BenchExtra%s {\n  string note = 1;\n}\n' "${#f}" >>"$mod/$f"
  changed=$((changed + $(stat -c %s "$mod/$f")))
done
t0=$(now); "$bin" push "$mod" --subject googleapis >/dev/null; t1=$(now)
second=$(db_bytes)
grow=$((second - first))
echo "push with 3 files changed ($changed bytes of text): $(ms "$t0" "$t1"); database grew $grow bytes ($(python3 -c "print(f'{$grow / $changed:.2f}')")x the changed files)"
# The whole descriptor set of the second version (about 65 MB): served from the cache.
t0=$(now); curl -s -o /dev/null "$base/v1/subjects/googleapis/versions/3/descriptor"; t1=$(now)
t2=$(now); curl -s -o /dev/null "$base/v1/subjects/googleapis/versions/3/descriptor"; t3=$(now)
echo "descriptor of the third version: first read $(ms "$t0" "$t1") (assembled from blobs), then $(ms "$t2" "$t3")"
# Reads while another version compiles: latency of reading a small subject's descriptor
# (wrk --latency, 8 connections) during a push of the corpus.
"$bin" push proto-examples/common --subject acme.common.v1 >/dev/null
printf '\nmessage BenchExtraLast {\n  string note = 1;\n}\n' >>"$mod/google/type/date.proto"
"$bin" push "$mod" --subject googleapis >/dev/null &
push_pid=$!
sleep 0.3
wrk -t1 -c8 -d3s --latency "$base/v1/subjects/acme.common.v1/versions/1/descriptor" >"$run/wrk2" 2>&1
wait $push_pid
echo "reads of a version during a push: p50 $(sed -n 's/^ *50% *//p' "$run/wrk2"), p99 $(sed -n 's/^ *99% *//p' "$run/wrk2")"
# After a restart nothing is decoded yet: the push decodes the version it is checked
# against beside its own compile.
curl -s -X PUT -H 'content-type: application/json' -d '{"mode":"BACKWARD"}' "$base/v1/subjects/googleapis/config" >/dev/null
kill "$pid"; wait "$pid" 2>/dev/null || true
rm -f "$run/out"
start_server
printf '\nmessage BenchAfterRestart {\n  string note = 1;\n}\n' >>"$mod/google/type/date.proto"
t0=$(now); "$bin" push "$mod" --subject googleapis >/dev/null; t1=$(now)
echo "push of a compatible change right after a restart (BACKWARD): $(ms "$t0" "$t1")"
