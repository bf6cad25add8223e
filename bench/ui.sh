#!/usr/bin/env bash
# Benchmark of the web UI at googleapis scale (../shared/bench/corpus.sh: two releases,
# ~5.5k files each, ~2.7k findings between them): server-side time of the version page, a
# file page, and the diff page of the two releases, each asked twice (first and warm). The
# pages are asked after a restart of the server (nothing decoded in memory), once the push
# has computed the release's default diff in the background.
# Usage: bench/ui.sh [WORKDIR] (default target/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/bench}
mkdir -p "$work"
work=$(cd "$work" && pwd)
bash ../shared/bench/corpus.sh "$work/corpus" >/dev/null
cargo build --release --quiet -p protoreg
bin=$PWD/target/release/protoreg
run=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$run"; }
trap cleanup EXIT
RUST_LOG=${RUST_LOG:-info} "$bin" serve --listen 127.0.0.1:0 --database "sqlite://$run/bench.db" >"$run/out" 2>"$run/err" &
pid=$!
for _ in $(seq 200); do grep -q listening "$run/out" 2>/dev/null && break; sleep 0.05; done
base=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$run/out")
export PROTOREG_REGISTRY=$base
curl -sf -X PUT "$base/v1/subjects/googleapis/config" -d '{"mode": "NONE"}' >/dev/null
"$bin" push "$work/corpus/old" --subject googleapis >/dev/null
"$bin" push "$work/corpus/new" --subject googleapis >/dev/null
file=$(cd "$work/corpus/new" && find google/pubsub -name '*.proto' | sort | head -1)
# The push of the new release computes its diff against the old one in the background.
for _ in $(seq 600); do grep -q "diff computed" "$run/err" 2>/dev/null && break; sleep 0.1; done
grep -h "diff computed" "$run/err" | sed "s/.*INFO //" || true
kill "$pid"; wait "$pid" 2>/dev/null || true
RUST_LOG=${RUST_LOG:-info} "$bin" serve --listen 127.0.0.1:0 --database "sqlite://$run/bench.db" >"$run/out" 2>"$run/err" &
pid=$!
for _ in $(seq 200); do grep -q listening "$run/out" 2>/dev/null && break; sleep 0.05; done
base=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$run/out")
echo "server restarted: pages asked with nothing in memory"
page() { # name path
  for round in first warm; do
    curl -s -o "$run/page.html" -w "%{http_code} %{time_total} %{size_download}\n" "$base$2" \
      | awk -v n="$1" -v r="$round" '{printf "%-12s %-5s HTTP %s  %6.0f ms  %8.0f KB\n", n, r, $1, $2*1000, $3/1024}'
  done
}
page version "/ui/subjects/googleapis/versions/2"
page file "/ui/subjects/googleapis/versions/2/files/$file"
page diff "/ui/subjects/googleapis/diff?from=1&to=2"
grep -h "diff computed" "$run/err" | sed "s/.*INFO //" || true
