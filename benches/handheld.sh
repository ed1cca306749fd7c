#!/usr/bin/env bash
# Small faces under a hand-held camera: the independent judge's video check on clips made at run time from the
# annotated wider_dev stills in ../shared/eval (read there, never copied into the repository). Each still is
# scaled to 1344 px wide and a 1280x720 window sways and shakes over it as a hand-held camera does (three
# sines: up to ~14 px per frame at 25 fps), 4 s per still, 25 fps (FPS=50 for a 50 fps camera: same motion
# per second); bright, dim and night copies (../shared/tools/make_dark.py, the judge's own light levels) with
# temporal sensor noise. Every region changes in every frame, so nothing is reused: the schedule's worst case.
#
#   bash benches/handheld.sh                          # faceveil's defaults
#   TAG=p6 bash benches/handheld.sh -- --tile-period 6 --bridge-frames 5
#   LIGHTS="night" bash benches/handheld.sh           # one light level
#
# Prints, per light level: leaked face-frames / face-frames checked (judge.py video, default --min-face), the
# wall time of the redaction, and faceveil's own counts. Results in target/handheld/results-$TAG.txt.
# Needs scripts/setup.sh, a release build and the judge's Python packages (../shared/tools/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=../shared
OUT=target/handheld
BIN=${BIN:-target/release/faceveil}
TAG=${TAG:-default}
FPS=${FPS:-25}
LIGHTS=${LIGHTS:-"bright dim night"}
EXTRA=()
if [ "${1:-}" = "--" ]; then shift; EXTRA=("$@"); fi
mkdir -p "$OUT/src"
[ -x "$BIN" ] || cargo build --release --bins

make_clip() { # light: the stills (bright, or a make_dark.py copy) made into one hand-held clip
  local light=$1 dir="$SHARED/eval/images/wider_dev" clip="$OUT/src/$1-${FPS}fps.mp4"
  [ -s "$clip" ] && return
  case "$light" in
    dim) python3 "$SHARED/tools/make_dark.py" "$dir" "$OUT/src/dim-stills" >/dev/null; dir="$OUT/src/dim-stills" ;;
    night) python3 "$SHARED/tools/make_dark.py" "$dir" "$OUT/src/night-stills" --stops 5 --noise 4 >/dev/null
      dir="$OUT/src/night-stills" ;;
  esac
  local parts=() i=0
  for img in "$dir"/*.jpg; do
    local part="$OUT/src/$light-$i-${FPS}fps.mp4"
    # A different phase per still, so every still sees the whole range of motion.
    local x="32+24*sin(2*PI*0.7*t+$i)+6*sin(2*PI*3.1*t+2*$i)+3*sin(2*PI*7.3*t)"
    local y="32+16*sin(2*PI*0.5*t+2*$i)+5*sin(2*PI*2.7*t+$i)+3*sin(2*PI*6.1*t)"
    ffmpeg -nostdin -loglevel error -y -loop 1 -framerate "$FPS" -t 4 -i "$img" \
      -vf "scale=1344:-2,pad=1344:max(784\,ih):0:0,crop=1280:720:x='$x':y='$y',setsar=1,noise=alls=3:allf=t,format=yuv420p" \
      -c:v libx264 -preset veryfast -crf 14 -r "$FPS" "$part"
    parts+=(-i "$part"); i=$((i + 1))
  done
  local n=$(( ${#parts[@]} / 2 ))
  local inputs=$(for k in $(seq 0 $((n - 1))); do printf '[%d:v]' "$k"; done)
  ffmpeg -nostdin -loglevel error -y "${parts[@]}" -filter_complex "${inputs}concat=n=$n:v=1:a=0[v]" -map "[v]" \
    -c:v libx264 -preset veryfast -crf 14 "$clip"
}

: > "$OUT/results-$TAG.txt"
for light in $LIGHTS; do
  make_clip "$light"
  src="$OUT/src/$light-${FPS}fps.mp4" red="$OUT/out-$TAG-$light-${FPS}fps.mkv" js="$OUT/judge-$TAG-$light-${FPS}fps.json"
  /usr/bin/time -f "%e" -o "$OUT/time-$TAG.txt" "$BIN" redact "$src" -o "$red" --overwrite "${EXTRA[@]}" 2>"$OUT/last-$TAG.log"
  python3 "$SHARED/tools/judge.py" video --orig "$src" --redacted "$red" --json "$js" >/dev/null
  python3 - "$js" "$light" "$(tail -1 "$OUT/time-$TAG.txt")" "$TAG" "$(grep -o '[0-9]* detection(s)' "$OUT/last-$TAG.log")" <<'PY' | tee -a "$OUT/results-$TAG.txt"
import json, sys
d = json.load(open(sys.argv[1]))
mm = d["integrity"].get("mismatches", [])
print(f"{sys.argv[4]} {sys.argv[2]}: leaked face-frames {d['leaked_face_frames']}/{d['face_frames_checked']}, "
      f"redaction {sys.argv[3]} s, {sys.argv[5]}, integrity {'ok' if not mm else mm}")
PY
done
