//! `faceveil stream`: live input from a pipe and from a loopback UDP source fed by the test, segment files
//! complete and valid, MPEG-TS on standard output, signals and stalls leaving valid segments.

use crate::common::*;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A 640×360 MPEG-TS clip with the portrait and audio, `frames` long at 25 fps.
fn ts_clip(dir: &Path, frames: u32) -> PathBuf {
    let path = dir.join("camera.ts");
    make_clip(&path, frames, &["-c:v", "libx264", "-g", "25", "-f", "mpegts"], &["-c:a", "aac"], "");
    path
}

/// Finished segment files in `dir` (sorted).
fn finished(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    list_dir(dir).iter().filter(|n| n.starts_with(prefix)).map(|n| dir.join(n)).collect()
}

/// Segment files after a run, checking that no temporary segment is left.
fn segments(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let names = list_dir(dir);
    assert!(!names.iter().any(|n| n.starts_with('.')), "temporary segment left: {names:?}");
    finished(dir, prefix)
}

/// Checks that every frame of every segment hides the portrait's face and that the segments carry audio;
/// returns the total frame count.
fn check_segments(segs: &[PathBuf], reference: &[u8]) -> usize {
    check_segments_cut(segs, reference, false)
}

/// As [`check_segments`]; with `cut_short` the last segment may lack audio (a stop ends reading at once, and
/// the input's audio can run behind its video).
fn check_segments_cut(segs: &[PathBuf], reference: &[u8], cut_short: bool) -> usize {
    let mut total = 0;
    for seg in segs {
        let frames = decode_rgb(seg, W, H);
        assert!(!frames.is_empty(), "{} has no frames", seg.display());
        for (i, f) in frames.iter().enumerate() {
            let kept = detail_kept(reference, f, W, FACE_INNER);
            assert!(kept.abs() < 0.3, "{} frame {i} keeps {kept:.2} of the face", seg.display());
        }
        let last = Some(seg) == segs.last();
        if !(cut_short && last) {
            assert!(stream_codecs(seg).contains(&"audio".to_string()), "{} lost its audio", seg.display());
        }
        total += frames.len();
    }
    total
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("faceveil stream did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A camera's clip, its first frame decoded, an empty `out` folder, a segment pattern in it and a report path.
struct Camera {
    clip: PathBuf,
    reference: Vec<u8>,
    out: PathBuf,
    pattern: PathBuf,
    rep: PathBuf,
}

fn camera(dir: &Path, frames: u32) -> Camera {
    let clip = ts_clip(dir, frames);
    let reference = decode_rgb(&clip, W, H).swap_remove(0);
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let pattern = out.join("cam-{n}.mp4");
    Camera { clip, reference, out, pattern, rep: dir.join("stream.json") }
}

fn report(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn pipe_input_becomes_complete_segments_with_every_frame_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let Camera { clip, reference, out, pattern, rep } = camera(dir.path(), 125);
    let mut child = faceveil_command()
        .args(["stream", "-", "-o", pattern.to_str().unwrap(), "--segment-time", "2", "--tile-scale", "0"])
        .arg("--report")
        .arg(&rep)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&std::fs::read(&clip).unwrap()).unwrap();
    let out_put = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out_put.stderr);
    assert!(out_put.status.success(), "{err}");
    let segs = segments(&out, "cam-");
    assert_eq!(segs.len(), 3, "5 s in 2 s segments: {segs:?}");
    assert_eq!(check_segments(&segs, &reference), 125, "frames lost or added");
    for seg in &segs {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(seg).unwrap().permissions().mode() & 0o777, 0o644, "{}", seg.display());
    }
    for (seg, want) in segs.iter().zip([50, 50, 25]) {
        assert_eq!(decode_rgb(seg, W, H).len(), want, "{}", seg.display());
        // Each segment's timestamps start at zero.
        assert!(frame_times(seg)[0].abs() < 1e-6, "{}", seg.display());
    }
    let r = report(&rep);
    assert_eq!(r["frames"], 125);
    // The pipe states its rate: the 25 fps schedule.
    assert_eq!(r["frame_rate"], serde_json::json!({"num": 25, "den": 1}), "{r}");
    assert_eq!((r["bridge_frames"].as_u64(), r["tile_period"].as_u64()), (Some(5), Some(6)), "{r}");
    assert_eq!(r["segments"].as_array().unwrap().len(), 3);
    assert!(r["latency_ms_p50"].as_u64().is_some(), "{r}");
    assert!(r["realtime_factor"].as_f64().unwrap() > 0.0);
}

