//! Faults around a run: damaged data mid-file, codecs FFmpeg cannot decode, a full disk, a read-only output
//! folder, links planted in a batch output tree. Each ends with a clear error or a defined partial result,
//! never a file under the final name that looks finished.

use crate::common::*;
use crate::os_args;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A folder with a small filesystem mounted on it for the test (unmounted on drop). `None` where this
/// process may not mount (not root, or a container without the capability).
struct Mounted {
    dir: tempfile::TempDir,
}

impl Mounted {
    fn tmpfs(options: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "faceveil-test"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Runs faceveil through `sh` with a prelude (limits, dropped privileges) and a clean environment.
fn faceveil_under(prelude: &str, args: &[&std::ffi::OsStr]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("{prelude} exec \"$@\""))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_faceveil"))
        .args(args)
        .env_remove("FACEVEIL_ORT_LIB")
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("FACEVEIL_MODEL")
        .output()
        .expect("sh runs")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// Overwrites `len` bytes in the middle of `path` with noise, as a bad sector or a broken transfer would.
fn damage_middle(path: &Path, len: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let start = bytes.len() / 2;
    let mut x = 0x9e37_79b9u32;
    for b in &mut bytes[start..start + len] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_picture_size_that_changes_mid_stream_is_scaled_to_the_first_and_every_frame_is_redacted() {
    // Recordings of two sizes joined byte for byte (a DVR that switched its resolution): before, the whole file
    // was refused ("picture size changes mid-stream").
    let dir = tempfile::tempdir().unwrap();
    let ts = ["-c:v", "libx264", "-qp", "0", "-preset", "ultrafast", "-f", "mpegts"];
    let (big, small) = (dir.path().join("big.ts"), dir.path().join("small.ts"));
    make_clip(&big, 25, &ts, &[], "");
    make_clip(&small, 25, &ts, &[], ",scale=480:270");
    let joined = dir.path().join("joined.ts");
    std::fs::write(&joined, [std::fs::read(&big).unwrap(), std::fs::read(&small).unwrap()].concat()).unwrap();
    let output = dir.path().join("out.mkv");
    let out = faceveil(os_args!["redact", &joined, "-o", &output, "--crf", "0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    // The join breaks the transport stream's packet counters, which is reported as damage (exit 5).
    assert!(matches!(out.status.code(), Some(0 | 5)), "{err}");
    assert!(
        err.contains("picture size changed mid-stream (25 frame(s), the first of them frame 25 at 480x270)"),
        "{err}"
    );
    // The second recording as the first size shows it: the reference its frames are judged against.
    let small_up = dir.path().join("small-up.mkv");
    ffmpeg(&[
        "-i",
        small.to_str().unwrap(),
        "-vf",
        "scale=640:360",
        "-c:v",
        "libx264",
        "-qp",
        "0",
        small_up.to_str().unwrap(),
    ]);
    let reference: Vec<Vec<u8>> = [decode_rgb(&big, W, H), decode_rgb(&small_up, W, H)].concat();
    let got = decode_rgb(&output, W, H);
    assert_eq!(got.len(), 50, "frames lost");
    for (i, (r, f)) in reference.iter().zip(&got).enumerate() {
        let kept = detail_kept(r, f, W, FACE_INNER);
        assert!(kept.abs() < 0.3, "frame {i} keeps {kept:.2} of the face's detail");
    }
}

#[test]
fn transport_streams_joined_end_to_end_keep_every_frame_spaced_and_their_sound() {
    // Three copies of one recording joined byte for byte, as archived chunks are, or as a camera that restarts
    // its encoder sends them: the clock starts again at each join.
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("part.ts");
    make_clip(&part, 50, &["-c:v", "libx264", "-g", "25", "-f", "mpegts"], &["-c:a", "aac"], "");
    let reference = decode_rgb(&part, W, H).swap_remove(0);
    let joined = dir.path().join("joined.ts");
    let bytes = std::fs::read(&part).unwrap();
    std::fs::write(&joined, [bytes.as_slice(), &bytes, &bytes].concat()).unwrap();
    let output = dir.path().join("out.mkv");
    let out = faceveil(os_args!["redact", &joined, "-o", &output, "--tile-scale", "0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    // The joins break the transport stream's packet counters, which is reported as damage (exit 5).
    assert!(matches!(out.status.code(), Some(0 | 5)), "{err}");
    assert!(err.contains("clock restarted 2 time(s)"), "{err}");
    // Every frame, 40 ms apart from the first to the last (before, the frames after a join were squeezed
    // into a millisecond, and a clip with sound could not be written at all).
    let times = frame_times(&output);
    assert_eq!(times.len(), 150);
    for (i, w) in times.windows(2).enumerate() {
        assert!((w[1] - w[0] - 0.04).abs() < 0.002, "frames {i} and {} are {:.3} s apart", i + 1, w[1] - w[0]);
    }
    // The sound of all three, each copy where it was against its own pictures.
    let (part_times, part_sound) = (frame_times(&part), packet_times(&part, "a:0"));
    let sound = packet_times(&output, "a:0");
    assert_eq!(sound.len(), 3 * part_sound.len());
    for (k, copy) in sound.chunks(part_sound.len()).enumerate() {
        for (i, (&t, &want)) in copy.iter().zip(&part_sound).enumerate() {
            let (got, want) = (t - times[50 * k], want - part_times[0]);
            assert!(
                (got - want).abs() < 0.003,
                "copy {k}, sound packet {i}: {got:.3} s after its first picture, not {want:.3}"
            );
        }
    }
    for (i, f) in decode_rgb(&output, W, H).iter().enumerate() {
        let kept = detail_kept(&reference, f, W, FACE_INNER);
        assert!(kept.abs() < 0.3, "frame {i} keeps {kept:.2} of the face's detail");
    }
}

#[test]
fn broken_packets_mid_file_keep_what_decodes_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("damaged.ts");
    make_clip(&input, 100, &["-c:v", "libx264", "-g", "25", "-f", "mpegts"], &["-c:a", "aac"], "");
    // The portrait does not move: the undamaged first frame is the reference for every frame's face.
    let reference = decode_rgb(&input, W, H).swap_remove(0);
    damage_middle(&input, 150_000);
    let output = dir.path().join("out.mkv");
    let report = dir.path().join("report.json");
    let out = faceveil(os_args!["redact", &input, "-o", &output, "--report", &report, "--tile-scale", "0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("damaged.ts") && err.contains("damaged"), "{err}");
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let frames = r["frames"].as_u64().unwrap();
    assert!(frames > 30 && frames < 100, "the damage did not cost frames: {frames}");
    let lost = r["frames_missing"].as_u64().unwrap() + r["decode_errors"].as_u64().unwrap();
    assert!(lost > 0, "the report does not say frames were lost: {r}");
    assert_eq!(r["frames_written"].as_u64().unwrap(), frames);
    // Every frame written is a redacted one: the face is gone wherever the picture survived.
    let written = decode_rgb(&output, W, H);
    assert_eq!(written.len() as u64, frames);
    for (i, f) in written.iter().enumerate() {
        let kept = detail_kept(&reference, f, W, FACE_INNER);
        assert!(kept.abs() < 0.3, "frame {i} keeps {kept:.2} of the face's detail");
    }
}

#[test]
fn unsupported_codec_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // A codec FFmpeg can write but not read (Commodore 64 multicolour), in a container that holds anything.
    let input = dir.path().join("exotic.nut");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x200:rate=25",
        "-t",
        "0.2",
        "-c:v",
        "a64multi",
        input.to_str().unwrap(),
    ]);
    let output = dir.path().join("out.mp4");
    let out = faceveil(os_args!["redact", &input, "-o", &output]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("exotic.nut") && err.contains("no decoder"), "{err}");
    assert!(!output.exists());
}

/// A filesystem that fills up mid-write: a real 256 KiB tmpfs where mounting is allowed, else a file size
/// limit (`ulimit -f`), which fails the same writes with EFBIG instead of ENOSPC.
#[test]
fn full_disk_is_a_clear_error_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clip.mp4");
    make_clip(&input, 100, &["-c:v", "libx264", "-qp", "5"], &["-c:a", "aac"], "");
    assert!(std::fs::metadata(&input).unwrap().len() > 600_000, "clip too small to fill the disk");
    let mount = Mounted::tmpfs("size=256k");
    let (out_dir, prelude, needle) = match &mount {
        Some(m) => (m.path().to_path_buf(), "", "No space left"),
        None => (dir.path().join("limited"), "trap '' XFSZ; ulimit -f 256;", "too large"),
    };
    std::fs::create_dir_all(&out_dir).unwrap();
    let output = out_dir.join("out.mp4");
    let out = faceveil_under(prelude, os_args!["redact", &input, "-o", &output, "--tile-scale", "0", "--crf", "0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(needle) && err.contains("out.mp4"), "{err}");
    assert!(list_dir(&out_dir).is_empty(), "left behind: {:?}", list_dir(&out_dir));
}

/// A read-only output folder: a read-only mount where mounting is allowed, else a folder the (unprivileged)
/// user may not write, since root ignores permission bits.
#[test]
fn read_only_output_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mount = Mounted::tmpfs("ro,size=64k");
    let (out_dir, prelude, needle) = match &mount {
        Some(m) => (m.path().to_path_buf(), String::new(), "Read-only file system"),
        None => {
            let d = dir.path().join("locked");
            std::fs::create_dir(&d).unwrap();
            set_mode(&d, 0o555);
            let prelude = if is_root() {
                set_mode(dir.path(), 0o755);
                let drop = "setpriv --reuid=65534 --regid=65534 --clear-groups --";
                let can_drop =
                    Command::new("sh").arg("-c").arg(format!("{drop} true")).status().is_ok_and(|s| s.success());
                if !can_drop {
                    // Root that can neither mount nor drop privileges cannot be refused a write: nothing to test.
                    eprintln!("SKIPPED read_only_output_folder_is_a_clear_error: no mount and no setpriv here");
                    return;
                }
                format!("exec {drop}")
            } else {
                String::new()
            };
            (d, prelude, "Permission denied")
        }
    };
    let input = dir.path().join("photo.png");
    std::fs::copy(astronaut(), &input).unwrap();
    set_mode(&input, 0o644);
    let output = out_dir.join("out.png");
    let out = faceveil_under(&prelude, os_args!["redact", &input, "-o", &output]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(needle) && err.contains(out_dir.to_str().unwrap()), "{err}");
    assert!(list_dir(&out_dir).is_empty());
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Links in a batch: a linked folder in the input is not followed, and a link planted in the output tree
/// (where an output folder should be) is refused rather than written through.
#[test]
fn batch_outputs_cannot_escape_the_output_folder() {
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("in");
    let outside = root.path().join("outside");
    let output = root.path().join("out");
    for d in [&input.join("cam1"), &input.join("cam2"), &outside, &output] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::copy(astronaut(), input.join("cam1/a.png")).unwrap();
    std::fs::copy(astronaut(), input.join("cam2/b.png")).unwrap();
    std::fs::copy(astronaut(), outside.join("secret.png")).unwrap();
    std::os::unix::fs::symlink(&outside, input.join("linked")).unwrap();
    // The output tree already holds a link named like an output folder, pointing outside it.
    std::os::unix::fs::symlink(&outside, output.join("cam2")).unwrap();

    let out = faceveil(os_args!["batch", &input, "-o", &output, "--progress", "none"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(list_dir(&outside), vec!["secret.png"], "something was written outside the output folder");
    let summary: Value = serde_json::from_slice(&std::fs::read(output.join("faceveil-summary.json")).unwrap()).unwrap();
    let by_input = |name: &str| -> Value {
        summary["files"].as_array().unwrap().iter().find(|f| f["input"] == name).cloned().unwrap_or(Value::Null)
    };
    assert_eq!(by_input("cam1/a.png")["status"], "done");
    let b = by_input("cam2/b.png");
    assert_eq!(b["status"], "failed");
    assert!(b["message"].as_str().unwrap().contains("symbolic link"), "{b}");
    assert_eq!(by_input("linked")["status"], "skipped");
    assert!(by_input("linked/secret.png").is_null(), "a linked folder was followed");
    assert!(output.join("cam1/a.png").is_file());
}

/// Outputs and reports are readable by others but writable only by the owner, whatever the umask.
#[test]
fn outputs_have_safe_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let output: PathBuf = dir.path().join("out.png");
    let report = dir.path().join("out.json");
    let out = faceveil_under("umask 000;", os_args!["redact", &astronaut(), "-o", &output, "--report", &report]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for p in [&output, &report] {
        let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{}", p.display());
    }
}

/// A per-file time limit: a video that is not finished in time is given up with no output, so one
/// pathological recording cannot hold up a batch shard.
#[test]
fn time_limit_gives_up_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("long.mp4");
    make_clip(&input, 300, &["-c:v", "libx264", "-preset", "ultrafast"], &["-c:a", "aac"], "");
    let output = dir.path().join("out.mp4");
    let started = std::time::Instant::now();
    let out = faceveil(os_args!["redact", &input, "-o", &output, "--time-limit", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("time limit of 1 s") && err.contains("long.mp4"), "{err}");
    assert!(!output.exists());
    assert_eq!(list_dir(dir.path()), vec!["long.mp4"], "temporary output left");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "the limit did not stop the run");
}

/// Starts `faceveil ARGS`, waits until a hidden temporary output appears in `dir` (the run is writing), sends
/// SIGINT and returns the exit status and standard error.
fn interrupt_when_writing(dir: &Path, args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    use std::time::{Duration, Instant};
    let child = faceveil_command().args(args).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let writing =
        || walkdir_names(dir).iter().any(|n| n.starts_with('.') && n.contains(".mp4") && !n.ends_with(".json"));
    while !writing() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(writing(), "the run never started writing");
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Every file name under `dir`, recursively.
fn walkdir_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir_names(&p));
        } else {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out
}

#[test]
fn ctrl_c_stops_redact_and_batch_without_output_or_temporary_files_issue_15() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mp4");
    make_clip(&input, 250, &["-c:v", "libx264", "-preset", "ultrafast"], &["-c:a", "aac"], "");
    let output = dir.path().join("out.mp4");
    let (code, err) = interrupt_when_writing(dir.path(), os_args!["redact", &input, "-o", &output]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("interrupted; no output written"), "{err}");
    assert_eq!(list_dir(dir.path()), vec!["in.mp4"], "output or temporary file left");

    // batch: the file being redacted stops without output; the summary says interrupted; a rerun resumes.
    let archive = dir.path().join("archive");
    std::fs::create_dir(&archive).unwrap();
    std::fs::rename(&input, archive.join("cam.mp4")).unwrap();
    let out_dir = dir.path().join("redacted");
    std::fs::create_dir(&out_dir).unwrap();
    let (code, err) = interrupt_when_writing(&out_dir, os_args!["batch", &archive, "-o", &out_dir]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let names = walkdir_names(&out_dir);
    assert!(!names.iter().any(|n| n.starts_with('.') || n == "cam.mp4"), "{names:?}");
    let s: Value = serde_json::from_slice(&std::fs::read(out_dir.join("faceveil-summary.json")).unwrap()).unwrap();
    assert_eq!(s["interrupted"], true, "{s}");
    let again = faceveil(os_args!["batch", &archive, "-o", &out_dir, "--tile-scale", "0"]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(out_dir.join("cam.mp4").exists());
}
