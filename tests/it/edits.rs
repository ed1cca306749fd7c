//! A reviewer's edit files (issue 16): regions added on key frames, frames redacted whole, regions kept, as a
//! user runs them from the command line, checked on real pixels.

use crate::common::*;
use crate::os_args;
use std::path::Path;

fn redact(input: &Path, output: &Path, edits: &Path) -> std::process::Output {
    let report = output.with_extension("json");
    faceveil(os_args!["redact", input, "-o", output, "--crf", "0", "--edits", edits, "--report", &report])
}

#[test]
fn added_regions_follow_their_key_frames_and_whole_frames_are_filled_issue_16() {
    let dir = tempfile::tempdir().unwrap();
    let input = clip30(dir.path());
    let output = dir.path().join("out.mkv");
    let edits = dir.path().join("edits.json");
    // A box on the left background moving from x=20 (frame 5) to x=100 (frame 15) at 25 fps, by time at its end;
    // frames 20-22 filled whole.
    std::fs::write(
        &edits,
        r#"{"version": 1,
            "add": [{"keyframes": [{"frame": 5, "box": [20, 200, 80, 80]}, {"time": "00:00:00.600", "box": [100, 200, 80, 80]}],
                     "shape": "box", "mask_scale": 1.0}],
            "frames": [{"from": 20, "to": 22}]}"#,
    )
    .unwrap();
    let out = redact(&input, &output, &edits);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (a, b) = (decode_rgb(&input, W, H), decode_rgb(&output, W, H));
    assert_eq!(a.len(), b.len());
    // Inner part of the added box at frame i (x from 20 at frame 5 to 100 at frame 15).
    let inner = |i: u32| {
        let x = 20 + (i - 5) * 8;
        (x + 10, 210, x + 70, 270)
    };
    for i in 0..30u32 {
        let (fa, fb) = (&a[i as usize], &b[i as usize]);
        if (5..=15).contains(&i) {
            let kept = detail_kept(fa, fb, W, inner(i));
            assert!(kept.abs() < 0.3, "frame {i}: the added region keeps {kept:.2} of its detail");
        } else if (20..=22).contains(&i) {
            assert!(detail(fb, W, (0, 0, W, H)) < 0.5, "frame {i} is not filled whole");
        } else {
            assert_eq!(max_diff(fa, fb, W, (0, 180, 120, 300)), 0, "frame {i}: pixels outside the edits changed");
        }
    }
    // The box moved: at frame 15 the region of frame 5 is untouched outside the new box.
    assert_eq!(max_diff(&a[15], &b[15], W, (20, 200, 60, 280)), 0);
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(output.with_extension("json")).unwrap()).unwrap();
    assert_eq!(r["edits_sha256"].as_str(), Some(faceveil::io::sha256_file(&edits).unwrap().as_str()));
    assert_eq!(r["frames_redacted"], 30, "the face in every frame, and the edits");
}

#[test]
fn keep_regions_leave_detections_unredacted_and_are_listed_issue_16() {
    let dir = tempfile::tempdir().unwrap();
    let input = clip30(dir.path());
    let output = dir.path().join("out.mkv");
    let edits = dir.path().join("edits.json");
    // Keep the astronaut's face (a "public poster") unredacted in frames 10-19 only.
    std::fs::write(&edits, r#"{"version": 1, "keep": [{"from": 10, "to": 19, "box": [240, 0, 120, 160]}]}"#).unwrap();
    let out = redact(&input, &output, &edits);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (a, b) = (decode_rgb(&input, W, H), decode_rgb(&output, W, H));
    for i in 0..30usize {
        let kept = detail_kept(&a[i], &b[i], W, FACE_INNER);
        if (10..20).contains(&i) {
            assert!(kept > 0.95, "frame {i}: the kept face was redacted ({kept:.2})");
        } else {
            assert!(kept.abs() < 0.3, "frame {i}: the face outside the keep range leaks ({kept:.2})");
        }
    }
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(output.with_extension("json")).unwrap()).unwrap();
    let kept = &r["kept_regions"][0];
    assert_eq!((kept["from"].as_str(), kept["to"].as_str()), (Some("frame 10"), Some("frame 19")));
    assert!(kept["detections_kept"].as_u64().unwrap() >= 10, "{kept}");
}

