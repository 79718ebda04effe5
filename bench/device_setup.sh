# Sourced by the device scripts (bench/gpu_check.sh, gpu_scaling.sh, gpu_b1024.sh, gpu_split_sweep.sh) on a lent GPU
# machine where nothing can be installed: unpacks the carried Vulkan loader (.gl/*.deb), points Vulkan at the NVIDIA
# driver when its ICD file is not in the standard place, unpacks the carried deno (.devbin/deno.xz) to /tmp/deno, and
# uses the carried release library; defines torch_run (for the scripts that set $out).
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
if ! ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
xz -dc .devbin/deno.xz >/tmp/deno && chmod +x /tmp/deno
export GAN_NATIVE_LIB="$PWD/native/target/release/libgan_native.so"

# PyTorch's seed GAN on CUDA (bench/reference/gan_torch.py, the machine's own torch) with the given arguments: one line
# "label | ms/step median, steps/s, card, torch" appended to $out/summary.txt, the JSON to $out/torch.jsonl.
torch_run() { # label, args...
  local label=$1
  shift
  local j
  j=$(timeout 90 python3 bench/reference/gan_torch.py --device cuda --json "$@" 2>>"$out/torch.log" | tail -n 1)
  echo "$j" >>"$out/torch.jsonl"
  echo "$label | $(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("ms/step median %.3f, steps/s %.1f, %s, torch %s" % (d["ms_per_step_median"], d["steps_per_s"], d.get("device_name"), d["torch"]))' "$j" 2>/dev/null || echo "failed: see torch.log")" | tee -a "$out/summary.txt"
}