#[test]
fn mpeg_ts_on_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let clip = ts_clip(dir.path(), 50);
    let reference = decode_rgb(&clip, W, H).swap_remove(0);
    let out = faceveil_command()
        .args(["stream", clip.to_str().unwrap(), "-o", "-", "--tile-scale", "0"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ts = dir.path().join("stdout.ts");
    std::fs::write(&ts, &out.stdout).unwrap();
    assert!(probe_entry(&ts, "format=format_name").contains("mpegts"));
    assert_eq!(check_segments(&[ts], &reference), 50);
}

/// A stream is encoded at the live preset unless one is given: x264 writes the options it ran with into the
/// stream (superfast: diamond motion search, sub-pixel refinement 1; veryfast: hexagon, 2), at zero latency
/// (no B-frames) either way.
#[test]
fn a_stream_is_encoded_at_the_live_preset_unless_one_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let clip = ts_clip(dir.path(), 10);
    let x264_options = |name: &str, preset: &[&str]| {
        let pattern = dir.path().join(format!("{name}-{{n}}.mkv"));
        let out = faceveil_command()
            .args(["stream", clip.to_str().unwrap(), "-o", pattern.to_str().unwrap(), "--tile-scale", "0"])
            .args(preset)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        x264_options_of(&dir.path().join(format!("{name}-00000.mkv")))
    };
    let default = x264_options("default", &[]);
    assert!(default.contains(" me=dia subme=1 ") && default.contains(" bframes=0 "), "{default}");
    let given = x264_options("given", &["--preset", "veryfast"]);
    assert!(given.contains(" me=hex subme=2 ") && given.contains(" bframes=0 "), "{given}");
}

