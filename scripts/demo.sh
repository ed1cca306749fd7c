#!/usr/bin/env bash
# README command 1: set up, build (release), make the sample clip, redact it, print where the output is.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked
bash scripts/make_sample.sh out/sample.mp4
./target/release/faceveil redact out/sample.mp4 -o out/sample-redacted.mp4 \
    --report out/sample-redacted.json --overwrite
echo
echo "original: $(pwd)/out/sample.mp4"
echo "redacted: $(pwd)/out/sample-redacted.mp4"
echo "report:   $(pwd)/out/sample-redacted.json"
