#!/usr/bin/env bash
# Prune a trained checkpoint into several candidates, fine-tune each for the same short
# budget, and record test top-1 before and after (Fashion-MNIST, CPU plugin). The CSV it
# writes is also the ground truth for `prunebench rank --truth`.
#
#   bash scripts/finetune-study.sh CHECKPOINT OUT_DIR STEPS CANDIDATE...
#   CANDIDATE = METHOD:RATIO[:ROUND_TO], e.g. l1:0.5 fpgm:0.7:8
# Writes OUT_DIR/study.csv and OUT_DIR/candidates/*.safetensors (pruned, before fine-tuning).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ck="$1"; dir="$2"; steps="$3"; shift 3
pb=target/release/prunebench
mkdir -p "$dir/candidates" "$dir/finetuned" "$dir/logs"
top1() { sed -n 's/.*top-1 \([0-9.]*\)%.*/\1/p' | tail -1; }
totals() { $pb info "$1" | awk '$1=="total"{print $2","$3}'; }
channels() { $pb info "$1" | head -1 | sed 's/.*\[\(.*\)\].*/\1/'; }
csv="$dir/study.csv"
echo "checkpoint,method,ratio,round_to,channels,params,macs,top1_before,top1_after,finetune_steps,finetune_seconds,train_images_per_s" > "$csv"
base=$($pb eval --checkpoint "$ck" --device cpu --batch 250 | top1)
echo "unpruned,none,0,1,\"$(channels "$ck")\",$(totals "$ck"),$base,$base,0,0," >> "$csv"
for c in "$@"; do
  IFS=: read -r method ratio round <<< "$c"; round="${round:-1}"
  name="$method-$ratio-r$round"
  p="$dir/candidates/$name.safetensors"
  $pb prune --checkpoint "$ck" --method "$method" --ratio "$ratio" --round-to "$round" --seed 0 --out "$p" > "$dir/logs/$name.prune.txt"
  before=$($pb eval --checkpoint "$p" --device cpu --batch 250 | top1)
  log="$dir/logs/$name.finetune.txt"
  $pb finetune --checkpoint "$p" --steps "$steps" --lr 0.01 --batch 128 --device cpu \
    --out "$dir/finetuned/$name.safetensors" > "$log" 2>&1
  after=$(top1 < "$log")
  secs=$(sed -n 's/.*steps ([0-9]* epochs, \([0-9]*\) s, .*/\1/p' "$log" | tail -1)
  rate=$(sed -n 's/.* s, \([0-9.]*\) img\/s).*/\1/p' "$log" | tail -1)
  echo "$name.safetensors,$method,$ratio,$round,\"$(channels "$p")\",$(totals "$p"),$before,$after,$steps,$secs,$rate" >> "$csv"
  echo "$name: top-1 $before% -> $after% ($steps steps, ${secs}s)"
done
echo "wrote $csv"
