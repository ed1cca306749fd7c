#!/usr/bin/env bash
# Throughput and peak memory of faceveil against deface 1.5.0 and the FFmpeg transcode floor, on generated
# 720p25 and 1080p25 clips (faces moving over an animated test pattern, with audio).
#
#   bash benches/compare.sh                 # RUNS=3 SECONDS_=20 by default; medians are reported
#   RUNS=5 SECONDS_=30 bash benches/compare.sh
#   SLOW_RUNS=1 bash benches/compare.sh     # faceveil's default settings only once per clip
#   STATIC=1 bash benches/compare.sh        # also a fixed-camera 720p clip (frozen background, same faces)
#   CLIPS= REAL=1 bash benches/compare.sh   # the real clip only (CLIPS lists generated ones: "1280x720:720p")
#   REAL=1 bash benches/compare.sh          # also a fixed-camera clip of real footage: the MOT20 dev clip
#                                           # (826x540, pedestrians seen from a fixed camera) looped to the
#                                           # clip length, read from ../shared/eval at run time (never copied)
#   HANDHELD=1 bash benches/compare.sh      # also the hand-held 720p25 clip of benches/handheld.sh (16 s, small
#                                           # faces from the annotated wider_dev stills under a swaying, shaking
#                                           # window; a tone added for audio), made by that script if missing
#   BEFORE=1 bash benches/compare.sh        # also faceveil-centerface: CenterFace on every pass (the schedule
#                                           # before issue 34, --small-detector centerface)
#   RUNTIMES=1 bash benches/compare.sh      # also faceveil-default on each runtime/precision: --runtime cpu,
#                                           # --runtime openvino (bf16; where scripts/setup.sh installed it),
#                                           # --precision int8
#
# Configurations (libx264 at faceveil's default preset, faster, and crf 18, audio copied, in all of them;
# PRESET=medium for the preset faceveil used before 2026-12-06):
#   faceveil-default   faceveil with its default settings: CenterFace (fp32) on the whole frame at half
#                      resolution, YuNet on the small-face tiles and focus crops (with CenterFace on dark tiles),
#                      x264 look-ahead capped at 10 frames, one decoder and one encoder thread per four cores
#                      (one here)
#   ffmpeg-floor       a plain decode + encode with faceveil's default encoder settings (rc-lookahead=10, and at
#                      faster subme=2, as faceveil's faster) and
#                      FFmpeg's own thread counts (3 decoder, 3 x264 threads here, the fastest): what any
#                      redactor has to pay; faceveil-default's "x floor" is against this one
#   faceveil-640       faceveil at deface's detection resolution and encoder settings: 640 px long side, no
#                      tiles, the fp32 model, x264's own look-ahead (20 frames at faster) and FFmpeg's thread
#                      count on 2 cores (3); faceveil's faster (subme 2)
#   deface             deface 1.5.0 from PyPI with onnxruntime at its defaults (CenterFace at the frame's own
#                      size), --ep CPUExecutionProvider: the reference of issue 14's targets ("x deface")
#   deface-640x360     the same with --scale 640x360 (deface at its fastest useful setting; SKIP_DEFACE_640=1
#                      leaves it out)
#   ffmpeg-floor-x264  the floor with x264's own settings (as deface and faceveil-640 use); their "x floor"
# The animated test pattern changes every region of the picture in every frame, so faceveil's reuse of
# unchanged regions (static cameras) never applies on the main clips: they are its worst case.
# Writes target/compare/results.md (the table) and results.csv (every run). Needs scripts/setup.sh and a
# release build; makes a virtualenv with deface, onnx and onnxruntime in target/bench-venv the first time
# (without onnx and onnxruntime deface silently falls back to a slower OpenCV backend).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SLOW_RUNS=${SLOW_RUNS:-$RUNS}
SECS=${SECONDS_:-20}
OUT=target/compare
BIN=target/release/faceveil
mkdir -p "$OUT"
[ -x "$BIN" ] || cargo build --release --bins
VENV=target/bench-venv
if ! "$VENV/bin/deface" --help >/dev/null 2>&1; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q deface==1.5.0 onnx onnxruntime==1.31.1
fi

