#!/bin/bash
# Every value kept, measured: the README's main command for MNIST, the quick profile, the main
# command again, the quick profile again; JSON per run (seconds, steps that reused, cache bytes).
set -e
cd "$(dirname "$0")/.."
W=$(mktemp -d)
export DAGSTER_HOME=$W/home CLUSTERING_DAG_CACHE_DIR=$W/cache CLUSTERING_DAG_DATA_DIR="${CLUSTERING_DAG_DATA_DIR:-$PWD/../shared/data}"
mkdir -p $DAGSTER_HOME && touch $DAGSTER_HOME/dagster.yaml && .venv/bin/dagster instance migrate >/dev/null
echo "# $(date -u +%F) commit $(git rev-parse --short HEAD), $(nproc) cores; cache $W/cache"
run() {
  local name=$1; shift
  local t0=$(date +%s.%N)
  .venv/bin/dagster asset materialize -m clustering_dag.definitions --select '*' --partition mnist "$@" > $W/$name.log 2>&1
  local t1=$(date +%s.%N)
  local reused=$(grep -c '"reused": true\|reusing the value' $W/$name.log || true)
  echo "{\"run\": \"$name\", \"seconds\": $(echo "$t1 - $t0" | bc), \"steps_reusing\": $reused, \"cache_bytes\": $(du -sb $W/cache | cut -f1)}"
}
run main
run quick -c clustering_dag/profiles/quick.yaml
run main_again
run quick_again -c clustering_dag/profiles/quick.yaml
.venv/bin/python -m clustering_dag.cache list --asset paper/trained_vae
.venv/bin/python -m clustering_dag.report | head -12
.venv/bin/python -m clustering_dag.report --profile quick | head -12
