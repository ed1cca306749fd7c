//! `faceveil batch` over a generated archive tree.

use crate::common::*;
use crate::os_args;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// in/ with nested videos and a photo (faces), a corrupt video, a text file and a link.
fn archive(root: &Path) -> PathBuf {
    let input = root.join("in");
    std::fs::create_dir_all(input.join("cam1/2024-03-01")).unwrap();
    std::fs::create_dir_all(input.join("cam2")).unwrap();
    make_clip(
        &input.join("cam1/2024-03-01/0800.mp4"),
        8,
        &["-c:v", "libx264", "-preset", "ultrafast"],
        &["-c:a", "aac"],
        "",
    );
    make_clip(&input.join("cam2/door.mkv"), 8, &["-c:v", "libx264", "-preset", "ultrafast"], &["-c:a", "libopus"], "");
    std::fs::copy(astronaut(), input.join("cam2/still.png")).unwrap();
    std::fs::write(input.join("cam2/corrupt.mp4"), vec![0x42u8; 4096]).unwrap();
    std::fs::write(input.join("README.txt"), b"camera notes").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", input.join("cam2/escape.mp4")).unwrap();
    input
}

const MEDIA: [&str; 3] = ["cam1/2024-03-01/0800.mp4", "cam2/door.mkv", "cam2/still.png"];

