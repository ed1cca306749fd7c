//! Promises as a user meets them from the command line: issue 33's leaks, overwrites and limits found around
//! the per-frame core (the follow, segment, core and review-page items are tested beside their code and in
//! `stream.rs`, `review_page.rs`), and a rerun that gives the same bytes.

use crate::common::*;
use crate::os_args;
use serde_json::Value;
use std::path::Path;

#[test]
fn mixed_key_frames_out_of_the_clips_order_are_refused_naming_the_edit_issue_33() {
    let dir = tempfile::tempdir().unwrap();
    let input = clip30(dir.path());
    let output = dir.path().join("out.mkv");
    let edits = dir.path().join("edits.json");
    // Frame 20, then 400 ms (frame 10 at 25 fps): before the fix 0 frames were redacted, exit 0, no word.
    std::fs::write(
        &edits,
        r#"{"version": 1, "add": [{"keyframes": [{"frame": 20, "box": [20, 200, 80, 80]},
            {"time": "00:00:00.400", "box": [100, 200, 80, 80]}]}]}"#,
    )
    .unwrap();
    let out = faceveil(os_args!["redact", &input, "-o", &output, "--tile-scale", "0", "--edits", &edits]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("edits.json") && stderr.contains("add[0].keyframes[1]"), "{stderr}");
    assert!(stderr.contains("increasing order as the clip plays"), "{stderr}");
    assert!(!output.exists(), "an output was written");
}

#[test]
fn edit_files_over_a_mebibyte_are_refused_issue_33() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.png");
    std::fs::copy(astronaut(), &input).unwrap();
    let edits = dir.path().join("huge.json");
    let mut body = br#"{"version": 1, "add": [], "frames": [], "keep": []}"#.to_vec();
    body.resize(2 << 20, b' ');
    std::fs::write(&edits, body).unwrap();
    let output = dir.path().join("out.png");
    let out = faceveil(os_args!["redact", &input, "-o", &output, "--edits", &edits]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("huge.json") && stderr.contains("larger than 1024 KiB"), "{stderr}");
    assert!(!output.exists());
}

