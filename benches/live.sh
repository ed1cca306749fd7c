#!/usr/bin/env bash
# A live camera on this machine: the hand-held clip of benches/handheld.sh (bright, 720p, 25 and 50 fps), looped
# to 64 s and fed to `faceveil stream` at its own pace through a pipe, as a camera would send it
# (`ffmpeg -re … -f mpegts - | faceveil stream - --realtime on`). Every region of it changes in every frame:
# the live schedule's worst case.
#
#   bash benches/live.sh                 # 25 and 50 fps
#   FPS="25" bash benches/live.sh        # one rate
#   JUDGE=1 bash benches/live.sh         # also the judge's video check (one 16 s pass of the clip per rate)
#   HOLD=3 JUDGE=1 bash benches/live.sh  # every run held at effort level 3 (--hold-effort): the lowest effort judged
#   ARGS="--preset veryfast" bash benches/live.sh  # more options for every `faceveil stream` run
#
# Prints, per rate: frames analysed with reduced effort, frames covered, the real-time factor (media time over
# the run's time; fed at its pace a run cannot exceed 1, and the factor counts the start and the last frames'
# latency), the latency p50/p95 from `--report` and the segments' size; then the same clip fed as fast as it
# can be read, whose factor is what the machine sustains at the effort it settles on. Results in
# target/live/results.txt.
# Needs scripts/setup.sh and a release build; JUDGE=1 also the judge's Python packages (../shared/tools/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/live
BIN=${BIN:-target/release/faceveil}
RATES=${FPS:-"25 50"}
HOLD_ARGS=()
if [ -n "${HOLD:-}" ]; then HOLD_ARGS=(--hold-effort "$HOLD"); fi
read -r -a EXTRA_ARGS <<<"${ARGS:-}"
mkdir -p "$OUT"
[ -x "$BIN" ] || cargo build --release --bins

summary() { # report.json label segment-prefix
  python3 - "$1" "$2" "$3" <<'PY'
import glob, json, os, sys
r = json.load(open(sys.argv[1]))
levels = "/".join(str(n) for n in r.get('frames_by_effort', [])[1:])
size = sum(os.path.getsize(f) for f in glob.glob(sys.argv[3] + '-*.mkv')) / 1e6
print(f"{sys.argv[2]}: {r['frames_degraded']}/{r['frames']} reduced effort (levels 1/2/3: {levels}), {r['frames_covered']} covered, "
      f"real-time factor {r['realtime_factor']:.2f}, latency p50/p95 {r['latency_ms_p50']}/{r['latency_ms_p95']} ms, "
      f"segments {size:.1f} MB")
PY
}

: > "$OUT/results.txt"
for fps in $RATES; do
  src=target/handheld/src/bright-${fps}fps.mp4
  [ -s "$src" ] || (FPS=$fps LIGHTS=bright bash benches/handheld.sh >/dev/null)
  loop="$OUT/bright-${fps}fps-64s.mkv"
  [ -s "$loop" ] || ffmpeg -nostdin -loglevel error -y -stream_loop 3 -i "$src" -c copy "$loop"
  rm -f "$OUT"/paced-*.mkv "$OUT"/fast-*.mkv
  ffmpeg -nostdin -loglevel error -re -i "$loop" -c copy -f mpegts - |
    "$BIN" stream - -o "$OUT/paced-{n}.mkv" --segment-time 10 --realtime on "${HOLD_ARGS[@]}" "${EXTRA_ARGS[@]}" --report "$OUT/paced-$fps.json" \
      2>"$OUT/paced-$fps.log"
  summary "$OUT/paced-$fps.json" "${fps} fps, 64 s, paced" "$OUT/paced" | tee -a "$OUT/results.txt"
  "$BIN" stream "$loop" -o "$OUT/fast-{n}.mkv" --segment-time 10 --realtime on "${HOLD_ARGS[@]}" "${EXTRA_ARGS[@]}" --report "$OUT/fast-$fps.json" \
    2>"$OUT/fast-$fps.log"
  summary "$OUT/fast-$fps.json" "${fps} fps, 64 s, as fast as read" "$OUT/fast" | tee -a "$OUT/results.txt"
  if [ -n "${JUDGE:-}" ]; then
    rm -f "$OUT"/judged-*.mkv
    ffmpeg -nostdin -loglevel error -re -i "$src" -c copy -f mpegts - |
      "$BIN" stream - -o "$OUT/judged-{n}.mkv" --segment-time 1000 --realtime on "${HOLD_ARGS[@]}" "${EXTRA_ARGS[@]}" 2>/dev/null
    python3 ../shared/tools/judge.py video --orig "$src" --redacted "$OUT/judged-00000.mkv" \
      --json "$OUT/judge-$fps.json" >/dev/null
    python3 - "$OUT/judge-$fps.json" "$fps" <<'PY' | tee -a "$OUT/results.txt"
import json, sys
j = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]} fps, 16 s, paced, judged: leaked face-frames {j['leaked_face_frames']}/{j['face_frames_checked']} "
      f"({j['leaked_confirmed']} confirmed by two detectors), background changed {j['background_changed_fraction_median']:.2f}")
PY
  fi
done
