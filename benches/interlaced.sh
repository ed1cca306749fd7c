#!/usr/bin/env bash
# Interlaced video (archived CCTV from DVRs, broadcast 576i/1080i): the hand-held clips of benches/handheld.sh
# at 50 fps, woven two frames to one (the even lines from the earlier frame, top field first) into 25 fps
# interlaced clips, redacted, and judged field by field: every field of the original and of the output,
# line-doubled to full height, goes to the independent judge's video check (judge.py video).
#
#   bash benches/interlaced.sh                      # faceveil's defaults, bright and dim
#   BIN=/path/to/other/faceveil TAG=old bash benches/interlaced.sh
#   LIGHTS="night" bash benches/interlaced.sh -- --tile-period 6
#
# Prints, per light level: leaked face-fields (two detectors agreeing in brackets) of the face-fields checked,
# the judge's median share of the background changed, and the wall time of the redaction. Results in
# target/interlaced/results-$TAG.txt. Needs what benches/handheld.sh needs; it makes the 50 fps clips first.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/interlaced
BIN=${BIN:-target/release/faceveil}
TAG=${TAG:-default}
LIGHTS=${LIGHTS:-"bright dim"}
EXTRA=()
if [ "${1:-}" = "--" ]; then shift; EXTRA=("$@"); fi
mkdir -p "$OUT"
[ -x "$BIN" ] || cargo build --release --bins
# The 50 fps hand-held clips (benches/handheld.sh makes them, and judges them as they are).
for light in $LIGHTS; do
  [ -s "target/handheld/src/$light-50fps.mp4" ] || FPS=50 LIGHTS=$light BIN="$BIN" bash benches/handheld.sh >/dev/null
done
# Every field, line-doubled to a full-height picture: what a viewer's deinterlacer shows, field by field.
fields() { ffmpeg -nostdin -v error -y -i "$1" -vf "separatefields,scale=1280:720:flags=neighbor" -c:v libx264 -crf 12 "$2"; }
: >"$OUT/results-$TAG.txt"
for light in $LIGHTS; do
  src="target/handheld/src/$light-50fps.mp4" woven="$OUT/$light-25i.mkv"
  if [ ! -s "$woven" ]; then
    ffmpeg -nostdin -v error -y -i "$src" -vf "tinterlace=mode=interleave_top,setfield=tff" -an \
      -c:v libx264 -crf 16 -flags +ilme+ildct -x264-params tff=1 "$woven"
    fields "$woven" "$OUT/$light-25i-fields.mkv"
  fi
  out="$OUT/$light-$TAG.mkv"
  start=$(date +%s%N)
  "$BIN" redact "$woven" -o "$out" --overwrite ${EXTRA[@]+"${EXTRA[@]}"} 2>/dev/null
  wall=$(( ($(date +%s%N) - start) / 1000000 ))
  fields "$out" "$OUT/$light-$TAG-fields.mkv"
  python3 ../shared/tools/judge.py video --orig "$OUT/$light-25i-fields.mkv" --redacted "$OUT/$light-$TAG-fields.mkv" \
    --json "$OUT/$light-$TAG.json" >/dev/null 2>&1
  python3 - "$OUT/$light-$TAG.json" "$light" "$wall" <<'EOF' | tee -a "$OUT/results-$TAG.txt"
import json, sys
j = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:6s} leaked face-fields {j['leaked_face_frames']} ({j.get('leaked_confirmed')}) of "
      f"{j['face_frames_checked']}, background changed (median) {j['background_changed_fraction_median']:.3f}, "
      f"redaction {int(sys.argv[3]) / 1000:.1f} s")
EOF
done
