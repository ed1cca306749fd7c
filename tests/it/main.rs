//! Integration tests: one binary (faster to link). Media are generated in temporary folders with the
//! `ffmpeg` CLI (installed by scripts/setup.sh) from the shipped public-domain portrait.

mod bad_input;
mod batch;
mod capi;
mod cli;
mod common;
mod edits;
mod faults;
mod fuzz_regressions;
mod library;
mod lowlight;
mod promises;
mod review_page;
mod slurm;
mod stream;
