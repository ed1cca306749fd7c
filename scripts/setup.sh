#!/usr/bin/env bash
# Installs what faceveil needs to build and run, idempotently; fast when everything is already present.
#  - Debian packages: FFmpeg development libraries, the ffmpeg CLI (tests generate media with it),
#    clang/libclang (bindgen for ffmpeg-sys-next), pkg-config, python3-pip (to fetch the ONNX Runtime wheel).
#  - ONNX Runtime's shared library from the `onnxruntime` wheel on PyPI, checked against a pinned SHA-256,
#    kept in .ort/lib/ (ignored by git). faceveil finds it there without any environment variable.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_VERSION=1.31.1
case "$(uname -m)" in
  x86_64)
    ORT_PLATFORM=manylinux_2_28_x86_64
    ORT_WHEEL_SHA256=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
    ORT_LIB_SHA256=fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3 ;;
  aarch64)
    ORT_PLATFORM=manylinux_2_28_aarch64
    ORT_WHEEL_SHA256=da05378364c44d4407e463982d2bf8d5e4cfea873283757e48beeb41df97b7f3
    ORT_LIB_SHA256=8aa3b76b28c778a2b1dd660d34161adb1d508c9ccd04ff9dc80e26eca5df8467 ;;
  *) echo "setup: no pinned ONNX Runtime wheel for $(uname -m)" >&2; exit 1 ;;
esac

log() { echo "setup: $*" >&2; }

# --- Debian packages -------------------------------------------------------------------------------
PKGS=(pkg-config clang libclang-dev ffmpeg libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
      libswresample-dev libavfilter-dev libavdevice-dev python3-pip unzip)
# The test suite's browser test (the review page) drives Debian's headless Chromium through chromedriver.
[ "${FACEVEIL_BROWSER:-0}" = 1 ] && PKGS+=(chromium chromium-driver)
# The Slurm test runs the shipped job array through a one-machine Slurm (deploy/slurm-local.sh).
[ "${FACEVEIL_SLURM:-0}" = 1 ] && PKGS+=(slurmctld slurmd slurm-client munge)
# The GStreamer element (gst/): GStreamer 1.22's development files, gst-launch-1.0 and the usual plugins
# (x264enc is in -ugly, the FFmpeg decoders in -libav).
[ "${FACEVEIL_GST:-0}" = 1 ] && PKGS+=(libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
  gstreamer1.0-libav)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  log "cargo not found: install the Rust toolchain (rustup, Rust >= 1.85) first"; exit 1
fi

# --- ONNX Runtime shared library -----------------------------------------------------------------------
LIBDIR=.ort/lib
LIB="$LIBDIR/libonnxruntime.so.$ORT_VERSION"
sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }
if ! sha_ok "$LIB" "$ORT_LIB_SHA256"; then
  log "fetching onnxruntime==$ORT_VERSION ($ORT_PLATFORM) from PyPI"
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  PIP="python3 -m pip"
  $PIP download -q --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
      --platform "$ORT_PLATFORM" -d "$tmp" "onnxruntime==$ORT_VERSION"
  wheel=$(ls "$tmp"/onnxruntime-*.whl)
  if ! sha_ok "$wheel" "$ORT_WHEEL_SHA256"; then
    log "$wheel: SHA-256 mismatch (expected $ORT_WHEEL_SHA256)"; exit 1
  fi
  mkdir -p "$LIBDIR"
  unzip -o -q -j "$wheel" "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" -d "$tmp/lib"
  sha_ok "$tmp/lib/libonnxruntime.so.$ORT_VERSION" "$ORT_LIB_SHA256" || { log "library SHA-256 mismatch"; exit 1; }
  mv "$tmp/lib/libonnxruntime.so.$ORT_VERSION" "$LIB"
fi
ln -sfn "libonnxruntime.so.$ORT_VERSION" "$LIBDIR/libonnxruntime.so"
ln -sfn "libonnxruntime.so.$ORT_VERSION" "$LIBDIR/libonnxruntime.so.1"
log "ONNX Runtime $ORT_VERSION ready in $LIBDIR"

# --- Optional: the OpenVINO build of ONNX Runtime, for `--runtime openvino` (bf16; x86-64) ---------------------
# Not the default (the judge shows bf16 losing faces), so fetched only with FACEVEIL_OPENVINO=1. The files faceveil
# needs from the onnxruntime-openvino wheel (its library, the OpenVINO provider, OpenVINO's core, CPU plugin and
# ONNX reader, TBB) are kept together in .ort/openvino/.
OV_VERSION=1.24.1
OV_WHEEL_SHA256=3007c803634cc69c6d52af1dea7ce729d9bb62b9a11070fd2f959119199007a8
OVDIR=.ort/openvino
OV_FILES=(libonnxruntime.so.$OV_VERSION libonnxruntime_providers_shared.so libonnxruntime_providers_openvino.so
          libopenvino.so.2541 libopenvino_onnx_frontend.so.2541 libopenvino_intel_cpu_plugin.so libtbb.so.12
          libtbbmalloc.so)
if [ "${FACEVEIL_OPENVINO:-0}" = 1 ] && [ "$(uname -m)" = x86_64 ]; then
  if [ ! -f "$OVDIR/.complete-$OV_VERSION" ]; then
    log "fetching onnxruntime-openvino==$OV_VERSION from PyPI"
    ovtmp=$(mktemp -d)
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
        --platform manylinux_2_28_x86_64 -d "$ovtmp" "onnxruntime-openvino==$OV_VERSION"
    wheel=$(ls "$ovtmp"/onnxruntime_openvino-*.whl)
    if ! sha_ok "$wheel" "$OV_WHEEL_SHA256"; then
      log "$wheel: SHA-256 mismatch (expected $OV_WHEEL_SHA256)"; rm -rf "$ovtmp"; exit 1
    fi
    mkdir -p "$OVDIR"
    unzip -o -q -j "$wheel" "${OV_FILES[@]/#/onnxruntime/capi/}" -d "$OVDIR"
    rm -rf "$ovtmp"
    touch "$OVDIR/.complete-$OV_VERSION"
  fi
  ln -sfn "libonnxruntime.so.$OV_VERSION" "$OVDIR/libonnxruntime.so"
  log "OpenVINO build of ONNX Runtime $OV_VERSION ready in $OVDIR"
fi
