//! The C ABI (`capi/`): the C example is compiled against `capi/include/faceveil.h`, linked with the
//! cdylib, and run on the shipped portrait; its output frames must hide the face and keep the rest.

use crate::common::*;
use std::path::PathBuf;
use std::process::Command;

/// target/release or target/debug, whichever this test binary was built in.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(|deps| deps.parent()).unwrap().to_path_buf()
}

#[test]
fn c_example_redacts_frames_through_the_c_abi() {
    let profile = profile_dir();
    let lib = profile.join("libfaceveil_capi.so");
    if !lib.exists() {
        // scripts/test.sh builds it first; build it here when the test runs alone.
        let mut cargo = Command::new(env!("CARGO"));
        cargo.current_dir(repo()).args(["build", "-p", "faceveil-capi"]);
        if profile.ends_with("release") {
            cargo.arg("--release");
        }
        assert!(cargo.status().unwrap().success(), "cannot build faceveil-capi");
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("redact_frames");
    let cc = Command::new("cc")
        .args(["-O2", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(repo().join("capi/include"))
        .arg(repo().join("capi/examples/redact_frames.c"))
        .arg("-L")
        .arg(&profile)
        .arg("-lfaceveil_capi")
        .arg(format!("-Wl,-rpath,{}", profile.display()))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap();
    assert!(cc.status.success(), "cc: {}", String::from_utf8_lossy(&cc.stderr));

    let raw = dir.path().join("face.rgb");
    ffmpeg(&["-i", astronaut().to_str().unwrap(), "-f", "rawvideo", "-pix_fmt", "rgb24", raw.to_str().unwrap()]);
    let out = dir.path().join("out.rgb");
    let run = Command::new(&exe)
        .args(["512", "512", "6"])
        .arg(&raw)
        .arg(&out)
        .env_remove("FACEVEIL_ORT_LIB")
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("6 of 6 frames pulled"), "{stdout}");
    assert!(stdout.contains("interlaced look-ahead: 7 frames"), "{stdout}");
    assert!(stdout.contains("50 fps interlaced look-ahead: 13 frames"), "{stdout}");

    let original = std::fs::read(&raw).unwrap();
    let frames = std::fs::read(&out).unwrap();
    assert_eq!(frames.len(), original.len() * 6);
    let face = (190, 80, 270, 170);
    let flag = (0, 320, 90, 500);
    for (i, f) in frames.chunks(original.len()).enumerate() {
        let kept = detail_kept(&original, f, 512, face);
        assert!(kept.abs() < 0.3, "frame {i} keeps {kept:.2} of the face");
        assert_eq!(max_diff(&original, f, 512, flag), 0, "frame {i} changed far from the face");
    }
}
