#!/usr/bin/env bash
# How the shipped artifacts in model/shipped/smollm2-135m/ were produced (issue: learn offline).
# Each stage is resumable: re-running a stage whose run folder has a checkpoint continues it.
# Usage: bench/train_shipped.sh compressor|compressor-more|compressor-cont|compressor-k16|compressor-mean|eval-compressor|reader|reader-expand|reader-v3|
#        reader-facts|reader-distill|reader-distill-v2|ship|ship-reader|eval
# (runs/ holds the runs)
set -euo pipefail
cd "$(dirname "$0")/.."
export LLOCO_MODEL_CACHE=${LLOCO_MODEL_CACHE:-.cache/models}
data=../shared/eval-data
shipped=model/shipped/smollm2-135m
lloco=.venv/bin/lloco
stage=${1:?stage: compressor, compressor-more, eval-compressor, reader, ship or eval}
resume() { [ -f "$1/trainer_state.pt" ] && echo --resume || true; }
case $stage in
compressor)  # kappa=8 summary vectors for 128-256-token segments (16-32x), next-segment LM + reconstruction
  $lloco train compressor --out runs/compressor-k8 --steps 200 --save-every 10 --lr 4e-4 --projection-lr 2e-4 \
    --summary-lr 1e-3 $(resume runs/compressor-k8) ;;
compressor-more)  # continue past the shipped 200 steps in a copy, so runs/compressor-k8 stays the shipped one;
  # --steps above the checkpoint's stretches the cosine schedule to the new end (STEPS, default 400)
  [ -d runs/compressor-k8-more ] || cp -r runs/compressor-k8 runs/compressor-k8-more
  $lloco train compressor --out runs/compressor-k8-more --steps "${STEPS:-400}" --save-every 10 --lr 4e-4 \
    --projection-lr 2e-4 --summary-lr 1e-3 --resume ;;
eval-compressor)  # (CHECKPOINT=runs/compressor-k8-more to measure the continued run)  # held-out perplexity gap at 32x, 16x and 8x
  for spec in "256 32" "128 24" "64 24"; do set -- $spec
    $lloco train eval-compressor --checkpoint "${CHECKPOINT:-runs/compressor-k8}" --pairs $2 --min-segment $1 --max-segment $1
  done ;;
reader)  # the reader adapter, on the compressor above (SQuAD, SQuAD-as-multiple-choice, NarrativeQA)
  # the default --unanswerable-share 0.1 caps SQuAD 2.0's "unanswerable" questions at a tenth of the mix
  # (the first shipped reader had their natural ~52 % and answered "unanswerable" to all of Qasper)
  $lloco --compressor runs/compressor-k8 train adapter --out runs/reader-k8 --examples 1200 --steps 150 \
    --batch-size 8 --save-every 25 $(resume runs/reader-k8) ;;
reader-expand)  # issue 10: the same reader mix and schedule, trained on lloco's expanded prompts (each context's
  # vectors followed by its question-relevant sentences, --expand-tokens = the expand_tokens setting, 128)
  $lloco train adapter --out runs/reader-expand --examples 1200 --steps 150 --batch-size 8 --save-every 25 \
    $(resume runs/reader-expand) ;;
reader-v3)  # issue 27: reader-expand's data, seed and schedule, trained on answers without their closing full stop
  # (model.train_adapter.answer_target), so the reader no longer learns that "." ends an answer
  $lloco train adapter --out runs/reader-v3 --examples 1200 --steps 150 --batch-size 8 --save-every 25 \
    $(resume runs/reader-v3) ;;
compressor-cont)  # issue 10: 60 more steps from the shipped compressor (--init-from: its weights, a fresh optimizer and
  # schedule at half its peak rates, new data order --seed 1), in two arms that differ only in --fact-weight:
  # ARM=plain (0) is the control, ARM=facts (4: number and name tokens count 5x in the reconstruction loss)
  arm=${ARM:?ARM=plain or ARM=facts}; weight=$([ "$arm" = facts ] && echo 4 || echo 0)
  $lloco train compressor --out runs/cont-$arm --init-from $shipped/compressor --steps 60 --save-every 10 --seed 1 \
    --lr 2e-4 --projection-lr 1e-4 --summary-lr 5e-4 --fact-weight $weight $(resume runs/cont-$arm) ;;