fn batch(input: &Path, output: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faceveil"));
    cmd.arg("batch").arg(input).arg("-o").arg(output).args(["--tile-scale", "0"]).args(extra);
    for v in ["JOB_COMPLETION_INDEX", "FACEVEIL_SHARD_COUNT", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"] {
        cmd.env_remove(v);
    }
    let out = cmd.output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn summary(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn statuses(s: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = s["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["input"].as_str().unwrap().to_string(), f["status"].as_str().unwrap().to_string()))
        .collect();
    v.sort();
    v
}

/// Each file done in this run and why it was made again (`null`: done for the first time).
fn redone(s: &Value) -> Vec<(String, Value)> {
    let mut v: Vec<(String, Value)> = s["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "done")
        .map(|f| (f["input"].as_str().unwrap().to_string(), f["redone"].clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn mirrors_tree_reports_every_file_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let input = archive(dir.path());
    let output = dir.path().join("out");
    let (code, err) = batch(&input, &output, &[]);
    assert_eq!(code, Some(3), "{err}");
    let s = summary(&output.join("faceveil-summary.json"));
    assert_eq!(
        statuses(&s),
        vec![
            ("README.txt".into(), "skipped".into()),
            ("cam1/2024-03-01/0800.mp4".into(), "done".into()),
            ("cam2/corrupt.mp4".into(), "failed".into()),
            ("cam2/door.mkv".into(), "done".into()),
            ("cam2/escape.mp4".into(), "skipped".into()),
            ("cam2/still.png".into(), "done".into()),
        ]
    );
    assert!(std::fs::read_to_string(output.join("faceveil-summary.csv")).unwrap().contains("cam2/corrupt.mp4"));
    assert_eq!(redone(&s), MEDIA.iter().map(|m| (m.to_string(), Value::Null)).collect::<Vec<_>>(), "first run");
    for rel in MEDIA {
        let out = output.join(rel);
        let report: Value =
            serde_json::from_slice(&std::fs::read(format!("{}.faceveil.json", out.display())).unwrap()).unwrap();
        assert_eq!(report["input_sha256"].as_str().unwrap(), faceveil::io::sha256_file(&input.join(rel)).unwrap());
        assert_eq!(report["output_sha256"].as_str().unwrap(), faceveil::io::sha256_file(&out).unwrap());
        // Default precision: the full-precision model for stills and video alike (issue 13).
        assert_eq!(report["model_sha256"], default_models_sha256().as_str(), "{rel}");
    }
    assert_eq!(frame_times(&input.join(MEDIA[0])), frame_times(&output.join(MEDIA[0])));
    assert!(!output.join("cam2/escape.mp4").exists() && !output.join("cam2/corrupt.mp4").exists());

    // Rerun: nothing to do.
    let before = std::fs::metadata(output.join(MEDIA[1])).unwrap().modified().unwrap();
    let (code, _) = batch(&input, &output, &[]);
    assert_eq!(code, Some(3));
    let s = summary(&output.join("faceveil-summary.json"));
    assert_eq!((s["done"].as_u64(), s["up_to_date"].as_u64()), (Some(0), Some(3)));
    assert_eq!(std::fs::metadata(output.join(MEDIA[1])).unwrap().modified().unwrap(), before);

    // A truncated output is redone, and only that one.
    let damaged = output.join(MEDIA[0]);
    let len = std::fs::metadata(&damaged).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&damaged).unwrap().set_len(len / 3).unwrap();
    let (_, _) = batch(&input, &output, &[]);
    let s = summary(&output.join("faceveil-summary.json"));
    assert_eq!((s["done"].as_u64(), s["up_to_date"].as_u64()), (Some(1), Some(2)));
    assert_eq!(frame_times(&input.join(MEDIA[0])), frame_times(&damaged));
    // The summary says why: the output was not the one its report vouched for.
    assert_eq!(redone(&s), vec![(MEDIA[0].to_string(), "output-changed".into())]);
    let csv = std::fs::read_to_string(output.join("faceveil-summary.csv")).unwrap();
    assert!(csv.lines().next().unwrap().ends_with(",redone"), "{csv}");
    assert!(csv.lines().any(|l| l.contains(MEDIA[0]) && l.ends_with(",output-changed")), "{csv}");

    // An output redacted by an earlier revision of faceveil's masks and styles (a report without
    // `redaction_revision`, as written before issue 13) is redone although its parameters match.
    let old_report = format!("{}.faceveil.json", output.join(MEDIA[1]).display());
    let mut r: Value = serde_json::from_slice(&std::fs::read(&old_report).unwrap()).unwrap();
    assert_eq!(r["redaction_revision"], faceveil::report::VIDEO_REDACTION_REVISION);
    r.as_object_mut().unwrap().remove("redaction_revision");
    std::fs::write(&old_report, serde_json::to_vec(&r).unwrap()).unwrap();
    let (_, _) = batch(&input, &output, &[]);
    let s = summary(&output.join("faceveil-summary.json"));
    assert_eq!((s["done"].as_u64(), s["up_to_date"].as_u64()), (Some(1), Some(2)));
    assert_eq!(redone(&s), vec![(MEDIA[1].to_string(), "revision".into())]);

    // Revisions are counted per kind of media: a photo made before the photos' last change (a dark photo's
    // tiny faces, issue 34) is redone; a video of the same revision number is up to date.
    let photo_report = format!("{}.faceveil.json", output.join(MEDIA[2]).display());
    let mut r: Value = serde_json::from_slice(&std::fs::read(&photo_report).unwrap()).unwrap();
    assert_eq!(r["redaction_revision"], faceveil::report::PHOTO_REDACTION_REVISION);
    const { assert!(faceveil::report::PHOTO_REDACTION_REVISION > faceveil::report::VIDEO_REDACTION_REVISION) };
    r["redaction_revision"] = faceveil::report::VIDEO_REDACTION_REVISION.into();
    std::fs::write(&photo_report, serde_json::to_vec(&r).unwrap()).unwrap();
    let (_, _) = batch(&input, &output, &[]);
    let s = summary(&output.join("faceveil-summary.json"));
    assert_eq!((s["done"].as_u64(), s["up_to_date"].as_u64()), (Some(1), Some(2)));
    let st = statuses(&s);
    assert!(st.contains(&(MEDIA[2].into(), "done".into())), "{st:?}");
    assert!(st.contains(&(MEDIA[1].into(), "up-to-date".into())), "{st:?}");
    assert_eq!(redone(&s), vec![(MEDIA[2].to_string(), "revision".into())]);

    // A video's report holds the schedule its frame rate gave (25 fps: 5 frames bridged, tiles over 6). A report
    // written before the rate was recorded (no `frame_rate`) is compared on the 25 fps schedule: up to date, not
    // an archive redone after an upgrade. One made on another schedule is redone.
    let video_report = format!("{}.faceveil.json", output.join(MEDIA[0]).display());
    let mut r: Value = serde_json::from_slice(&std::fs::read(&video_report).unwrap()).unwrap();
    assert_eq!(r["frame_rate"], serde_json::json!({"num": 25, "den": 1}));
    let p = &r["parameters"];
    assert_eq!((p["bridge_frames"].as_u64(), p["tile_period"].as_u64()), (Some(5), Some(6)));
    r.as_object_mut().unwrap().remove("frame_rate");
    std::fs::write(&video_report, serde_json::to_vec(&r).unwrap()).unwrap();
    let (_, _) = batch(&input, &output, &[]);
    let s = summary(&output.join("faceveil-summary.json"));
    assert_eq!((s["done"].as_u64(), s["up_to_date"].as_u64()), (Some(0), Some(3)));
    r["parameters"]["bridge_frames"] = 11.into();
    r["parameters"]["tile_period"] = 12.into();
    std::fs::write(&video_report, serde_json::to_vec(&r).unwrap()).unwrap();
    let (_, _) = batch(&input, &output, &[]);
    let s = summary(&output.join("faceveil-summary.json"));
    assert_eq!(redone(&s), vec![(MEDIA[0].to_string(), "parameters".into())]);

    // An encoder setting changes the videos, not the photo: only the videos are redone (issue 34: the default
    // preset changed, and a resumed archive redid its photos too).
    let (_, _) = batch(&input, &output, &["--preset", "medium"]);
    let s = summary(&output.join("faceveil-summary.json"));
    assert_eq!((s["done"].as_u64(), s["up_to_date"].as_u64()), (Some(2), Some(1)));
    assert!(statuses(&s).contains(&(MEDIA[2].into(), "up-to-date".into())), "{:?}", statuses(&s));
    assert_eq!(redone(&s), MEDIA[..2].iter().map(|m| (m.to_string(), "parameters".into())).collect::<Vec<_>>());

    // Changed parameters make every output stale.
    let (_, err) = batch(&input, &output, &["--style", "pixelate"]);
    let s = summary(&output.join("faceveil-summary.json"));
    assert_eq!(s["done"].as_u64(), Some(3));
    assert_eq!(redone(&s), MEDIA.iter().map(|m| (m.to_string(), "parameters".into())).collect::<Vec<_>>());
    assert!(err.contains("(made again: the parameters differ)"), "{err}");
}

/// The report of `rel` under `output`, and its path.
fn report_of(output: &Path, rel: &str) -> (PathBuf, Value) {
    let path = PathBuf::from(format!("{}.faceveil.json", output.join(rel).display()));
    let report = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    (path, report)
}

#[test]
fn a_resumed_batch_redoes_the_fast_videos_an_earlier_build_covered_another_way() {
    // Above 37 fps the whole-frame passes are spaced as at 25 fps and faces keep their regions between (issue
    // 34); at 25 fps nothing changed. A report of the revision before that change is stale at 50 fps only.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let x264 = ["-c:v", "libx264", "-preset", "ultrafast"];
    make_clip(&input.join("fast.mkv"), 8, &x264, &["-c:a", "libopus"], ",fps=50");
    make_clip(&input.join("base.mkv"), 8, &x264, &["-c:a", "libopus"], "");
    let output = dir.path().join("out");
    let (code, err) = batch(&input, &output, &[]);
    assert_eq!(code, Some(0), "{err}");
    let (fast, mut fast_report) = report_of(&output, "fast.mkv");
    let (base, mut base_report) = report_of(&output, "base.mkv");
    assert_eq!(fast_report["frame_rate"], serde_json::json!({"num": 50, "den": 1}));
    assert_eq!(fast_report["redaction_revision"], faceveil::report::FAST_VIDEO_REDACTION_REVISION);
    assert_eq!(base_report["redaction_revision"], faceveil::report::VIDEO_REDACTION_REVISION);
    const { assert!(faceveil::report::FAST_VIDEO_REDACTION_REVISION > faceveil::report::VIDEO_REDACTION_REVISION) };

    // Both reports as the build before wrote them: the 50 fps video is redone, the 25 fps one kept.
    fast_report["redaction_revision"] = faceveil::report::VIDEO_REDACTION_REVISION.into();
    base_report["redaction_revision"] = faceveil::report::VIDEO_REDACTION_REVISION.into();
    std::fs::write(&fast, serde_json::to_vec(&fast_report).unwrap()).unwrap();
    std::fs::write(&base, serde_json::to_vec(&base_report).unwrap()).unwrap();
    let (code, err) = batch(&input, &output, &[]);
    assert_eq!(code, Some(0), "{err}");
    let s = summary(&output.join("faceveil-summary.json"));
    assert_eq!(redone(&s), vec![("fast.mkv".to_string(), "revision".into())]);
    assert!(statuses(&s).contains(&("base.mkv".into(), "up-to-date".into())), "{:?}", statuses(&s));
    let (_, fast_report) = report_of(&output, "fast.mkv");
    assert_eq!(fast_report["redaction_revision"], faceveil::report::FAST_VIDEO_REDACTION_REVISION);
}

#[test]
fn a_phone_clip_written_as_matroska_is_shown_upright_and_a_sideways_output_of_an_earlier_build_is_redone() {
    // A phone's 3GP clip, stored turned and flagged to be shown upright, is written as `.mkv`, which cannot
    // carry the flag: the picture is turned in its pixels. An MP4 beside it keeps its flag.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let stored = dir.path().join("stored.mp4");
    make_clip(&stored, 8, &["-c:v", "libx264", "-preset", "ultrafast"], &[], ",transpose=1");
    for name in ["phone.3gp", "phone.mp4"] {
        let flagged = input.join(name);
        ffmpeg(&[
            "-i",
            stored.to_str().unwrap(),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
            flagged.to_str().unwrap(),
        ]);
    }
    let output = dir.path().join("out");
    let (code, err) = batch(&input, &output, &[]);
    assert_eq!(code, Some(0), "{err}");
    let (mkv, mut report) = report_of(&output, "phone.mkv");
    assert_eq!((report["rotation_degrees"].as_u64(), report["rotation_in_pixels"].as_bool()), (Some(270), Some(true)));
    let shown = |path: &Path| probe_entry(path, "stream=width,height:stream_side_data=rotation");
    assert_eq!(shown(&output.join("phone.mkv")), "width=640\nheight=360\n");
    let (_, mp4_report) = report_of(&output, "phone.mp4");
    assert_eq!(mp4_report["rotation_in_pixels"], false);
    assert_eq!(shown(&output.join("phone.mp4")), "width=360\nheight=640\nrotation=90\n");

    // The report as a build that dropped the flag wrote it (no `rotation_in_pixels`): redone, the MP4 kept.
    report.as_object_mut().unwrap().remove("rotation_in_pixels");
    std::fs::write(&mkv, serde_json::to_vec(&report).unwrap()).unwrap();
    let (code, err) = batch(&input, &output, &[]);
    assert_eq!(code, Some(0), "{err}");
    let s = summary(&output.join("faceveil-summary.json"));
    assert_eq!(redone(&s), vec![("phone.3gp".to_string(), "rotation-lost".into())]);
    assert!(statuses(&s).contains(&("phone.mp4".into(), "up-to-date".into())), "{:?}", statuses(&s));
}

#[test]
fn shards_as_concurrent_processes_cover_every_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = archive(dir.path());
    let output = dir.path().join("out");
    let n = 3;
    let children: Vec<_> = (0..n)
        .map(|k| {
            Command::new(env!("CARGO_BIN_EXE_faceveil"))
                .arg("batch")
                .arg(&input)
                .arg("-o")
                .arg(&output)
                .args(["--tile-scale", "0", "--progress", "json", "--jobs", "1"])
                .env("JOB_COMPLETION_INDEX", k.to_string())
                .env("FACEVEIL_SHARD_COUNT", n.to_string())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut seen: Vec<String> = Vec::new();
    for (k, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(log.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()), "not JSON lines: {log}");
        let s = summary(&output.join(format!("faceveil-summary-shard-{k}-of-{n}.json")));
        assert_eq!(s["shard"]["index"].as_u64(), Some(k as u64));
        seen.extend(statuses(&s).into_iter().map(|(f, _)| f));
    }
    seen.sort();
    let mut all: Vec<String> = vec![
        "README.txt",
        "cam1/2024-03-01/0800.mp4",
        "cam2/corrupt.mp4",
        "cam2/door.mkv",
        "cam2/escape.mp4",
        "cam2/still.png",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    all.sort();
    assert_eq!(seen, all, "every file in exactly one shard");
    for rel in MEDIA {
        assert!(output.join(rel).exists(), "{rel} missing");
    }
}

#[test]
fn killed_batch_reruns_to_complete_correct_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let input = archive(dir.path());
    make_clip(&input.join("cam1/long.mp4"), 300, &["-c:v", "libx264", "-preset", "ultrafast"], &["-c:a", "aac"], "");
    let output = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_faceveil"))
        .arg("batch")
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .args(["--tile-scale", "0", "--progress", "none"])
        .spawn()
        .unwrap();
    // Kill once the long clip's hidden temporary output is being written.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let writing = std::fs::read_dir(output.join("cam1"))
            .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with(".long.mp4.")))
            .unwrap_or(false);
        if writing {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!output.join("cam1/long.mp4").exists(), "partial output under the final name");
    let (code, err) = batch(&input, &output, &[]);
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(frame_times(&input.join("cam1/long.mp4")), frame_times(&output.join("cam1/long.mp4")));
    for rel in MEDIA {
        assert!(output.join(rel).exists());
    }
}

#[test]
fn output_inside_input_and_bad_shards_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let input = archive(dir.path());
    let (code, err) = batch(&input, &input.join("redacted"), &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("inside one another"));
    // The input inside the output folder is refused too, and nothing is written.
    let (code, err) = batch(&input, dir.path(), &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(!dir.path().join("cam2").exists() && !dir.path().join("faceveil-summary.json").exists());
    let out = faceveil(os_args!["batch", &input, "-o", &dir.path().join("o"), "--shard", "3/3"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn slurm_array_environment_selects_the_shard_and_examples_check_out() {
    let dir = tempfile::tempdir().unwrap();
    let input = archive(dir.path());
    let output = dir.path().join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_faceveil"))
        .arg("batch")
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .args(["--tile-scale", "0", "--progress", "none"])
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("FACEVEIL_SHARD_COUNT")
        .env("SLURM_ARRAY_TASK_ID", "2")
        .env("SLURM_ARRAY_TASK_MIN", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "2")
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0) | Some(3)), "{}", String::from_utf8_lossy(&out.stderr));
    let s = summary(&output.join("faceveil-summary-shard-1-of-2.json"));
    assert_eq!((s["shard"]["index"].as_u64(), s["shard"]["count"].as_u64()), (Some(1), Some(2)));

    let check = Command::new("bash").arg(repo().join("deploy/check.sh")).output().unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

/// `faceveil summary`: one accounting of a run split in three where shard 2 never ran, one file failed, and a
/// stale unsharded run's summary claims files the shards claim too.
#[test]
fn summary_accounts_for_every_file_across_shards_issue_36() {
    let dir = tempfile::tempdir().unwrap();
    let input = archive(dir.path());
    let output = dir.path().join("out");
    let owner = |rel: &str| faceveil::batch::Shard::owner_of(Path::new(rel), 3).unwrap();
    for k in 0..2 {
        let (code, err) = batch(&input, &output, &["--shard", &format!("{k}/3")]);
        assert!(matches!(code, Some(0) | Some(3)), "{err}");
    }
    let account = || {
        let out = faceveil(os_args!["summary", output.as_os_str(), "--shards", "3"]);
        let a: Value =
            serde_json::from_slice(&std::fs::read(output.join("faceveil-accounting.json")).unwrap()).unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), a)
    };
    let state = |a: &Value, rel: &str| {
        a["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["input"] == rel)
            .map(|f| f["state"].as_str().unwrap().to_string())
    };
    let (code, text, a) = account();
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("shard 2: NO SUMMARY"), "{text}");
    assert_eq!(a["shards_missing"], serde_json::json!([2]));
    for rel in MEDIA.iter().chain(&["cam2/corrupt.mp4"]) {
        let expected = match (owner(rel), *rel) {
            (2, _) => "not-done",
            (_, "cam2/corrupt.mp4") => "failed",
            _ => "done",
        };
        assert_eq!(state(&a, rel).as_deref(), Some(expected), "{rel}: {text}");
    }
    assert!(std::fs::read_to_string(output.join("faceveil-accounting.csv")).unwrap().lines().count() == 7);

    // A summary of an earlier unsharded run left beside the shards' claims every file again.
    let (code, err) = batch(&input, &output, &[]);
    assert_eq!(code, Some(3), "{err}");
    let (code, text, a) = account();
    assert_eq!(code, Some(3), "{text}");
    for rel in MEDIA {
        let expected = if owner(rel) == 2 { "done" } else { "claimed-twice" };
        assert_eq!(state(&a, rel).as_deref(), Some(expected), "{rel}: {text}");
    }
    assert!(text.contains("CLAIMED BY TWO SHARDS"), "{text}");
}

#[test]
fn batch_writes_review_sheets_beside_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let input = archive(dir.path());
    let output = dir.path().join("out");
    let (code, err) = batch(&input, &output, &["--review-sheets"]);
    assert_eq!(code, Some(3), "{err}");
    for rel in MEDIA {
        let sheet = PathBuf::from(format!("{}.review.png", output.join(rel).display()));
        assert!(image::open(&sheet).is_ok(), "{} missing", sheet.display());
    }
}