#[test]
fn bad_and_out_of_clip_edit_files_are_refused_with_no_output_issue_16() {
    let dir = tempfile::tempdir().unwrap();
    let input = clip30(dir.path());
    let output = dir.path().join("out.mkv");
    let edits = dir.path().join("edits.json");
    let cases = [
        (
            r#"{"version": 1, "add": [{"keyframes": [{"frame": 3, "box": [600, 0, 80, 80]}]}]}"#,
            "add[0].keyframes[0]: box",
        ),
        (r#"{"version": 1, "frames": [{"from": 25, "to": 40}]}"#, "frames[0] lies beyond the clip's 30 frame(s)"),
        ("{\"version\": 1,\n \"keep\": 3}", "line 2"),
    ];
    for (json, want) in cases {
        std::fs::write(&edits, json).unwrap();
        let out = redact(&input, &output, &edits);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{json}: {stderr}");
        assert!(stderr.contains(want) && stderr.contains("edits.json"), "{json}: {stderr}");
        assert!(!output.exists(), "{json}: an output was written");
    }
}

#[test]
fn batch_applies_edit_files_beside_inputs_refuses_keeps_unless_allowed_and_redoes_on_change_issue_16() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let video = clip30(&input);
    let edits = input.join("in.mkv.faceveil-edits.json");
    let out_dir = dir.path().join("out");
    let batch = |extra: &[&str]| {
        let mut cmd = faceveil_command();
        cmd.arg("batch").arg(&input).arg("-o").arg(&out_dir).args(["--tile-scale", "0", "--progress", "json"]);
        cmd.args(extra).output().unwrap()
    };
    let report = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(out_dir.join("in.mkv.faceveil.json")).unwrap()).unwrap()
    };
    std::fs::write(&edits, r#"{"version": 1, "keep": [{"from": 0, "to": 5, "box": [240, 0, 120, 160]}]}"#).unwrap();
    let out = batch(&[]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "the file with keep regions fails: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-keep-regions"));
    let out = batch(&["--allow-keep-regions"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(report()["edits_sha256"].as_str(), Some(faceveil::io::sha256_file(&edits).unwrap().as_str()));
    // Unchanged: up to date. A changed edit file: redone.
    let out = batch(&["--allow-keep-regions"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\"up_to_date\":1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&edits, r#"{"version": 1, "frames": [{"from": 0, "to": 1}]}"#).unwrap();
    let out = batch(&[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(report()["edits_sha256"].as_str(), Some(faceveil::io::sha256_file(&edits).unwrap().as_str()));
    assert!(report()["kept_regions"].is_null(), "no keep regions any more");
    let _ = video;
}

/// 50 frames at 25 fps of a 48x48 textured patch at x = `x` (an FFmpeg expression of the frame number `n`),
/// y = 96, over flat grey, 320x240, encoded with libx264 and `encode`'s options.
fn patch_clip(path: &Path, x: &str, encode: &[&str]) {
    let overlay = format!("[0:v][1:v]overlay=x='{x}':y=96:shortest=1,format=yuv420p[v]");
    let mut args = vec!["-f", "lavfi", "-i", "color=c=gray:size=320x240:rate=25", "-f", "lavfi", "-i"];
    args.extend(["testsrc2=size=48x48:rate=25", "-filter_complex", &overlay, "-map", "[v]", "-frames:v", "50"]);
    args.extend(["-c:v", "libx264"]);
    args.extend(encode);
    args.push(path.to_str().unwrap());
    ffmpeg(&args);
}

#[test]
fn a_followed_region_stays_on_its_moving_patch_and_is_reported_lost_at_the_border_issue_16() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("patch.mkv");
    // A 48x48 textured patch moving right by 6 px a frame over flat grey (x = 40 + 6n, y = 96), crossing the
    // right border of the 320x240 picture from frame 39 on.
    patch_clip(&input, "40+6*n", &["-qp", "0", "-preset", "ultrafast"]);
    let output = dir.path().join("out.mkv");
    let edits = dir.path().join("edits.json");
    // One key frame (frame 10, the patch at x = 100), followed both ways.
    std::fs::write(
        &edits,
        r#"{"version": 1, "add": [{"keyframes": [{"frame": 10, "box": [100, 96, 48, 48]}], "follow": true}]}"#,
    )
    .unwrap();
    let report = dir.path().join("out.json");
    let out = faceveil(os_args![
        "redact",
        &input,
        "-o",
        &output,
        "--crf",
        "0",
        "--tile-scale",
        "0",
        "--edits",
        &edits,
        "--report",
        &report
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("lost at frame"), "a lost follow is reported: {stderr}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let follow = &r["follows"][0];
    assert_eq!(follow["first_frame"], 0, "followed back to the first frame: {follow}");
    assert!(follow["lost_backward_at"].is_null(), "{follow}");
    let lost = follow["lost_forward_at"].as_u64().unwrap_or_else(|| panic!("not lost: {follow}"));
    // The box stays inside the picture and keeps covering what is left of the patch as it leaves (x >= 320 from
    // frame 47); it is lost once too little of it is left to match.
    assert!((40..=48).contains(&lost), "lost where the patch leaves the picture: {follow}");
    let (a, b) = (decode_rgb(&input, 320, 240), decode_rgb(&output, 320, 240));
    // Every frame where the patch is whole in the picture (x + 48 <= 320: frames 0-38).
    for i in 0..lost.min(39) as u32 {
        let x = 40 + 6 * i;
        let inner = (x + 8, 104, x + 40, 136);
        let kept = detail_kept(&a[i as usize], &b[i as usize], 320, inner);
        assert!(kept.abs() < 0.3, "frame {i}: the followed patch keeps {kept:.2} of its detail");
    }
    // The grey background far from the patch's path is untouched.
    assert_eq!(max_diff(&a[5], &b[5], 320, (0, 0, 320, 60)), 0);
}

#[test]
fn a_region_keyed_by_time_is_followed_from_the_same_frames_in_a_stream_whose_clock_restarts() {
    // Two copies of a transport stream joined end to end: the clock starts again at frame 50. The run moves the
    // second copy's timestamps to follow on (2 s in); before, the follow pre-pass read them as they were, never
    // met 00:00:03.000, and the region covered its key frame only, with no warning.
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("part.ts");
    // A 48x48 textured patch moving right by 2 px a frame over flat grey (x = 20 + 2n in each copy, y = 96).
    patch_clip(&part, "20+2*n", &["-g", "25", "-f", "mpegts"]);
    let input = dir.path().join("joined.ts");
    let bytes = std::fs::read(&part).unwrap();
    std::fs::write(&input, [bytes.as_slice(), &bytes].concat()).unwrap();
    let (output, edits) = (dir.path().join("out.mkv"), dir.path().join("edits.json"));
    // Keyed at 3 s (frame 75: the second copy's frame 25, the patch at x = 70), followed from 2.4 s to 3.6 s.
    std::fs::write(
        &edits,
        r#"{"version": 1, "add": [{"keyframes": [{"time": "00:00:03.000", "box": [70, 96, 48, 48]}],
            "follow": true, "from_time": "00:00:02.400", "to_time": "00:00:03.600", "style": "fill"}]}"#,
    )
    .unwrap();
    let out = redact(&input, &output, &edits);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The join breaks the stream's packet counters, which is reported as damage (exit 5).
    assert!(matches!(out.status.code(), Some(0 | 5)), "{stderr}");
    assert!(stderr.contains("clock restarted 1 time(s)"), "{stderr}");
    assert!(!stderr.contains("lost at frame"), "{stderr}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(output.with_extension("json")).unwrap()).unwrap();
    let follow = &r["follows"][0];
    assert_eq!((follow["first_frame"].as_u64(), follow["last_frame"].as_u64()), (Some(60), Some(90)), "{follow}");
    let (a, b) = (decode_rgb(&input, 320, 240), decode_rgb(&output, 320, 240));
    assert_eq!(b.len(), 100);
    for i in 0..100u32 {
        let x = 20 + 2 * (i % 50);
        let kept = detail_kept(&a[i as usize], &b[i as usize], 320, (x + 8, 104, x + 40, 136));
        if (60..=90).contains(&i) {
            assert!(kept.abs() < 0.3, "frame {i}: the followed patch keeps {kept:.2} of its detail");
        } else {
            assert_eq!(max_diff(&a[i as usize], &b[i as usize], 320, (0, 0, 320, 240)), 0, "frame {i} changed");
        }
    }
}
