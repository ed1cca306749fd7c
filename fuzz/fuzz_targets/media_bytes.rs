#![no_main]
//! See `faceveil::fuzzing::media_bytes` for what is fed and which invariants are checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| faceveil::fuzzing::media_bytes(data));