/// `png` (a JPEG of it, really) stored turned by 180° with an EXIF orientation that shows it upright.
fn jpeg_turned_with_exif(png: &Path, out: &Path) {
    let img = image::open(png).unwrap().to_rgb8();
    let turned = image::imageops::rotate180(&img);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95).encode_image(&turned).unwrap();
    // APP1 "Exif": a little-endian TIFF header and one IFD entry, Orientation (0x0112, SHORT) = 3 (180°).
    let mut tiff = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
    tiff.extend_from_slice(&[1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut bytes = jpeg[..2].to_vec();
    bytes.extend_from_slice(&[0xff, 0xe1]);
    bytes.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    bytes.extend_from_slice(&app1);
    bytes.extend_from_slice(&jpeg[2..]);
    std::fs::write(out, bytes).unwrap();
}

#[test]
fn verify_reads_a_turned_photo_as_redact_does_issue_33() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("turned.jpg");
    jpeg_turned_with_exif(&astronaut(), &input);
    let overlay = dir.path().join("overlay.png");
    let redacted = dir.path().join("redacted.png");
    assert!(faceveil(os_args!["redact", &input, "-o", &overlay, "--overlay"]).status.success());
    assert!(faceveil(os_args!["redact", &input, "-o", &redacted]).status.success());
    // The overlay copy shows the face: against its original it must be flagged (before the fix: "clean", the
    // original compared unturned).
    let out = faceveil(os_args!["verify", &overlay, "--orig", &input]);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stdout));
    let out = faceveil(os_args!["verify", &redacted, "--orig", &input]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

fn batch(input: &Path, output: &Path, extra: &[&str]) -> (Option<i32>, Value, String) {
    let mut cmd = faceveil_command();
    cmd.arg("batch").arg(input).arg("-o").arg(output).args(["--tile-scale", "0", "--progress", "none"]).args(extra);
    for v in ["JOB_COMPLETION_INDEX", "FACEVEIL_SHARD_COUNT", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"] {
        cmd.env_remove(v);
    }
    let out = cmd.output().unwrap();
    let summary = std::fs::read(output.join("faceveil-summary.json"))
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(Value::Null);
    (out.status.code(), summary, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn status_of(summary: &Value, input: &str) -> String {
    let files = summary["files"].as_array().unwrap();
    let f = files.iter().find(|f| f["input"] == input).unwrap_or_else(|| panic!("{input} not in {summary}"));
    f["status"].as_str().unwrap().to_string()
}

#[test]
fn batch_keeps_regions_only_for_runs_that_allow_them_also_on_resume_issue_33() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(astronaut(), input.join("poster.png")).unwrap();
    std::fs::write(
        input.join("poster.png.faceveil-edits.json"),
        r#"{"version": 1, "keep": [{"from": 0, "to": 0, "box": [0, 0, 100, 100]}]}"#,
    )
    .unwrap();
    let output = dir.path().join("out");
    let (code, summary, err) = batch(&input, &output, &["--allow-keep-regions"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(status_of(&summary, "poster.png"), "done");
    // Before the fix the run without the permission found the output "up to date".
    let (code, summary, err) = batch(&input, &output, &[]);
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(status_of(&summary, "poster.png"), "failed", "{summary}");
    let (_, summary, _) = batch(&input, &output, &["--allow-keep-regions"]);
    assert_ne!(status_of(&summary, "poster.png"), "failed");
}

#[test]
fn batch_gives_inputs_that_would_share_an_output_names_of_their_own_issue_33() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(astronaut(), input.join("p.png")).unwrap();
    let flipped = image::imageops::flip_horizontal(&image::open(astronaut()).unwrap().to_rgb8());
    flipped.save_with_format(input.join("p.PNG"), image::ImageFormat::Png).unwrap();
    let small = |name: &str, codec: &[&str]| {
        let mut args = vec!["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-frames:v", "5"];
        args.extend_from_slice(codec);
        let path = input.join(name);
        args.push(path.to_str().unwrap());
        ffmpeg(&args);
    };
    small("clip.webm", &["-c:v", "libvpx", "-b:v", "200k"]);
    small("clip.flv", &["-c:v", "flv1"]);
    let output = dir.path().join("out");
    let (code, summary, err) = batch(&input, &output, &[]);
    assert_eq!(code, Some(0), "{err}");
    for name in ["p.png", "p.PNG", "clip.webm", "clip.flv"] {
        assert_eq!(status_of(&summary, name), "done", "{summary}");
    }
    let names = list_dir(&output);
    for made in ["p.png.png", "p.PNG.png", "clip.webm.mkv", "clip.flv.mkv"] {
        assert!(names.contains(&made.to_string()), "{made} missing: {names:?}");
        assert!(names.contains(&format!("{made}.faceveil.json")), "{made}'s report missing: {names:?}");
    }
    // Each output is its own input's: the two photos differ.
    let a = image::open(output.join("p.png.png")).unwrap().to_rgb8();
    let b = image::open(output.join("p.PNG.png")).unwrap().to_rgb8();
    assert_ne!(a.get_pixel(20, 300), b.get_pixel(20, 300));
    // A rerun finds every one up to date (before the fix: every rerun redid both of each pair).
    let (code, summary, err) = batch(&input, &output, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(summary["up_to_date"], 4, "{summary}");
}

#[test]
fn the_review_sheet_and_report_never_replace_an_input_or_an_existing_file_issue_33() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.png");
    std::fs::copy(astronaut(), &victim).unwrap();
    let before = std::fs::read(&victim).unwrap();
    let output = dir.path().join("red.png");
    // Before the fix the sheet replaced the input, exit 0.
    let out = faceveil(os_args!["redact", &victim, "-o", &output, "--review-sheet", &victim]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("would replace the input"), "{stderr}");
    let out = faceveil(os_args!["redact", &victim, "-o", &output, "--review-sheet", &victim, "--overwrite"]);
    assert_eq!(out.status.code(), Some(2), "--overwrite never makes an input an output");
    let out = faceveil(os_args!["redact", &victim, "-o", &output, "--report", &victim, "--overwrite"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let out = faceveil(os_args!["redact", &victim, "-o", &output, "--review-sheet", &output]);
    assert_eq!(out.status.code(), Some(2), "the sheet is not the output");
    assert_eq!(std::fs::read(&victim).unwrap(), before, "the input changed");
    assert!(!output.exists());
    // An existing sheet is replaced only with --overwrite.
    let sheet = dir.path().join("sheet.png");
    std::fs::write(&sheet, b"keep me").unwrap();
    let out = faceveil(os_args!["redact", &victim, "-o", &output, "--review-sheet", &sheet]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("sheet.png: output already exists"), "{stderr}");
    assert_eq!(std::fs::read(&sheet).unwrap(), b"keep me");
    assert!(!output.exists(), "refused before anything was written");
    let out = faceveil(os_args!["redact", &victim, "-o", &output, "--review-sheet", &sheet, "--overwrite"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_ne!(std::fs::read(&sheet).unwrap(), b"keep me");
}

#[test]
fn frame_windows_that_cannot_fit_are_refused_with_the_memory_they_need_issue_33() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=gray:size=4096x4096:rate=25",
        "-frames:v",
        "1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        input.to_str().unwrap(),
    ]);
    let output = dir.path().join("out.mkv");
    let out = faceveil(os_args![
        "redact",
        &input,
        "-o",
        &output,
        "--bridge-frames",
        "250",
        "--lookahead",
        "250",
        "--preset",
        "veryslow"
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bridge frames 250 and look-ahead 60 at 4096x4096 would hold about"), "{stderr}");
    assert!(stderr.contains("lower --bridge-frames or --lookahead"), "{stderr}");
    assert!(!output.exists());
}

#[test]
fn the_same_clip_redacted_twice_gives_the_same_bytes() {
    // A records office checks a re-run against the first by its hash. Whatever the allocator's leftover bytes:
    // libx264's AVX-512 macroblock-tree code read memory it never wrote, and gave another stream of this clip
    // whenever the heap differed (one heap for all threads, `MALLOC_ARENA_MAX=2`, or freed memory filled with
    // another byte, `MALLOC_PERTURB_`); faceveil runs libx264 without its AVX-512 code (docs/performance.md,
    // 2026-12-05, later).
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mkv");
    make_clip(&input, 40, &lossless_h264(), &["-c:a", "aac"], ",crop=618:352");
    let run_as = |name: &str, heap: &[(&str, &str)], preset: &[&str]| {
        let output = dir.path().join(name);
        let out = faceveil_command()
            .envs(heap.iter().copied())
            .args(os_args!["redact", &input, "-o", &output, "--crf", "18"])
            .args(preset)
            .output()
            .expect("faceveil runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::read(&output).unwrap()
    };
    // Preset medium, where the AVX-512 code was found.
    let run = |name: &str, heap: &[(&str, &str)]| run_as(name, heap, &["--preset", "medium"]);
    let first = run("a.mp4", &[]);
    assert!(run("b.mp4", &[]) == first, "b.mp4 differs from the first run's output");
    assert!(run("c.mp4", &[("MALLOC_ARENA_MAX", "2")]) == first, "one heap for all threads: another output");
    assert!(run("d.mp4", &[("MALLOC_PERTURB_", "7")]) == first, "other leftover bytes: another output");
    // Matroska too (it writes a random segment UID unless told to be bit-exact).
    let first = run("a.mkv", &[]);
    assert!(run("b.mkv", &[("MALLOC_ARENA_MAX", "2")]) == first, "b.mkv differs from the first run's output");
    // And the default preset.
    let first = run_as("e.mp4", &[], &[]);
    assert!(run_as("f.mp4", &[("MALLOC_PERTURB_", "7")], &[]) == first, "the default preset: another output");
}

#[test]
fn a_run_leaves_nothing_for_onnx_runtimes_telemetry() {
    // Nothing leaves the machine, and nothing identifies it: ONNX Runtime's build from PyPI records a telemetry
    // event (the process's path, the OS, the CPU, a device id) under the home folder on every load, for
    // Microsoft's collector to receive once a network is reachable, unless ORT_DISABLE_TELEMETRY is set.
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("out.png");
    let run = faceveil_command()
        .env_remove("ORT_DISABLE_TELEMETRY")
        .env("HOME", home.path())
        .env("XDG_CACHE_HOME", home.path().join(".cache"))
        .args(os_args!["redact", &astronaut(), "-o", &out])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(list_dir(home.path()), vec!["out.png"], "nothing but the output under the home folder");
}

#[test]
fn an_interlaced_recording_keeps_its_fields_and_a_face_moving_fast_is_hidden_in_both() {
    // A 576i-style recording (here 640x360): each frame holds two pictures a field (20 ms) apart, on its even and
    // odd lines. The portrait (90 px, the face about 17 px wide) crosses the picture at 10 px a field.
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("fields.mkv"), dir.path().join("out.mkv"));
    let portrait = astronaut();
    ffmpeg(&[
        "-loop",
        "1",
        "-framerate",
        "50",
        "-i",
        portrait.to_str().unwrap(),
        "-f",
        "lavfi",
        "-i",
        "color=c=0x707070:size=640x360:rate=50",
        "-filter_complex",
        "[0:v]scale=90:90[f];[1:v][f]overlay=x='20+10*n':y=140:shortest=1,tinterlace=mode=interleave_top,\
         format=yuv420p,setfield=tff",
        "-frames:v",
        "27",
        "-c:v",
        "libx264",
        "-qp",
        "0",
        "-flags",
        "+ilme+ildct",
        "-x264-params",
        "tff=1",
        input.to_str().unwrap(),
    ]);
    let out = faceveil(os_args!["redact", &input, "-o", &output, "--crf", "0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Still interlaced, in the same field order.
    let order = probe_entry(&input, "stream=field_order");
    assert!(order.contains("field_order=tb") || order.contains("field_order=tt"), "{order}");
    assert_eq!(probe_entry(&output, "stream=field_order"), order);
    let (a, b) = (decode_rgb(&input, 640, 360), decode_rgb(&output, 640, 360));
    assert_eq!(b.len(), 27);
    // One field's lines of a frame, as a 640x180 picture.
    let field =
        |f: &[u8], parity: usize| -> Vec<u8> { f.chunks(640 * 3).skip(parity).step_by(2).flatten().copied().collect() };
    for i in 0..27u32 {
        for parity in 0..2u32 {
            // The portrait's left edge on this field (the overlay counts from 1), and the face's inner box in the
            // field's lines: portrait x 33-46, y 12-29.
            let x = 20 + 10 * (2 * i + parity + 1);
            let inner = (x + 33, (140 + 12) / 2, x + 46, (140 + 29) / 2);
            let (fa, fb) = (field(&a[i as usize], parity as usize), field(&b[i as usize], parity as usize));
            let kept = detail_kept(&fa, &fb, 640, inner);
            assert!(kept.abs() < 0.3, "frame {i}, field {parity}: the face keeps {kept:.2} of its detail");
        }
    }
}

#[test]
fn a_50_fps_recording_is_searched_on_its_own_schedule_and_the_small_face_is_hidden_in_every_frame() {
    // The portrait at 90 px (a face about 17 px wide, found by the small-face tiles) walks 4 px a frame. At 50 fps
    // the tiles are spread over 12 frames and 11 are bridged (the time of 25 fps's 6 and 5).
    let dir = tempfile::tempdir().unwrap();
    let portrait = astronaut();
    for (rate, bridge, period) in [(50, 11, 12), (25, 5, 6)] {
        let (input, output) = (dir.path().join(format!("{rate}.mp4")), dir.path().join(format!("{rate}-out.mp4")));
        let report = dir.path().join(format!("{rate}.json"));
        ffmpeg(&[
            "-loop",
            "1",
            "-framerate",
            &rate.to_string(),
            "-i",
            portrait.to_str().unwrap(),
            "-f",
            "lavfi",
            "-i",
            &format!("color=c=0x707070:size=640x360:rate={rate}"),
            "-filter_complex",
            "[0:v]scale=90:90[f];[1:v][f]overlay=x='40+4*n':y=140:shortest=1,format=yuv420p",
            "-frames:v",
            "40",
            "-c:v",
            "libx264",
            "-qp",
            "0",
            input.to_str().unwrap(),
        ]);
        let out = faceveil(os_args!["redact", &input, "-o", &output, "--crf", "0", "--report", &report]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        assert_eq!(r["frame_rate"], serde_json::json!({"num": rate, "den": 1}));
        let p = &r["parameters"];
        assert_eq!((p["bridge_frames"].as_u64(), p["tile_period"].as_u64()), (Some(bridge), Some(period)), "{rate}");
        let (a, b) = (decode_rgb(&input, 640, 360), decode_rgb(&output, 640, 360));
        assert_eq!(b.len(), 40);
        for (i, (fa, fb)) in a.iter().zip(&b).enumerate() {
            // The face's inner box: portrait x 33-46, y 12-29 (the overlay counts from 1).
            let x = 40 + 4 * (i as u32 + 1);
            let kept = detail_kept(fa, fb, 640, (x + 33, 140 + 12, x + 46, 140 + 29));
            assert!(kept.abs() < 0.3, "{rate} fps, frame {i}: the face keeps {kept:.2} of its detail");
        }
    }
}

#[test]
fn a_photo_is_the_same_file_whatever_the_video_only_settings() {
    // A resumed batch keeps photos when only settings for video changed (`Options::affecting`, issue 34): right
    // only if a photo redacted with every one of them changed is the same file, byte for byte.
    let dir = tempfile::tempdir().unwrap();
    let (plain, other) = (dir.path().join("plain.png"), dir.path().join("other.png"));
    let run = faceveil(os_args!["redact", &astronaut(), "-o", &plain]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let run = faceveil(os_args![
        "redact",
        &astronaut(),
        "-o",
        &other,
        "--preset",
        "medium",
        "--crf",
        "30",
        "--lookahead",
        "20",
        "--threads",
        "2",
        "--bridge-frames",
        "9",
        "--tile-period",
        "3",
        "--follow-camera",
        "--audio",
        "drop",
        "--keep-metadata",
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let (a, b) = (std::fs::read(&plain).unwrap(), std::fs::read(&other).unwrap());
    assert_ne!(a, std::fs::read(astronaut()).unwrap(), "the photo was redacted");
    assert!(a == b, "a video-only setting changed the photo's redaction");
}
