#![no_main]
//! See `faceveil::fuzzing::centerface_output` for what is fed and which invariants are checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| faceveil::fuzzing::centerface_output(data));
