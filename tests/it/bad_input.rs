//! Messy archive footage: each bad input has a defined outcome, never a panic or a half-written output.

use crate::common::*;
use crate::os_args;
use std::path::Path;
use std::process::Command;

/// Frames FFmpeg can decode from `path` (counted by decoding).
fn decodable_frames(path: &Path) -> usize {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "quiet",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    // MPEG-TS lists the stream under its program too: take the first value.
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let first = text.lines().map(|l| l.trim().trim_end_matches(',')).find(|l| !l.is_empty()).unwrap_or("");
    first.parse().unwrap_or_else(|_| panic!("frame count of {}: {text:?}", path.display()))
}

fn video_size(path: &Path) -> String {
    probe_entry(path, "stream=width,height")
}

fn testsrc(path: &Path, size: &str, seconds: &str, codec: &[&str]) {
    let src = format!("testsrc2=size={size}:rate=25");
    let mut args = vec!["-f", "lavfi", "-i", &src, "-t", seconds];
    args.extend_from_slice(codec);
    args.push(path.to_str().unwrap());
    ffmpeg(&args);
}

fn assert_fails(input: &Path, output: &Path, code: i32, needle: &str) {
    let out = faceveil(os_args!["redact", input, "-o", output]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(err.contains(needle), "message lacks {needle:?}: {err}");
    let name = input.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name) || err.contains(output.file_name().unwrap().to_str().unwrap()), "no file named: {err}");
    assert!(!output.exists(), "output written");
}

#[test]
fn zero_byte_file_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("empty.mp4");
    std::fs::write(&input, b"").unwrap();
    assert_fails(&input, &dir.path().join("out.mp4"), 1, "empty file");
    assert_eq!(list_dir(dir.path()), vec!["empty.mp4"]);
}

#[test]
fn truncated_mp4_without_index_fails_and_truncated_ts_keeps_what_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let mp4 = dir.path().join("whole.mp4");
    make_clip(&mp4, 100, &["-c:v", "libx264", "-g", "25"], &["-c:a", "aac"], "");
    let cut = dir.path().join("cut.mp4");
    let bytes = std::fs::read(&mp4).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    // Depending on where the MP4 index sits, half a file is unreadable or partly decodable; either way the
    // outcome is defined: an error naming the file, or every decodable frame.
    let out_mp4 = dir.path().join("out-cut.mp4");
    let out = faceveil(os_args!["redact", &cut, "-o", &out_mp4]);
    if out.status.success() {
        assert_eq!(decodable_frames(&out_mp4), decodable_frames(&cut));
    } else {
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("cut.mp4"));
        assert!(!out_mp4.exists());
    }

    // A transport stream cut mid-GOP (as a power cut leaves it): the decodable part is redacted.
    let ts = dir.path().join("whole.ts");
    make_clip(&ts, 100, &["-c:v", "libx264", "-g", "25", "-f", "mpegts"], &["-c:a", "aac"], "");
    let cut_ts = dir.path().join("cut.ts");
    let bytes = std::fs::read(&ts).unwrap();
    std::fs::write(&cut_ts, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let out_ts = dir.path().join("out.mkv");
    let out = faceveil(os_args!["redact", &cut_ts, "-o", &out_ts]);
    // Written, but the exit code says the input was damaged (frames lost at the cut).
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    let n = decodable_frames(&cut_ts);
    assert!(n > 20 && n < 100, "test clip not cut mid-stream: {n}");
    assert_eq!(decodable_frames(&out_ts), n);
    let a = decode_rgb(&cut_ts, W, H);
    let b = decode_rgb(&out_ts, W, H);
    for (fa, fb) in a.iter().zip(&b) {
        assert!(detail_kept(fa, fb, W, FACE_INNER).abs() < 0.3);
    }
}

#[test]
fn random_bytes_with_a_video_extension_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("noise.mkv");
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2246822519).rotate_left(13) >> 7) as u8).collect();
    std::fs::write(&input, bytes).unwrap();
    assert_fails(&input, &dir.path().join("out.mkv"), 1, "noise.mkv");
}

