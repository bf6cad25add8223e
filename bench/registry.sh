#!/usr/bin/env bash
# Benchmark of the registry on this machine: push+check latency (p50/p99) of the example
# estate (each push compiles 4 files with imports and checks them against the previous
# version), and reads of /versions/latest/descriptor per second with 64 concurrent
# connections (wrk). Usage: bench/registry.sh [sqlite|postgres] [PUSHES] (default sqlite 200).
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
pushes=${2:-200}
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || { echo "wrk is needed (apt-get install wrk)"; exit 1; }; }
cargo build --release --quiet
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
case $backend in
  sqlite) db="sqlite://$work/bench.db" ;;
  postgres) db=${PROTOREG_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test} ;;
  *) echo "backend: sqlite or postgres"; exit 1 ;;
esac
./target/release/protoreg serve --listen 127.0.0.1:0 --database "$db" >"$work/out" 2>/dev/null &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
base=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/out")
subject="bench.$$.$(date +%s)"
python3 - "$base" "$subject" "$pushes" <<'PY'
import json, os, sys, time, urllib.request
base, subject, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = {}
for module in ["common", "orders", "payments", "users"]:
    module_root = os.path.join("proto-examples", module)
    for root, _, names in os.walk(module_root):
        for name in names:
            p = os.path.join(root, name)
            files[os.path.relpath(p, module_root)] = open(p).read()
lat = []
for i in range(n):
    body = dict(files)
    body["acme/users/v1/users.proto"] = files["acme/users/v1/users.proto"] + f"\n// push {i}\n"
    req = urllib.request.Request(f"{base}/v1/subjects/{subject}/versions", data=json.dumps({"files": body}).encode(), headers={"Content-Type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        assert r.status == 201, r.status
    lat.append((time.perf_counter() - t) * 1000)
lat.sort()
pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))]
print(f"push+check ({len(files)} files, {n} sequential pushes): p50 {pct(0.50):.1f} ms, p99 {pct(0.99):.1f} ms, max {lat[-1]:.1f} ms")
PY
wrk -t2 -c64 -d10s "$base/v1/subjects/$subject/versions/latest/descriptor" | sed -n 's/^Requests\/sec: *\(.*\)/descriptor reads (64 connections, 10 s): \1 req\/s/p; s/^ *Latency *\([^ ]*\) *\([^ ]*\) *\([^ ]*\).*/  latency avg \1, stdev \2, max \3/p'
