# Shared by the .ci scripts (sourced, not run): stage timing, the packages a
# fresh Debian 12 needs, toolchain detection and the configure step.

ferry_src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# stage NAME COMMAND...: runs the command and prints "stage NAME: N s"; a
# failing command ends the script (set -e), and the EXIT trap names the stage.
ferry_stage_name=""
ferry_stage_t0=0
ferry_stage_report() {
  local rc=$?
  if [[ $rc -ne 0 && -n $ferry_stage_name ]]; then
    echo "stage $ferry_stage_name: FAILED (exit $rc) after $((SECONDS - ferry_stage_t0)) s" >&2
  fi
  return 0 # the script still exits with rc: an EXIT trap keeps the status
}
trap ferry_stage_report EXIT
stage() {
  ferry_stage_name=$1
  shift
  ferry_stage_t0=$SECONDS
  echo "--- stage $ferry_stage_name"
  "$@"
  echo "stage $ferry_stage_name: $((SECONDS - ferry_stage_t0)) s"
  ferry_stage_name=""
}

# Debian 12 packages: compilers and CMake, hwloc, Criterion, OpenCL with
# PoCL, HIP's compiler and runtime headers, what the scripts use, and the
# Python binding's test environment (venv, NumPy, PyTorch 1.13, pytest).
ferry_packages=(
  build-essential cmake pkg-config git file python3 clang-format
  libhwloc-dev hwloc libcriterion-dev
  ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo
  hipcc libamdhip64-dev
  python3-venv python3-setuptools python3-numpy python3-torch python3-pytest
)

# What the benchmark's plot and peers use on top (matplotlib; torchvision
# for timm, which comes from PyPI).
ferry_bench_packages=(python3-matplotlib python3-torchvision)

# ferry_install_deps [EXTRA PACKAGE...]
ferry_install_deps() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "not root: skipping apt-get; these Debian packages must be installed:"
    echo "  ${ferry_packages[*]} $*"
    return 0
  fi
  local log=${TMPDIR:-/tmp}/ferry-apt.log
  export DEBIAN_FRONTEND=noninteractive
  # None of these packages has Recommends that ferry needs.
  if ! { apt-get update -q &&
    apt-get install -y -q --no-install-recommends "${ferry_packages[@]}" "$@"; } \
    >"$log" 2>&1 </dev/null; then
    tail -n 40 "$log" >&2
    echo "apt-get failed (full log: $log)" >&2
    return 1
  fi
  echo "installed: ${ferry_packages[*]} $*"
}

# nvcc lives outside PATH on the CI image.
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi

# ferry_configure BUILD_DIR [CMAKE_ARGS...]: every backend whose toolchain is
# here, unless CMAKE_ARGS switch it off; the output says which and why.
ferry_configure() {
  local dir=$1
  shift
  local args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) extra=" $* "
  if [[ $extra == *" -DFERRY_ENABLE_CUDA=OFF "* ]]; then
    echo "cuda: off (this build)"
  elif command -v nvcc >/dev/null; then
    args+=(-DFERRY_ENABLE_CUDA=ON
      -DFERRY_CUDA_ARCHITECTURES="${FERRY_CUDA_ARCHITECTURES:-90}")
    echo "cuda: on ($(command -v nvcc))"
  else
    args+=(-DFERRY_ENABLE_CUDA=OFF)
    echo "cuda: off (no nvcc on PATH or in /usr/local/cuda/bin)"
  fi
  if [[ $extra == *" -DFERRY_ENABLE_HIP=OFF "* ]]; then
    echo "hip: off (this build)"
  elif command -v hipcc >/dev/null; then
    args+=(-DFERRY_ENABLE_HIP=ON
      -DFERRY_HIP_TARGETS="${FERRY_HIP_TARGETS:-gfx90a}")
    echo "hip: on ($(command -v hipcc))"
  else
    args+=(-DFERRY_ENABLE_HIP=OFF)
    echo "hip: off (no hipcc)"
  fi
  if [[ -f /usr/include/CL/cl.h ]] && pkg-config --exists OpenCL; then
    args+=(-DFERRY_ENABLE_OPENCL=ON)
    echo "opencl: on"
  else
    args+=(-DFERRY_ENABLE_OPENCL=OFF)
    echo "opencl: off (no OpenCL headers or ICD loader)"
  fi
  cmake -S "$ferry_src" -B "$dir" "${args[@]}" "$@"
}

ferry_build() {
  cmake --build "$1" -j "$(nproc)"
}
