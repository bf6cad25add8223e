#!/usr/bin/env bash
# Benchmark of the pinned gRPC demo: the pin check's cost at start (3 starts), and unary
# GetUser throughput/latency over one HTTP/2 connection with 64 concurrent streams.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p protoreg -p protoreg-demo
bin=$PWD/target/release
work=$(mktemp -d)
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
pids=()
trap cleanup EXIT
wait_line() { for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return; sleep 0.05; done; echo "timeout waiting for $2 in $1"; exit 1; }
"$bin/protoreg" serve --listen 127.0.0.1:0 --database "sqlite://$work/r.db" >"$work/registry.out" 2>/dev/null & pids+=($!)
wait_line "$work/registry.out" listening
export PROTOREG_REGISTRY=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/registry.out")
"$bin/protoreg" push proto-examples/common --subject acme.common.v1 >/dev/null
"$bin/protoreg" push proto-examples/users --subject acme.users.v1 >/dev/null
(cd "$work" && "$bin/protoreg" pin acme.users.v1 >/dev/null)
for i in 1 2 3; do
  (cd "$work" && timeout 3 "$bin/protoreg-demo-server" --listen 127.0.0.1:0 2>/dev/null | grep -m1 '^pin:' || true)
done
(cd "$work" && "$bin/protoreg-demo-server" --listen 127.0.0.1:0 >"$work/demo.out" 2>/dev/null) & pids+=($!)
wait_line "$work/demo.out" listening
addr=$(sed -n 's/.*listening on \(.*\)/\1/p' "$work/demo.out")
"$bin/protoreg-demo-client" --addr "http://$addr" bench --concurrency 64 --seconds 10
