#!/usr/bin/env bash
# Builds the demo clip from assets/astronaut.png (NASA, public domain; shipped in scikit-image's wheel):
# 6 s, 1280x720 at 25 fps, the photo slowly panning and zooming, with a 440 Hz + 660 Hz AAC audio track.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/sample.mp4}
mkdir -p "$(dirname "$out")"
[ -s "$out" ] && exit 0
ffmpeg -nostdin -loglevel error -y -loop 1 -framerate 25 -i assets/astronaut.png \
  -f lavfi -i "sine=frequency=440:sample_rate=48000,volume=0.3" \
  -f lavfi -i "sine=frequency=660:sample_rate=48000,volume=0.2" \
  -filter_complex "[0:v]scale=1600:1600,crop=1600:900:0:90,zoompan=z='1+0.002*on':x='iw/2-(iw/zoom/2)-150+on*2':y='ih/2-(ih/zoom/2)':d=1:s=1280x720:fps=25,format=yuv420p[v];[1:a][2:a]amix=inputs=2[a]" \
  -map "[v]" -map "[a]" -t 6 -c:v libx264 -preset veryfast -crf 20 -c:a aac -b:a 96k -shortest "$out.tmp.mp4"
mv "$out.tmp.mp4" "$out"
