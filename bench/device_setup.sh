# Sourced by the device scripts (bench/gpu_check.sh, gpu_scaling.sh, gpu_b1024.sh, gpu_split_sweep.sh) on a lent GPU
# machine where nothing can be installed: unpacks the carried Vulkan loader (.gl/*.deb), points Vulkan at the NVIDIA
# driver when its ICD file is not in the standard place, unpacks the carried deno (.devbin/deno.xz) to /tmp/deno, and
# uses the carried release library.
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
if ! ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
xz -dc .devbin/deno.xz >/tmp/deno && chmod +x /tmp/deno
export GAN_NATIVE_LIB="$PWD/native/target/release/libgan_native.so"