#[test]
fn content_decides_not_the_extension() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("clip.mp4");
    make_clip(&video, 10, &lossless_h264(), &["-c:a", "aac"], "");
    let disguised = dir.path().join("looks-like-a-photo.jpg");
    std::fs::copy(&video, &disguised).unwrap();
    let output = dir.path().join("out.mp4");
    let out = faceveil(os_args!["redact", &disguised, "-o", &output]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(frame_times(&video), frame_times(&output));

    let photo = dir.path().join("photo.mp4");
    std::fs::copy(astronaut(), &photo).unwrap();
    let out = faceveil(os_args!["redact", &photo, "-o", &dir.path().join("photo-out.png")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn odd_tiny_and_subsampled_sizes_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    for (name, size, codec) in [
        ("odd420.mkv", "321x241", vec!["-c:v", "ffv1", "-pix_fmt", "yuv420p"]),
        ("odd422.mkv", "321x240", vec!["-c:v", "ffv1", "-pix_fmt", "yuv422p"]),
        ("tiny.mp4", "16x16", vec!["-c:v", "libx264"]),
        ("ten-bit.mkv", "320x240", vec!["-c:v", "libx264", "-pix_fmt", "yuv420p10le"]),
        ("mjpeg.avi", "320x240", vec!["-c:v", "mjpeg"]),
        ("interlaced.mp4", "320x240", vec!["-vf", "interlace", "-c:v", "libx264", "-flags", "+ildct+ilme"]),
    ] {
        let input = dir.path().join(name);
        testsrc(&input, size, "1", &codec);
        let output = dir.path().join(format!("out-{name}.mkv"));
        let out = faceveil(os_args!["redact", &input, "-o", &output]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(video_size(&output), video_size(&input), "{name}");
        assert_eq!(decodable_frames(&output), decodable_frames(&input), "{name}");
    }
}

#[test]
fn audio_only_and_oversized_inputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let audio = dir.path().join("minutes.m4a");
    ffmpeg(&["-f", "lavfi", "-i", "sine", "-t", "1", "-c:a", "aac", audio.to_str().unwrap()]);
    assert_fails(&audio, &dir.path().join("out.mp4"), 1, "no video stream");

    let huge = dir.path().join("huge.mkv");
    testsrc(&huge, "16400x16", "0.08", &["-c:v", "ffv1"]);
    assert_fails(&huge, &dir.path().join("out.mkv"), 1, "exceeds the supported maximum");
}

#[test]
fn missing_output_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("no-such-folder").join("out.png");
    let out = faceveil(os_args!["redact", &astronaut(), "-o", &output]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-folder"));
}

#[test]
fn kill_9_leaves_nothing_under_the_final_name_and_the_input_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("long.mp4");
    make_clip(&input, 400, &["-c:v", "libx264", "-preset", "ultrafast"], &["-c:a", "aac"], "");
    let before = faceveil::io::sha256_file(&input).unwrap();
    let output = dir.path().join("out.mp4");
    let mut child = Command::new(env!("CARGO_BIN_EXE_faceveil"))
        .args([std::ffi::OsStr::new("redact"), input.as_os_str(), std::ffi::OsStr::new("-o"), output.as_os_str()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the hidden temporary output exists and has data, then kill without warning.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let growing = list_dir(dir.path()).iter().any(|n| {
            n.starts_with(".out.mp4.") && std::fs::metadata(dir.path().join(n)).map(|m| m.len() > 0).unwrap_or(false)
        });
        if growing || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(child.try_wait().unwrap().is_none(), "the run finished before it could be killed");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!output.exists(), "a killed run left a file under the final name");
    assert_eq!(faceveil::io::sha256_file(&input).unwrap(), before, "input modified");
    // A rerun completes normally beside the leftover hidden temporary file.
    let out = faceveil(os_args!["redact", &input, "-o", &output, "--tile-scale", "0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(decodable_frames(&output), 400);
}

/// FFmpeg's `tty` demuxer renders text files as ANSI-art video; a text file is not footage (found running a
/// batch over a folder with licence texts).
#[test]
fn text_files_are_not_video() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("LICENSE.txt");
    std::fs::write(&input, "Permission is hereby granted, free of charge, to any person\n".repeat(40)).unwrap();
    assert_fails(&input, &dir.path().join("out.mkv"), 1, "text file");
}