compressor-k16)  # issue 10, session 19: kappa = 16 (16x on 256-token chunks) as compressor-cont's control arm
  # (ARM=plain) but with twice the summary tokens, the shipped kappa-8 tokens repeated to start them
  # (--init-from widens); scored against runs/cont-plain by bench/fact_probe_ab.py
  $lloco train compressor --out runs/cont-k16 --init-from $shipped/compressor --kappa 16 --steps 60 --save-every 10 \
    --seed 1 --lr 2e-4 --projection-lr 1e-4 --summary-lr 5e-4 --fact-weight 0 $(resume runs/cont-k16) ;;
compressor-mean)  # issue 10, session 20: local vectors (--pooling mean: the segment's hidden states averaged over
  # kappa = 8 equal windows, one vector per 16-32 tokens) with the shipped compressor's own recipe, seed and steps
  # from scratch, so the two differ only in where the 8 vectors come from; scored against the shipped one by
  # bench/fact_probe_ab.py
  $lloco train compressor --out runs/compressor-mean --pooling mean --steps 200 --save-every 10 --lr 4e-4 \
    --projection-lr 2e-4 --summary-lr 1e-3 $(resume runs/compressor-mean) ;;
reader-facts)  # issue 10: reader-expand's recipe on the vectors of the fact-weighted compressor (runs/cont-facts)
  LLOCO_COMPRESSOR=runs/cont-facts $lloco train adapter --out runs/reader-facts --examples 1200 --steps 150 \
    --batch-size 8 --save-every 25 $(resume runs/reader-facts) ;;
reader-distill)  # issue 10: reader-expand's mix, schedule and seed plus the KL term to plain RAG's answer
  # distributions (the base decoder reading the same windows as text; xRAG), weight 1 (session 17: 5,660 s
  # on one CPU thread beside other work, teacher pass included; its QA runs: bench/lloco_vs_rag.sh with
  # LLOCO_ADAPTER=runs/reader-distill LLOCO_PREFIX_CACHE=false RUN_PREFIX=distill MODES=lloco,lloco-pure)
  $lloco train adapter --out runs/reader-distill --examples 1200 --steps 150 --batch-size 8 --save-every 25 \
    --distill-weight 1.0 $(resume runs/reader-distill) ;;
reader-distill-v2)  # issue 10, session 18: reader-distill with the fine-tuned text reader as the teacher (rag+reader:
  # the shipped reader v2 reading the text, which keeps the short answer style the base decoder's teacher lost)
  $lloco train adapter --out runs/reader-distill-v2 --examples 1200 --steps 150 --batch-size 8 --save-every 25 \
    --distill-weight 1.0 --distill-teacher $shipped/reader $(resume runs/reader-distill-v2) ;;
ship-reader)  # ship only a reader run (READER, default runs/reader-expand), with its log and curve
  reader=${READER:-runs/reader-expand}
  rm -rf $shipped/reader && mkdir -p $shipped/reader
  cp $reader/{adapter_config.json,adapter_model.safetensors,lloco_adapter.json,log.jsonl,loss.png} $shipped/reader/ ;;
ship)  # copy the inference files (not the optimizer state) into the package, with their logs and curves
  rm -rf $shipped && mkdir -p $shipped/compressor $shipped/reader
  cp -r runs/compressor-k8/{compressor.json,summary_embeddings.safetensors,lora,log.jsonl,loss.png} $shipped/compressor/
  rm -f $shipped/compressor/lora/README.md  # peft's generated boilerplate
  cp runs/reader-k8/{adapter_config.json,adapter_model.safetensors,lloco_adapter.json,log.jsonl,loss.png} $shipped/reader/ ;;
eval)  # lloco (shipped compressor + reader) vs plain rag on the target sets: the first questions of each file
  # (a superset of bench/baseline_runs.sh's); a home per shipped compressor, as its collections are built with it
  # (the 2026-11-23 figures: LLOCO_HOME=.cache/eval-home-shipped-20261123)
  export LLOCO_HOME=${LLOCO_HOME:-.cache/eval-home-shipped-$(sha256sum $shipped/compressor/summary_embeddings.safetensors | cut -c1-12)}
  run() { local name=$1 tokens=$2; shift 2
    $lloco --set max_new_tokens="$tokens" eval run --run-name "$name" --modes lloco,rag --top-k 4 "$@"; }
  run shipped-hotpotqa 32 --dataset hotpotqa --path $data/hotpotqa/hotpot_dev_sample50.json --limit 40
  run shipped-quality 16 --dataset quality --path $data/quality/quality.jsonl --limit 24
  run shipped-qasper 48 --dataset qasper --path $data/qasper/scientific_qa.jsonl --limit 24 ;;
*) echo "unknown stage $stage" >&2; exit 2 ;;
esac
