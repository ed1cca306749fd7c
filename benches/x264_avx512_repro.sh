#!/usr/bin/env bash
# libx264's AVX-512 code reads heap memory it never wrote: the same frames give another H.264 stream when the
# heap's leftover bytes differ. No faceveil involved: the ffmpeg command alone, on a generated clip, with glibc's
# MALLOC_PERTURB_ filling new and freed heap memory with a chosen byte. On a CPU with AVX-512 the first two
# lines differ; with libx264's CPU flags less AVX-512 (what faceveil passes, `asm=` below) they are the same.
# On a CPU without AVX-512 all four lines are the same. Bisected on options (docs/performance.md, 2026-12-05):
# it needs MB-tree with B-frames (no-mbtree, bframes=0, rc-lookahead=0 or constant QP: the same stream).
#
#   bash benches/x264_avx512_repro.sh
set -euo pipefail
encode() { # perturb byte, extra ffmpeg options...
  local byte=$1; shift
  MALLOC_PERTURB_=$byte ffmpeg -nostdin -v error -f lavfi -i "testsrc2=size=826x540:rate=25" -frames:v 60 \
    -vf "noise=alls=8:allf=t" -c:v libx264 -preset medium -crf 18 -threads 1 "$@" -fflags +bitexact -f h264 - |
    md5sum | cut -d' ' -f1
}
# x264.h: AVX-512 is bit 16; every flag up to AVX2 (MMX … SSE4.2, AVX, FMA3, BMI1/2, AVX2) is 62463.
echo "default CPU flags, heap byte 165: $(encode 165)"
echo "default CPU flags, heap byte 7:   $(encode 7)"
# Forcing flags the CPU lacks would crash libx264: only where the CPU has them all.
if grep -qw avx2 /proc/cpuinfo && grep -qw bmi2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  echo "flags up to AVX2,  heap byte 165: $(encode 165 -x264-params asm=62463)"
  echo "flags up to AVX2,  heap byte 7:   $(encode 7 -x264-params asm=62463)"
fi
