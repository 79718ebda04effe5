#!/usr/bin/env bash
# The GPU scaling table of bench/RESULTS.md, as one command on a lent GPU machine (same carried files as
# bench/gpu_check.sh): ours on the gpu backend against PyTorch CUDA (preloaded, eager) at batch 64, 256 and 1024, and
# with the generator twice as wide, on the same data (bench/.data). Each measurement is its own process; ours runs 10
# steps per call (one submission, losses read back per call), PyTorch is timed in chunks of 10 steps ending with
# torch.cuda.synchronize(). Prints a markdown table last; the JSON lines go to $OUT (or .gpucheck/).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-.gpucheck}"
mkdir -p "$out"
. bench/device_setup.sh
nvidia-smi -L

row() { # label, batch, width_mult, steps, steps per call (ours)
  local o t
  o=$(timeout 90 /tmp/deno run -A bench/ours_bench.ts --backend gpu --batch_size "$2" --width_mult "$3" --steps "$4" \
    --warmup 20 --per_call "${5:-10}" --json 2>>"$out/scaling.log" | tail -n 1)
  t=$(timeout 90 python3 bench/reference/gan_torch.py --device cuda --mode preloaded --batch_size "$2" --width_mult "$3" \
    --steps "$4" --warmup 20 --chunk 10 --json 2>>"$out/scaling.log" | tail -n 1)
  echo "$o" >>"$out/scaling.jsonl"
  echo "$t" >>"$out/scaling.jsonl"
  python3 -c '
import json, sys
label, o, t = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    o, t = json.loads(o), json.loads(t)
    om, tm = o["ms_per_step_median"], t["ms_per_step_median"]
    print("| %s | %.3f | %.3f | %.1fx | %.0f |" % (label, tm, om, tm / om, o["batch_size"] * 1000 / om))
except Exception as e:
    print("| %s | failed: %s |" % (label, e))
' "$1" "$o" "$t" | tee -a "$out/scaling.md"
}
echo "| workload | PyTorch CUDA preloaded ms/step | ours gpu ms/step | speed-up | ours images/s |" | tee "$out/scaling.md"
echo "| --- | ---: | ---: | ---: | ---: |" | tee -a "$out/scaling.md"
row "batch 64" 64 1 600
row "batch 256" 256 1 300
row "batch 1024" 1024 1 270 9 # 10 batches per epoch: 9 steps per call leaves calls without the short batch
row "batch 64, G twice as wide" 64 2 400
echo
cat "$out/scaling.md"
