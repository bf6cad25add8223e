#!/usr/bin/env bash
# Benchmark of `protoreg can-i-deploy` on the example estate (proto-examples: acme.users.v1
# depending on acme.common.v1): 10 versions of acme.users.v1 (a field added each time), 50
# caller services deployed in one environment pinned round-robin to them, and the server
# built from the latest version asking whether it may be deployed — 50 counterparts, each a
# check of stored descriptors (no compile). Prints the end-to-end time of the command
# (median and max of RUNS, default 20) and the server-side time of the request.
# Usage: bench/can-i-deploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-20}
cargo build --release --quiet -p protoreg
bin=$PWD/target/release/protoreg
run=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$run"; }
trap cleanup EXIT
"$bin" serve --listen 127.0.0.1:0 --database "sqlite://$run/bench.db" >"$run/out" 2>"$run/err" &
pid=$!
for _ in $(seq 200); do grep -q listening "$run/out" 2>/dev/null && break; sleep 0.05; done
base=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$run/out")
export PROTOREG_REGISTRY=$base
cd "$run"
"$bin" push "$OLDPWD/proto-examples/common" --subject acme.common.v1 >/dev/null
cp -r "$OLDPWD/proto-examples/users" users
file=$(find users -name 'users.proto' | head -1)
for v in $(seq 1 10); do
  if [ "$v" -gt 1 ]; then
    # a new optional message at the end of the file each time: compatible
    printf '\nmessage BenchAddition%s {\n  string note = 1;\n}\n' "$v" >>"$file"
  fi
  "$bin" push users --subject acme.users.v1 --dep acme.common.v1 >/dev/null
  "$bin" pin "acme.users.v1@$v" --calls --lock "caller-v$v.lock" >/dev/null
done
for i in $(seq 1 50); do
  v=$(( (i - 1) % 10 + 1 ))
  "$bin" record-deployment --service "caller-$i" --env production --lock "caller-v$v.lock" >/dev/null
done
"$bin" pin acme.users.v1@10 --lock server.lock >/dev/null
s=$(date +%s%N)
"$bin" can-i-deploy --service users --env production --lock server.lock --error-format json >answer.json
e=$(date +%s%N)
python3 -c 'import json,sys; a=json.load(open("answer.json")); print("answer:", a["answer"], "counterparts:", len(a["matrix"]))'
echo "first can-i-deploy (10 stored versions decoded): $(( (e - s) / 1000000 )) ms"
times=()
for _ in $(seq "$runs"); do
  s=$(date +%s%N)
  "$bin" can-i-deploy --service users --env production --lock server.lock >/dev/null
  e=$(date +%s%N)
  times+=("$(( (e - s) / 1000000 ))")
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
echo "can-i-deploy (50 counterparts), end to end: median $(echo "$sorted" | sed -n "$(( (runs + 1) / 2 ))p") ms, max $(echo "$sorted" | tail -1) ms over $runs runs"
body=$(python3 -c 'import json; l=json.load(open("server.lock")); print(json.dumps({"service":"users","pins":[{"subject":l["subject"],"version":l["version"],"digest":l["digest"],"role":"serves"}]}))')
for round in 1 2; do
  curl -s -o /dev/null -w "%{time_total}\n" -X POST -H 'Content-Type: application/json' -d "$body" "$base/v1/environments/production/can-i-deploy" \
    | awk -v r="$round" '{printf "request only (repeat %s): %.1f ms\n", r, $1*1000}'
done
