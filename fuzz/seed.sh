#!/usr/bin/env bash
# Seeds the fuzz corpora (fuzz/corpus/TARGET, not committed) with tiny valid inputs made here: small clips
# in the containers and codecs archives hold, stills, a report and a summary written by faceveil itself.
# Needs scripts/setup.sh (ffmpeg CLI, ONNX Runtime) and a release build (cargo build --release --bins).
set -euo pipefail
cd "$(dirname "$0")/.."
c=fuzz/corpus
mkdir -p "$c/media_bytes" "$c/centerface_output" "$c/report_json"
ff() { ffmpeg -nostdin -loglevel error -y "$@"; }
src=(-f lavfi -i "testsrc2=size=48x32:rate=10" -t 0.3)
m="$c/media_bytes"
ff "${src[@]}" -c:v libx264 -preset ultrafast "$m/h264.mp4"
ff "${src[@]}" -f lavfi -i "sine=d=0.3" -c:v libx264 -preset ultrafast -c:a aac -shortest -f mpegts "$m/h264-aac.ts"
ff "${src[@]}" -c:v ffv1 "$m/ffv1.mkv"
ff "${src[@]}" -c:v mjpeg "$m/mjpeg.avi"
ff "${src[@]}" -c:v libvpx "$m/vp8.webm"
ff "${src[@]}" -c:v mpeg2video -f mpeg "$m/mpeg2.mpg"
ff "${src[@]}" -vf interlace -c:v libx264 -flags +ildct+ilme "$m/interlaced.mkv"
ff -f lavfi -i "testsrc2=size=48x32" -frames:v 1 "$m/still.png"
ff -f lavfi -i "testsrc2=size=48x32" -frames:v 1 "$m/still.jpg"
ff "${src[@]}" "$m/anim.gif"
# A CenterFace output: an 8x8 grid for a 32x32 picture, threshold 0.5, one hot cell, small scales/offsets.
python3 - "$c/centerface_output/one-face" <<'P'
import struct, sys
head = bytes([7, 7, 31, 0, 31, 0, 128, 0])
vals = [0.0] * 64 + [0.5] * 128 + [0.2] * 128
vals[27] = 0.9
open(sys.argv[1], "wb").write(head + b"".join(struct.pack("<f", v) for v in vals))
P
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/in"
cp "$m/h264.mp4" "$tmp/in/clip.mp4"
target/release/faceveil batch "$tmp/in" -o "$tmp/out" --progress none -q
cp "$tmp/out/clip.mp4.faceveil.json" "$c/report_json/report.json"
cp "$tmp/out/faceveil-summary.json" "$c/report_json/summary.json"
printf '2/7' > "$c/report_json/shard"
echo "seeded: $(ls "$c"/* | wc -l) files under $c"
