//! Replays what fuzzing found (and a sample of its corpus) through the fuzz entry points on stable Rust, so
//! CI keeps every fixed crash fixed without a nightly toolchain. `fuzz/README.md` says how to fuzz.

use crate::common::repo;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = repo().join("fuzz/regressions").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let name = path.display().to_string();
        if let Err(panic) = std::panic::catch_unwind(|| run(&data)) {
            std::panic::resume_unwind(Box::new(format!("{name}: {panic:?}")));
        }
        n += 1;
    }
    assert!(n > 0, "no regression inputs in {}", dir.display());
}

#[test]
fn centerface_output_regressions() {
    replay("centerface_output", faceveil::fuzzing::centerface_output);
}

#[test]
fn report_json_regressions() {
    replay("report_json", faceveil::fuzzing::report_json);
}

#[test]
fn media_bytes_regressions() {
    replay("media_bytes", faceveil::fuzzing::media_bytes);
}
