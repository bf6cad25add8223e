#!/usr/bin/env bash
# Benchmark of the Confluent API on this machine: registration latency (p50/p99) of a
# 3-file schema (a file importing two referenced files and a well-known type) as a
# serializer registers it on a producer's first use (a new subject each time), and as
# successive compatible versions of one subject (each compiled and checked BACKWARD); and
# GET /schemas/ids/{id} per second with 64 concurrent connections (wrk).
# Usage: bench/confluent.sh [sqlite|postgres] [REGISTRATIONS] (default sqlite 300).
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
n=${2:-300}
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || { echo "wrk is needed (apt-get install wrk)"; exit 1; }; }
cargo build --release --quiet
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
case $backend in
  sqlite) db="sqlite://$work/bench.db" ;;
  postgres) db=${PROTOREG_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test} ;;
  *) echo "backend: sqlite or postgres"; exit 1 ;;
esac
./target/release/protoreg serve --listen 127.0.0.1:0 --database "$db" >"$work/out" 2>"${PROTOREG_BENCH_LOG:-/dev/null}" &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
base=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/out")
tag="b$$x$(date +%s)"
id=$(python3 - "$base" "$tag" "$n" <<'PY'
import json, sys, time, urllib.request
base, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def post(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())
money = f'syntax = "proto3";\npackage {tag}.common;\nmessage Money {{ string currency = 1; int64 units = 2; int32 nanos = 3; }}\n'
address = f'syntax = "proto3";\npackage {tag}.common;\nmessage Address {{ string street = 1; string city = 2; string country = 3; }}\n'
refs = []
for name, text in [(f"{tag}/money.proto", money), (f"{tag}/address.proto", address)]:
    r = post(f"/subjects/{urllib.parse.quote(name, safe='')}/versions", {"schema": text, "schemaType": "PROTOBUF"})
    refs.append({"name": name, "subject": name, "version": r["version"]})
def order_text(i):
    return (f'syntax = "proto3";\npackage {tag}.orders;\nimport "{tag}/money.proto";\nimport "{tag}/address.proto";\n'
            f'import "google/protobuf/timestamp.proto";\n'
            f'message Order {{\n  string id = 1;\n  {tag}.common.Money total = 2;\n  {tag}.common.Address ship_to = 3;\n'
            f'  google.protobuf.Timestamp created_at = 4;\n  // registration {i}\n}}\n')
def report(what, lat):
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))]
    print(f"{what}: p50 {pct(0.50):.1f} ms, p99 {pct(0.99):.1f} ms, max {lat[-1]:.1f} ms", file=sys.stderr)
lat = []
for i in range(n):
    t = time.perf_counter()
    post(f"/subjects/{tag}-topic{i}-value/versions", {"schema": order_text(i), "schemaType": "PROTOBUF", "references": refs})
    lat.append((time.perf_counter() - t) * 1000)
report(f"serializer registration of a 3-file schema ({n} producers, a new subject each)", lat)
lat, last = [], None
for i in range(n):
    t = time.perf_counter()
    last = post(f"/subjects/{tag}-orders-value/versions", {"schema": order_text(i), "schemaType": "PROTOBUF", "references": refs})
    lat.append((time.perf_counter() - t) * 1000)
report(f"{n} successive versions of one subject, each checked BACKWARD", lat)
print(last["id"])
PY
)
wrk -t2 -c64 -d10s "$base/schemas/ids/$id" | sed -n 's/^Requests\/sec: *\(.*\)/GET \/schemas\/ids\/{id} (64 connections, 10 s): \1 req\/s/p; s/^ *Latency *\([^ ]*\) *\([^ ]*\) *\([^ ]*\).*/  latency avg \1, stdev \2, max \3/p'
