#!/usr/bin/env bash
# README command 2: set up and run every test (unit, integration with the real model, the C example,
# the Slurm array on a one-machine Slurm, the GStreamer element, doctests, and the fuzzers' regression inputs).
set -euo pipefail
cd "$(dirname "$0")/.."
# + chromium/chromedriver (review page), Slurm + munge, GStreamer (the element)
FACEVEIL_BROWSER=1 FACEVEIL_SLURM=1 FACEVEIL_GST=1 bash scripts/setup.sh
# The Slurm test must run here, not skip: it fails when the local Slurm cannot start.
export FACEVEIL_REQUIRE_SLURM=1
cargo build --release --locked --bins
cargo build --release --locked -p faceveil-capi   # the C ABI's cdylib, for the C example test
cargo test --release --locked --all-targets
cargo test --release --locked --doc
# The GStreamer element: its own crate (the main one builds without GStreamer); the plugin is built first for
# the gst-launch-1.0 test.
cargo build --release --locked -p gst-faceveil
cargo test --release --locked -p gst-faceveil
