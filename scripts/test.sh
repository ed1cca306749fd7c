#!/usr/bin/env bash
# README command 2: set up and run every test (unit, integration with the real model, the C example,
# doctests, and the fuzzers' regression inputs).
set -euo pipefail
cd "$(dirname "$0")/.."
FACEVEIL_BROWSER=1 bash scripts/setup.sh   # + chromium and chromium-driver for the review page test
cargo build --release --locked --bins
cargo build --release --locked -p faceveil-capi   # the C ABI's cdylib, for the C example test
cargo test --release --locked --all-targets
cargo test --release --locked --doc