/// A loopback UDP camera fed by the test; when it stops sending, the run ends as stalled (exit 1, naming
/// the input) with every segment complete and valid.
#[test]
fn udp_source_that_stops_ends_stalled_with_valid_segments() {
    let dir = tempfile::tempdir().unwrap();
    let clip = ts_clip(dir.path(), 75);
    let reference = decode_rgb(&clip, W, H).swap_remove(0);
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("udp://127.0.0.1:{port}");
    let pattern = dir.path().join("udp-{n}.mkv");
    let rep = dir.path().join("stream.json");
    let mut child = faceveil_command()
        .args(["stream", &url, "-o", pattern.to_str().unwrap(), "--segment-time", "1", "--stall-timeout", "2"])
        .args(["--tile-scale", "0", "--report", rep.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    ffmpeg(&["-re", "-i", clip.to_str().unwrap(), "-c", "copy", "-f", "mpegts", &format!("{url}?pkt_size=1316")]);
    let status = wait_with_timeout(&mut child, Duration::from_secs(120));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("stalled") && err.contains(&url), "{err}");
    let segs = segments(dir.path(), "udp-");
    assert!(segs.len() >= 3, "3 s in 1 s segments: {segs:?}");
    assert_eq!(check_segments(&segs, &reference), 75, "frames lost on loopback");
    assert!(report(&rep)["error"].as_str().unwrap().contains("stalled"));
}

/// SIGINT (and SIGTERM) finish the segment being written and exit 0; nothing half-written is left.
#[test]
fn sigint_finishes_the_current_segment() {
    let dir = tempfile::tempdir().unwrap();
    let clip = ts_clip(dir.path(), 100);
    let reference = decode_rgb(&clip, W, H).swap_remove(0);
    for signal in ["INT", "TERM"] {
        let pattern = dir.path().join(format!("sig{signal}-{{n}}.mp4"));
        let rep = dir.path().join(format!("{signal}.json"));
        // An endless live camera: the clip looped at its own pace into standard input.
        let mut feeder = Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i"])
            .arg(&clip)
            .args(["-c", "copy", "-f", "mpegts", "-"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = faceveil_command()
            .args(["stream", "-", "-o", pattern.to_str().unwrap(), "--segment-time", "1", "--tile-scale", "0"])
            .args(["--report", rep.to_str().unwrap()])
            .stdin(feeder.stdout.take().unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait for the first finished segment, then signal mid-way through a later one.
        let deadline = Instant::now() + Duration::from_secs(60);
        while finished(dir.path(), &format!("sig{signal}-")).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(500));
        assert!(Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap()
            .success());
        let status = wait_with_timeout(&mut child, Duration::from_secs(60));
        let _ = feeder.kill();
        let _ = feeder.wait();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(status.success(), "SIG{signal}: {err}");
        let segs = segments(dir.path(), &format!("sig{signal}-"));
        assert!(segs.len() >= 2, "SIG{signal}: {segs:?}");
        let frames = check_segments_cut(&segs, &reference, true);
        let r = report(&rep);
        assert_eq!(r["stopped"], true, "{r}");
        assert_eq!(r["frames"].as_u64().unwrap() as usize, frames, "every frame read is in a segment");
    }
}

#[test]
fn bad_patterns_are_usage_errors() {
    for (pattern, needle) in [("out.avi", ".mp4"), ("out.mp4", "{n}"), ("out-%Q-{n}.mp4", "invalid")] {
        let out = faceveil_command().args(["stream", "udp://127.0.0.1:9", "-o", pattern]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{pattern}: {err}");
        assert!(err.contains(needle), "{pattern}: {err}");
    }
}

/// A file still being written by a recorder (`--follow`): read as it grows, ended normally once it has not
/// grown for the stall timeout, with every frame in the segments.
#[test]
fn growing_file_is_followed_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let clip = ts_clip(dir.path(), 75);
    let reference = decode_rgb(&clip, W, H).swap_remove(0);
    let growing = dir.path().join("recording.ts");
    let mut writer = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-re", "-i"])
        .arg(&clip)
        .args(["-c", "copy", "-f", "mpegts"])
        .arg(&growing)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&growing).map(|m| m.len() < 50_000).unwrap_or(true) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let pattern = dir.path().join("rec-{n}.mkv");
    let out = faceveil_command()
        .args(["stream", growing.to_str().unwrap(), "--follow", "--stall-timeout", "2", "-o"])
        .args([pattern.to_str().unwrap(), "--segment-time", "1", "--tile-scale", "0"])
        .output()
        .unwrap();
    assert!(writer.wait().unwrap().success());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let segs = segments(dir.path(), "rec-");
    assert_eq!(check_segments(&segs, &reference), 75);
}

/// Raw frames from a capture device arrive without a container: the input format and its options are given
/// on the command line (as for a v4l2 camera).
#[test]
fn raw_frames_with_an_input_format() {
    let dir = tempfile::tempdir().unwrap();
    let clip = ts_clip(dir.path(), 50);
    let reference = decode_rgb(&clip, W, H).swap_remove(0);
    let raw = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-i"])
        .arg(&clip)
        .args(["-f", "rawvideo", "-pix_fmt", "nv12", "-"])
        .output()
        .unwrap();
    assert!(raw.status.success());
    let pattern = dir.path().join("cam-{n}.mkv");
    let mut child = faceveil_command()
        .args(["stream", "-", "-f", "rawvideo", "--input-option", "video_size=640x360"])
        .args(["--input-option", "pixel_format=nv12", "--input-option", "framerate=25", "--audio", "drop"])
        .args(["-o", pattern.to_str().unwrap(), "--segment-time", "1", "--tile-scale", "0"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&raw.stdout).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let segs = segments(dir.path(), "cam-");
    assert_eq!(segs.len(), 2);
    let mut frames = 0;
    for seg in &segs {
        for f in decode_rgb(seg, W, H) {
            assert!(detail_kept(&reference, &f, W, FACE_INNER).abs() < 0.3);
            frames += 1;
        }
    }
    assert_eq!(frames, 50);
}

#[test]
fn overlay_is_refused_for_live_recordings_issue_15() {
    // A recorder must never be able to store unoutlined-but-unredacted footage by a flag.
    let dir = tempfile::tempdir().unwrap();
    let clip = ts_clip(dir.path(), 10);
    let pattern = dir.path().join("cam-{n}.mkv");
    let out = faceveil_command()
        .args(["stream", clip.to_str().unwrap(), "--overlay", "-o", pattern.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a live recording must be redacted"), "{err}");
    assert_eq!(list_dir(dir.path()), vec!["camera.ts"], "nothing written");
}

#[test]
fn standard_input_is_left_blocking_as_it_was_found_issue_15() {
    // The child's standard input shares its open file description with the test's file: the non-blocking
    // mode the stream sets for reading must be cleared again when it ends.
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let clip = ts_clip(dir.path(), 10);
    let file = std::fs::File::open(&clip).unwrap();
    let pattern = dir.path().join("cam-{n}.mkv");
    let out = faceveil_command()
        .args(["stream", "-", "-o", pattern.to_str().unwrap(), "--tile-scale", "0", "--realtime", "off"])
        .stdin(Stdio::from(file.try_clone().unwrap()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // SAFETY: F_GETFL on a descriptor this test owns.
    let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0);
    assert_eq!(flags & libc::O_NONBLOCK, 0, "standard input left non-blocking");
}

#[test]
fn video_that_stops_while_audio_flows_is_a_stall_issue_15() {
    // A source whose picture stops while its sound keeps coming: 3 s of video and 25 s of audio fed at their
    // own pace (FFmpeg's real-time feeder sends the audio on and holds the rest of the video back). Audio alone
    // must not keep the stream alive, nor pile up in memory waiting for video: the run ends as stalled after
    // the timeout, long before the audio ends, with the segment written so far finished and valid.
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("dying.ts");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25:duration=3",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000:duration=25",
        "-c:v",
        "libx264",
        "-c:a",
        "aac",
        "-f",
        "mpegts",
        clip.to_str().unwrap(),
    ]);
    let mut feeder = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-re", "-i"])
        .arg(&clip)
        .args(["-c", "copy", "-max_interleave_delta", "100000", "-flush_packets", "1", "-f", "mpegts", "-"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pattern = dir.path().join("cam-{n}.mkv");
    let rep = dir.path().join("r.json");
    let started = Instant::now();
    let mut child = faceveil_command()
        .args(["stream", "-", "-o", pattern.to_str().unwrap(), "--tile-scale", "0", "--stall-timeout", "3"])
        .args(["--realtime", "off", "--report", rep.to_str().unwrap()])
        .stdin(feeder.stdout.take().unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_with_timeout(&mut child, Duration::from_secs(60));
    let took = started.elapsed();
    let _ = feeder.kill();
    let _ = feeder.wait();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("no video for 3 s while other streams continue"), "{err}");
    assert!(took < Duration::from_secs(15), "ended after {took:?}, not at the stall (audio runs 25 s)");
    let segs = segments(dir.path(), "cam-");
    assert_eq!(segs.len(), 1, "{segs:?}");
    let frames = frame_times(&segs[0]).len();
    assert!(frames > 0 && frames as u64 == report(&rep)["frames"].as_u64().unwrap(), "{frames} frames written");
}

#[test]
fn a_timestamp_jump_starts_the_next_segment_at_once_and_is_reported_issue_33() {
    // Before the fix the segment clock stepped through the skipped time a segment at a time: a jump of 10^11 s
    // took 30-50 s of CPU with SIGTERM unanswered, and 5·10^12 s (here) would have taken hours.
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("jump.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25",
        "-frames:v",
        "5",
        "-vf",
        "setpts='if(gte(N,3),PTS+5e12/TB,PTS)'",
        "-fps_mode",
        "passthrough",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        clip.to_str().unwrap(),
    ]);
    let pattern = dir.path().join("seg-{n}.mkv");
    let rep = dir.path().join("r.json");
    let mut child = faceveil_command()
        .args(["stream", clip.to_str().unwrap(), "-o", pattern.to_str().unwrap(), "--segment-time", "1"])
        .args(["--realtime", "off", "--tile-scale", "0", "--report", rep.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_with_timeout(&mut child, Duration::from_secs(60));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    let segs = segments(dir.path(), "seg-");
    assert_eq!(segs.len(), 2, "one segment before the jump, one from it: {segs:?}");
    assert_eq!(frame_times(&segs[0]).len() + frame_times(&segs[1]).len(), 5, "every frame kept");
    let warnings = report(&rep)["warnings"].to_string();
    assert!(warnings.contains("timestamps jumped by 5000000000000.040 s"), "{warnings}");
    assert!(!warnings.contains("missing"), "a jump is not lost frames: {warnings}");
}

/// Copies `src` into `dst` (Matroska) packet by packet in `src`'s order without interleaving, with the audio's
/// timestamps moved `ahead_s` seconds later: a source whose sound runs ahead of its picture.
fn with_audio_ahead(src: &Path, dst: &Path, ahead_s: i64) {
    use ff::Rescale;
    use ffmpeg_next as ff;
    ff::init().unwrap();
    ff::util::log::set_level(ff::util::log::Level::Error);
    let mut ictx = ff::format::input(src).unwrap();
    let mut octx = ff::format::output(dst).unwrap();
    let mut kinds = Vec::new();
    for ist in ictx.streams() {
        let mut ost = octx.add_stream(ff::encoder::find(ff::codec::Id::None)).unwrap();
        ost.set_parameters(ist.parameters());
        // SAFETY: clearing the codec tag of a stream this function owns, as remuxing does.
        unsafe { (*ost.parameters().as_mut_ptr()).codec_tag = 0 };
        kinds.push((ist.parameters().medium(), ist.time_base()));
    }
    octx.write_header().unwrap();
    let out_tb: Vec<_> = octx.streams().map(|s| s.time_base()).collect();
    for (stream, mut pkt) in ictx.packets() {
        let i = stream.index();
        let (kind, itb) = kinds[i];
        if kind == ff::media::Type::Audio {
            let shift = ahead_s.rescale(ff::Rational(1, 1), itb);
            pkt.set_pts(pkt.pts().map(|t| t + shift));
            pkt.set_dts(pkt.dts().map(|t| t + shift));
        }
        pkt.rescale_ts(itb, out_tb[i]);
        pkt.set_position(-1);
        pkt.set_stream(i);
        pkt.write(&mut octx).unwrap();
    }
    octx.write_trailer().unwrap();
}

#[test]
fn audio_far_ahead_of_the_video_is_written_not_held_without_bound_issue_33() {
    let dir = tempfile::tempdir().unwrap();
    let normal = dir.path().join("normal.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=8000",
        "-frames:v",
        "75",
        "-t",
        "3",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        normal.to_str().unwrap(),
    ]);
    let ahead = dir.path().join("ahead.mkv");
    with_audio_ahead(&normal, &ahead, 600);
    let audio_in = packet_count(&ahead, "a:0");
    assert!(audio_in > 20, "{audio_in}");
    let pattern = dir.path().join("seg-{n}.mkv");
    let rep = dir.path().join("r.json");
    let out = faceveil_command()
        .args(["stream", ahead.to_str().unwrap(), "-o", pattern.to_str().unwrap(), "--segment-time", "1"])
        .args(["--realtime", "off", "--tile-scale", "0", "--report", rep.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let segs = segments(dir.path(), "seg-");
    assert_eq!(segs.len(), 3, "{segs:?}");
    // Every audio packet is kept, and they went out as the video ran rather than all at the end.
    let audio: Vec<usize> = segs.iter().map(|s| packet_count(s, "a:0")).collect();
    assert_eq!(audio.iter().sum::<usize>(), audio_in, "{audio:?}");
    assert!(audio[0] > 0, "the first segment held none of the audio that came with it: {audio:?}");
    let warnings = report(&rep)["warnings"].to_string();
    assert!(warnings.contains("ran more than 30 s ahead of the video"), "{warnings}");
}

/// `--hold-effort`: every frame analysed at the level held, as reduced (masks enlarged), with the face hidden on
/// every frame; refused where the run is not paced or the level does not exist.
#[test]
fn a_held_effort_level_is_kept_on_every_frame_and_hides_the_face() {
    let dir = tempfile::tempdir().unwrap();
    let Camera { clip, reference, out, pattern, rep } = camera(dir.path(), 50);
    let run = faceveil_command()
        .args(["stream", clip.to_str().unwrap(), "-o", pattern.to_str().unwrap(), "--realtime", "on"])
        .args(["--hold-effort", "3", "--report", rep.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    assert!(err.contains("level 3"), "the held level is logged: {err}");
    let segs = segments(&out, "cam-");
    assert_eq!(check_segments(&segs, &reference), 50, "frames lost or added");
    let r = report(&rep);
    assert_eq!((r["frames"].as_u64(), r["frames_degraded"].as_u64()), (Some(50), Some(50)), "{r}");
    assert_eq!(r["frames_by_effort"], serde_json::json!([0, 0, 0, 50]), "every frame at the level held: {r}");
    assert!(err.contains("(effort levels 1/2/3: 0/0/50)"), "{err}");

    for args in [["--realtime", "off", "--hold-effort", "2"], ["--realtime", "on", "--hold-effort", "4"]] {
        let run = faceveil_command()
            .args(["stream", clip.to_str().unwrap(), "-o", out.join("x-{n}.mp4").to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&run.stderr));
        assert!(finished(&out, "x-").is_empty(), "{args:?}: nothing written");
    }
}
