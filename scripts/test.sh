#!/usr/bin/env bash
# README command 2: set up and run every test (unit, integration with the real model, doctests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked --bins
cargo test --release --locked --all-targets
cargo test --release --locked --doc