REAL_SRC=../shared/eval/video/MOT20-05-raw_even_shorter_dlib.mp4
HANDHELD_SRC=target/handheld/src/bright-25fps.mp4
make_clip() { # size name: the background is the animated test pattern, or for *-static one frozen frame of it
  local size=$1 name=$2 face bg="[0:v]null[bg]"
  [ -s "$OUT/$name.mp4" ] && return
  if [ "$size" = handheld ]; then # the hand-held clip of benches/handheld.sh, as it is (its own length)
    [ -s "$HANDHELD_SRC" ] || LIGHTS=bright bash benches/handheld.sh
    ffmpeg -nostdin -loglevel error -y -i "$HANDHELD_SRC" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
      -map 0:v -map 1:a -shortest -c:v copy -c:a aac "$OUT/$name.mp4"
    return
  fi
  if [ "$size" = real ]; then # real fixed-camera footage, looped, with a tone for audio
    ffmpeg -nostdin -loglevel error -y -stream_loop -1 -i "$REAL_SRC" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
      -map 0:v -map 1:a -t "$SECS" -c:v libx264 -preset veryfast -crf 16 -pix_fmt yuv420p -c:a aac "$OUT/$name.mp4"
    return
  fi
  face=$(( ${size#*x} / 2 ))
  case "$name" in *static*) bg="[0:v]trim=end_frame=1,loop=loop=-1:size=1:start=0,setpts=N/25/TB[bg]" ;; esac
  ffmpeg -nostdin -loglevel error -y -f lavfi -i "testsrc2=size=$size:rate=25" -loop 1 -i assets/astronaut.png \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" -filter_complex \
    "$bg;[1:v]scale=$face:$face,split=3[a][b][c];[c]scale=$((face/3)):$((face/3))[c2];\
[bg][a]overlay=x='mod(t*60,W-w)':y=H/10[v1];[v1][b]overlay=x='W-w-mod(t*40,W-w)':y=H/3[v2];\
[v2][c2]overlay=x=W/2:y=H*0.7,format=yuv420p[v]" \
    -map "[v]" -map 2:a -t "$SECS" -c:v libx264 -preset veryfast -crf 16 -c:a aac "$OUT/$name.mp4"
}

PRESET=${PRESET:-faster}
ENC=(--crf 18 --preset "$PRESET")
# faceveil's own encoder settings for the floor: its `faster` refines motion at subme 2 (config::FASTER_SUBME).
FLOOR_PARAMS=rc-lookahead=10
[ "$PRESET" = faster ] && FLOOR_PARAMS=$FLOOR_PARAMS:subme=2
run() { # label clip command...
  local label=$1 clip=$2; shift 2
  local out="$OUT/out-$label-$clip.mp4" t
  rm -f "$out"
  /usr/bin/time -f "%e %M" -o "$OUT/time.txt" "$@" >/dev/null 2>"$OUT/last.log" || true
  t=$(tail -1 "$OUT/time.txt")
  if [ ! -s "$out" ]; then echo "$label on $clip failed:"; tail -5 "$OUT/last.log"; exit 1; fi
  # The runtime faceveil says it ran ("detector on ONNX Runtime CPU provider, fp32, libonnxruntime.so.1.31.1").
  local rt=$(grep -o 'detector on [^;]*' "$OUT/last.log" | head -1 | sed 's/detector on //; s/ONNX Runtime //; s/, */ /g')
  echo "$clip,$label,${t% *},${t#* },${rt:--},$FRAMES" | tee -a "$OUT/results.csv"
}

echo "clip,config,seconds,max_rss_kb,runtime,frames" > "$OUT/results.csv"
SPECS=${CLIPS-"1280x720:720p 1920x1080:1080p"}   # CLIPS="" with REAL=1: the real clip only
[ -n "${STATIC:-}" ] && SPECS="$SPECS 1280x720:720p-static"
[ -n "${REAL:-}" ] && [ -f "$REAL_SRC" ] && SPECS="$SPECS real:mot20-static"
[ -n "${HANDHELD:-}" ] && SPECS="$SPECS handheld:handheld"
for spec in $SPECS; do
  size=${spec%:*}; clip=${spec#*:}
  make_clip "$size" "$clip-${SECS}s"
  in="$OUT/$clip-${SECS}s.mp4"
  FRAMES=$(ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$in")
  for r in $(seq "$RUNS"); do
    run ffmpeg-floor "$clip" ffmpeg -nostdin -loglevel error -y -i "$in" -c:v libx264 -preset "$PRESET" -crf 18 \
      -x264-params "$FLOOR_PARAMS" -c:a copy "$OUT/out-ffmpeg-floor-$clip.mp4"
    run ffmpeg-floor-x264 "$clip" ffmpeg -nostdin -loglevel error -y -i "$in" -c:v libx264 -preset "$PRESET" -crf 18 \
      -c:a copy "$OUT/out-ffmpeg-floor-x264-$clip.mp4"
    [ "$r" -le "$SLOW_RUNS" ] && run faceveil-default "$clip" "$BIN" redact "$in" -o "$OUT/out-faceveil-default-$clip.mp4" "${ENC[@]}" --overwrite
    [ -n "${BEFORE:-}" ] && [ "$r" -le "$SLOW_RUNS" ] && run faceveil-centerface "$clip" "$BIN" redact "$in" \
      -o "$OUT/out-faceveil-centerface-$clip.mp4" "${ENC[@]}" --overwrite --small-detector centerface
    if [ -n "${RUNTIMES:-}" ] && [ "$r" -le "$SLOW_RUNS" ]; then
      run faceveil-cpu "$clip" "$BIN" redact "$in" -o "$OUT/out-faceveil-cpu-$clip.mp4" "${ENC[@]}" --overwrite --runtime cpu
      [ -f .ort/openvino/libonnxruntime.so ] && run faceveil-openvino-bf16 "$clip" "$BIN" redact "$in" \
        -o "$OUT/out-faceveil-openvino-bf16-$clip.mp4" "${ENC[@]}" --overwrite --runtime openvino
      run faceveil-int8 "$clip" "$BIN" redact "$in" -o "$OUT/out-faceveil-int8-$clip.mp4" "${ENC[@]}" --overwrite \
        --runtime cpu --precision int8
    fi
    run faceveil-640 "$clip" "$BIN" redact "$in" -o "$OUT/out-faceveil-640-$clip.mp4" "${ENC[@]}" --overwrite \
      --det-size 640 --tile-scale 0 --precision fp32 --lookahead 40 --codec-threads 3
    DEFACE_ENC='{"codec": "libx264", "quality": null, "ffmpeg_params": ["-preset", "'"$PRESET"'", "-crf", "18"]}'
    run deface "$clip" "$VENV/bin/deface" "$in" -o "$OUT/out-deface-$clip.mp4" --keep-audio \
      --ep CPUExecutionProvider --ffmpeg-config "$DEFACE_ENC"
    if [ -z "${SKIP_DEFACE_640:-}" ]; then
      run deface-640x360 "$clip" "$VENV/bin/deface" "$in" -o "$OUT/out-deface-640x360-$clip.mp4" --scale 640x360 \
        --keep-audio --ep CPUExecutionProvider --ffmpeg-config "$DEFACE_ENC"
    fi
  done
done

python3 - "$OUT" <<'PY'
import csv, statistics, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(f"{out}/results.csv")))
lines = ["| clip | config | runtime | runs | median s | fps | × floor time | × deface time | peak RSS MiB |",
         "|---|---|---|---|---|---|---|---|---|"]
for clip in dict.fromkeys(r["clip"] for r in rows):
    med = {}
    configs = ["ffmpeg-floor", "faceveil-default", "faceveil-centerface", "faceveil-cpu", "faceveil-openvino-bf16", "faceveil-int8",
               "ffmpeg-floor-x264", "faceveil-640", "deface", "deface-640x360"]
    for cfg in configs:
        rs = [r for r in rows if r["clip"] == clip and r["config"] == cfg]
        if rs:
            med[cfg] = (statistics.median(float(r["seconds"]) for r in rs), max(int(r["max_rss_kb"]) for r in rs),
                        len(rs), rs[0].get("runtime") or "-")
    frames = int(next(r for r in rows if r["clip"] == clip)["frames"])
    for cfg, (s, rss, n, rt) in med.items():
        # Each configuration against the floor with its own encoder settings.
        own = cfg.startswith("faceveil") and cfg != "faceveil-640"
        floor = med["ffmpeg-floor" if cfg == "ffmpeg-floor" or own else "ffmpeg-floor-x264"][0]
        # Time against deface at its defaults: under 1 is faster than deface.
        lines.append(f"| {clip} | {cfg} | {rt} | {n} | {s:.1f} | {frames / s:.1f} | {s / floor:.2f} | "
                     f"{s / med['deface'][0]:.2f} | {rss / 1024:.0f} |")
open(f"{out}/results.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
