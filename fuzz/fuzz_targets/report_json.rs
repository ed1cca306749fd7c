#![no_main]
//! See `faceveil::fuzzing::report_json` for what is fed and which invariants are checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| faceveil::fuzzing::report_json(data));
