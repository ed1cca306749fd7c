#!/usr/bin/env bash
# The video detection schedule judged on annotated stills: every picture of an annotated folder (read from
# ../shared/eval at run time, never copied) becomes a short clip (12 frames of it with light temporal noise,
# lossless), is redacted as video, and one frame of the output (FRAME, default 0: the first, which the
# schedule covers only through its look-ahead) is judged against the folder's gt.json with the judge's
# `images` check. Face coverage by size band of the *video* path, which judge_all's image rows (photos) do not
# measure.
#
#   bash benches/stills_as_video.sh                       # wider_dev and dlib_pascal_faces, bright/dim/night
#   FRAME=6 bash benches/stills_as_video.sh -- --small-detector centerface
#
# Needs scripts/setup.sh, a release build and the judge's Python packages (../shared/tools/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=../shared
OUT=${OUT:-target/stills-as-video}
BIN=${BIN:-target/release/faceveil}
FRAME=${FRAME:-0}
EXTRA=()
if [ "${1:-}" = "--" ]; then shift; EXTRA=("$@"); fi
[ -x "$BIN" ] || cargo build --release --bins
mkdir -p "$OUT/src"
for set in wider_dev dlib_pascal_faces; do
  for light in bright dim night; do
    src="$SHARED/eval/images/$set"
    if [ "$light" != bright ]; then
      dark="$OUT/src/$set-$light"
      opts=(); [ "$light" = night ] && opts=(--stops 5 --noise 4)
      [ -d "$dark" ] || python3 "$SHARED/tools/make_dark.py" "$src" "$dark" "${opts[@]}" >/dev/null
      src=$dark
    fi
    red="$OUT/red/$set-$light"
    mkdir -p "$red" "$OUT/clips/$set-$light"
    for img in "$src"/*.jpg; do
      stem=$(basename "${img%.*}")
      clip="$OUT/clips/$set-$light/$stem.mkv"
      [ -s "$clip" ] || ffmpeg -nostdin -loglevel error -y -loop 1 -framerate 25 -i "$img" -frames:v 12 \
        -vf "crop=trunc(iw/2)*2:trunc(ih/2)*2,noise=alls=2:allf=t,format=yuv444p" -c:v libx264 -qp 0 -preset ultrafast "$clip"
      "$BIN" redact "$clip" -o "$OUT/red/$stem.mkv" --overwrite --crf 0 "${EXTRA[@]}" 2>/dev/null
      ffmpeg -nostdin -loglevel error -y -i "$OUT/red/$stem.mkv" -vf "select=eq(n\,$FRAME)" -frames:v 1 "$red/$stem.png"
    done
    # The judge compares with the stills the clips were made of (cropped to even sizes the same way).
    ref="$OUT/ref/$set-$light"
    mkdir -p "$ref"
    for img in "$src"/*.jpg; do
      # Lossless PNG content under the still's own name (the judge finds originals by gt.json's names).
      ffmpeg -nostdin -loglevel error -y -i "$img" -vf "crop=trunc(iw/2)*2:trunc(ih/2)*2" -c:v png -f image2 \
        "$ref/$(basename "$img")"
    done
    cp "$src/gt.json" "$ref/gt.json"
    python3 "$SHARED/tools/judge.py" images --orig "$ref" --redacted "$red" --gt "$ref/gt.json" \
      --json "$OUT/$set-$light.json" >/dev/null
    python3 - "$OUT/$set-$light.json" "$set $light" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); b = d['by_height']
band = lambda ks: f"{sum(b[k]['covered'] for k in ks if k in b)}/{sum(b[k]['faces'] for k in ks if k in b)}"
big = [k for k in b if k not in ('<10', '10-20')]
print(f"{sys.argv[2]:<26} <10 {band(['<10'])}  10-20 {band(['10-20'])}  >=20 {band(big)}  over-redaction "
      f"{d['over_redaction_smoothed_mean']:.4f} (unexplained {d['over_redaction_unexplained_mean']:.4f})")
PY
  done
done
