#!/usr/bin/env bash
# Peak memory over a long clip: shows that faceveil's memory is set by its queues and look-ahead, not by
# the length of the input. Samples the resident set every 5 s while it runs.
#
#   bash benches/memory.sh file   [MINUTES] [faceveil redact options]   # a MINUTES-long 720p25 file (default 10)
#   bash benches/memory.sh stream [MINUTES] [faceveil stream options]   # the same clip as a live stream, in real time
#
# `file` defaults to `--det-size 640 --tile-scale 0 --preset ultrafast` so that ten minutes of 720p finish in
# about ten minutes on 2 cores; pass any option (e.g. `--crf 18`) to run faceveil's default settings instead
# (about an hour on 2 cores).
# Writes target/memory/<mode>-rss.csv (seconds, RSS KiB) and prints the RSS at each tenth of the run.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-file}
MIN=${2:-10}
shift $(( $# > 2 ? 2 : $# ))
OUT=target/memory
BIN=target/release/faceveil
mkdir -p "$OUT"
[ -x "$BIN" ] || cargo build --release --bins
clip="$OUT/long-${MIN}min-720p.ts"
if [ ! -s "$clip" ]; then
  ffmpeg -nostdin -loglevel error -y -f lavfi -i "testsrc2=size=1280x720:rate=25" -loop 1 -i assets/astronaut.png \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" -filter_complex \
    "[1:v]scale=300:300[f];[0:v][f]overlay=x='mod(t*60,W-w)':y=H/4,format=yuv420p[v]" -map "[v]" -map 2:a \
    -t $((MIN * 60)) -c:v libx264 -preset veryfast -g 50 -c:a aac -f mpegts "$clip"
fi
rm -rf "$OUT/$MODE-out" && mkdir -p "$OUT/$MODE-out"
case "$MODE" in
  file)
    opts=("$@"); [ ${#opts[@]} -gt 0 ] || opts=(--det-size 640 --tile-scale 0 --preset ultrafast)
    "$BIN" redact "$clip" -o "$OUT/$MODE-out/out.mp4" "${opts[@]}" 2>"$OUT/$MODE.log" &
    pid=$!
    ;;
  stream)
    ffmpeg -nostdin -loglevel error -re -i "$clip" -c copy -f mpegts - |
      "$BIN" stream - -o "$OUT/$MODE-out/seg-{n}.ts" --segment-time 60 --report "$OUT/stream-report.json" "$@" \
        2>"$OUT/$MODE.log" &
    pid=$!
    ;;
  *) echo "usage: $0 file|stream [MINUTES] [options]"; exit 2 ;;
esac
start=$(date +%s)
echo "seconds,rss_kib" > "$OUT/$MODE-rss.csv"
peak=0
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  [ -n "$rss" ] && [ "$rss" -gt 0 ] && echo "$(( $(date +%s) - start )),$rss" >> "$OUT/$MODE-rss.csv"
  [ -n "$rss" ] && [ "$rss" -gt "$peak" ] && peak=$rss
  sleep 5
done
wait "$pid" || { echo "faceveil failed:"; tail -5 "$OUT/$MODE.log"; exit 1; }
tail -3 "$OUT/$MODE.log"
python3 - "$OUT/$MODE-rss.csv" <<'PY'
import csv, sys
rows = [(int(r["seconds"]), int(r["rss_kib"])) for r in csv.DictReader(open(sys.argv[1]))]
n = len(rows)
print("time s  RSS MiB  (each tenth of the run)")
for i in range(10):
    s, k = rows[min(n - 1, (i + 1) * n // 10 - 1)]
    print(f"{s:6d}  {k / 1024:7.0f}")
first, rest = rows[: max(1, n // 10)], rows[max(1, n // 10):]
print(f"peak RSS: first tenth {max(k for _, k in first) / 1024:.0f} MiB, rest {max((k for _, k in rest), default=0) / 1024:.0f} MiB")
PY
