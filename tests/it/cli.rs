//! The binary as a user runs it, with the real CenterFace model.

use crate::common::*;
use crate::os_args;
use std::path::Path;

fn assert_redacted_and_intact(input: &Path, output: &Path) {
    let a = decode_rgb(input, W, H);
    let b = decode_rgb(output, W, H);
    assert_eq!(a.len(), b.len(), "frame count changed");
    for (i, (fa, fb)) in a.iter().zip(&b).enumerate() {
        let kept = detail_kept(fa, fb, W, FACE_INNER);
        assert!(kept.abs() < 0.3, "frame {i}: {kept:.2} of the face's detail kept");
        // Lossless in and out: far from the face nothing may change.
        assert_eq!(max_diff(fa, fb, W, FAR), 0, "frame {i}: pixels far from the face changed");
        assert_eq!(max_diff(fa, fb, W, LEFT_BACKGROUND), 0, "frame {i}: background changed");
    }
}

#[test]
fn redacts_real_face_keeps_frames_timestamps_and_audio() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mp4");
    let output = dir.path().join("out.mp4");
    let report = dir.path().join("out.json");
    make_clip(&input, 30, &lossless_h264(), &["-c:a", "aac"], "");
    let out = faceveil(os_args!["redact", &input, "-o", &output, "--crf", "0", "--report", &report]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    assert_eq!(frame_times(&input), frame_times(&output));
    assert_eq!(packet_count(&input, "a:0"), packet_count(&output, "a:0"));
    assert_eq!(stream_codecs(&output), vec!["video", "audio"]);
    assert_redacted_and_intact(&input, &output);

    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["frames"], 30);
    assert_eq!(r["frames_written"], 30);
    assert_eq!(r["frames_with_faces"], 30, "the real detector must find the face in every frame");
    let area = r["redacted_area_fraction"].as_f64().unwrap();
    assert!(area > 0.01 && area < 0.5, "redacted area {area}");
    assert_eq!(r["model_sha256"], default_models_sha256().as_str(), "video is analysed with the fp32 model");
    let runtime = r["runtime"].as_str().unwrap_or_default();
    assert!(runtime.contains("CPU provider, fp32"), "the default runtime is reported: {runtime}");
    // Every model that ran, with its passes and pixels (no boxes): CenterFace on the whole frame, YuNet on tiles.
    let models = r["models"].as_array().unwrap();
    let ran =
        |name: &str| models.iter().find(|m| m["model"] == name).map(|m| (m["passes"].as_u64(), m["pixels"].as_u64()));
    assert!(matches!(ran("centerface"), Some((Some(p), Some(px))) if p > 0 && px > 0), "{models:?}");
    assert!(matches!(ran("yunet-s"), Some((Some(p), Some(px))) if p > 0 && px > 0), "{models:?}");
    assert_eq!(r["input_sha256"].as_str().unwrap(), faceveil::io::sha256_file(&input).unwrap());
    assert_eq!(r["output_sha256"].as_str().unwrap(), faceveil::io::sha256_file(&output).unwrap());
    assert_eq!(list_dir(dir.path()), vec!["in.mp4", "out.json", "out.mp4"], "temporary files left behind");
}

#[test]
fn variable_frame_rate_timestamps_survive() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("vfr.mp4");
    let output = dir.path().join("out.mp4");
    // 10 frames at 25 fps, then 10 fps.
    let mut codec = lossless_h264();
    codec.extend(["-fps_mode", "passthrough"]);
    make_clip(&input, 25, &codec, &["-c:a", "aac"], ",setpts='if(lt(N,10),N*0.04,0.4+(N-10)*0.1)/TB'");
    let times = frame_times(&input);
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let (lo, hi) = gaps.iter().fold((f64::MAX, 0f64), |(lo, hi), g| (lo.min(*g), hi.max(*g)));
    assert!(hi > 1.5 * lo, "test clip is not VFR: {times:?}");
    let out = faceveil(os_args!["redact", &input, "-o", &output, "--crf", "0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(times, frame_times(&output));
    assert_eq!(packet_count(&input, "a:0"), packet_count(&output, "a:0"));
    assert_redacted_and_intact(&input, &output);
}

#[test]
fn h265_input_is_redacted_into_h264() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("hevc.mp4");
    let output = dir.path().join("out.mp4");
    make_clip(
        &input,
        20,
        &["-c:v", "libx265", "-x265-params", "log-level=error", "-tag:v", "hvc1"],
        &["-c:a", "aac"],
        "",
    );
    let out = faceveil(os_args!["redact", &input, "-o", &output]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(frame_times(&input), frame_times(&output));
    assert!(probe_entry(&output, "stream=codec_name").contains("h264"));
    let a = decode_rgb(&input, W, H);
    let b = decode_rgb(&output, W, H);
    for (fa, fb) in a.iter().zip(&b) {
        assert!(detail_kept(fa, fb, W, FACE_INNER).abs() < 0.3);
    }
}

#[test]
fn rotation_side_data_is_kept_and_sideways_face_found() {
    let dir = tempfile::tempdir().unwrap();
    let upright = dir.path().join("upright.mp4");
    let input = dir.path().join("rotated.mp4");
    let output = dir.path().join("out.mp4");
    // Store the picture turned 90° clockwise, flagged (display matrix: 90° counter-clockwise) to be shown
    // upright: the face is sideways in the stored frames, as on a phone filmed in portrait.
    make_clip(&upright, 10, &lossless_h264(), &[], ",transpose=1");
    ffmpeg(&["-i", upright.to_str().unwrap(), "-c", "copy", "-metadata:s:v:0", "rotate=90", input.to_str().unwrap()]);
    let side = probe_entry(&input, "stream_side_data=rotation");
    assert!(side.contains("rotation=90"), "test clip lacks rotation: {side}");
    let out = faceveil(os_args!["redact", &input, "-o", &output, "--crf", "0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(probe_entry(&output, "stream_side_data=rotation"), side);
    // Stored frames are 360x640; the face sits at the transposed position.
    let a = decode_rgb(&input, H, W);
    let b = decode_rgb(&output, H, W);
    let t = |r: (u32, u32, u32, u32)| (H - r.3, r.0, H - r.1, r.2);
    for (fa, fb) in a.iter().zip(&b) {
        assert!(detail_kept(fa, fb, H, t(FACE_INNER)).abs() < 0.3, "sideways face not redacted");
    }
}

#[test]
fn a_rotation_flag_the_container_cannot_carry_is_turned_into_the_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let upright = dir.path().join("upright.mp4");
    let stored = dir.path().join("stored.mp4");
    let input = dir.path().join("rotated.mp4");
    // The picture stored turned 90° clockwise and flagged to be shown upright, as in the test above; Matroska
    // and MPEG-TS cannot carry the flag (FFmpeg drops it there without a word).
    make_clip(&upright, 10, &lossless_h264(), &[], "");
    make_clip(&stored, 10, &lossless_h264(), &[], ",transpose=1");
    ffmpeg(&["-i", stored.to_str().unwrap(), "-c", "copy", "-metadata:s:v:0", "rotate=90", input.to_str().unwrap()]);
    for ext in ["mkv", "ts"] {
        let output = dir.path().join(format!("out.{ext}"));
        let report = dir.path().join(format!("out-{ext}.json"));
        let out = faceveil(os_args!["redact", &input, "-o", &output, "--crf", "0", "--report", &report]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // Shown as the input is shown: upright in its pixels, and no flag left to turn it again.
        // (ffprobe lists an MPEG-TS stream under its program too.)
        let size = probe_entry(&output, "stream=width,height");
        assert!(size.starts_with("width=640\nheight=360\n") && size.lines().count() % 2 == 0, "{ext}: {size}");
        assert!(size.lines().all(|l| l == "width=640" || l == "height=360"), "{ext}: {size}");
        assert!(!probe_entry(&output, "stream_side_data=rotation").contains("rotation"), "{ext}");
        assert_eq!(frame_times(&output).len(), 10, "{ext}");
        // The face redacted, every other pixel as the upright picture has it (lossless in and out).
        assert_redacted_and_intact(&upright, &output);
        let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        let warned = r["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("turned 270°"));
        assert!(warned, "{ext}: {}", r["warnings"]);
    }
    assert_eq!(frame_times(&input), frame_times(&dir.path().join("out.mkv")));

    // Interlaced pictures cannot be turned without mixing their fields: refused, naming the input, no output.
    let stored = dir.path().join("stored-interlaced.mp4");
    let input = dir.path().join("rotated-interlaced.mp4");
    let codec = ["-c:v", "libx264", "-qp", "0", "-preset", "ultrafast", "-flags", "+ildct+ilme"];
    make_clip(&stored, 10, &codec, &[], ",transpose=1,interlace");
    ffmpeg(&["-i", stored.to_str().unwrap(), "-c", "copy", "-metadata:s:v:0", "rotate=90", input.to_str().unwrap()]);
    assert!(!probe_entry(&input, "stream=field_order").contains("progressive"), "test clip is not interlaced");
    let output = dir.path().join("interlaced.mkv");
    let out = faceveil(os_args!["redact", &input, "-o", &output]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("rotated-interlaced.mp4") && stderr.contains(".mp4 or .mov"),
        "{stderr}"
    );
    assert!(!output.exists());
}

/// The astronaut's face in `assets/astronaut.png` (512 × 512).
const ASTRONAUT_FACE: (u32, u32, u32, u32) = (195, 75, 255, 160);

/// Share of the astronaut's facial detail that `got` keeps from `orig`.
fn astronaut_detail_kept(orig: &image::RgbImage, got: &image::RgbImage) -> f64 {
    detail_kept(orig.as_raw(), got.as_raw(), 512, ASTRONAUT_FACE)
}

#[test]
fn still_images_are_redacted_in_their_output_format() {
    let dir = tempfile::tempdir().unwrap();
    let src = astronaut();
    for ext in ["png", "jpg", "webp"] {
        let output = dir.path().join(format!("out.{ext}"));
        let out = faceveil(os_args!["redact", &src, "-o", &output]);
        assert!(out.status.success(), "{ext}: {}", String::from_utf8_lossy(&out.stderr));
        let got = image::open(&output).unwrap().to_rgb8();
        let orig = image::open(&src).unwrap().to_rgb8();
        assert_eq!(got.dimensions(), orig.dimensions());
        let kept = astronaut_detail_kept(&orig, &got);
        assert!(kept.abs() < 0.3, "{ext}: {kept:.2} of the face's detail kept");
        if ext != "jpg" {
            // Lossless formats: the far corner is bit-identical.
            assert_eq!(max_diff(got.as_raw(), orig.as_raw(), 512, (0, 300, 150, 512)), 0, "{ext}");
        }
    }
}

#[test]
fn tiff_and_bmp_pictures_are_redacted_as_pictures_in_their_own_format() {
    // Before, FFmpeg read them as one-frame videos: a `.tiff` output held an H.264 stream, lossy and unreadable
    // as a picture, and a batch turned a folder of scans into `.mkv` files.
    let dir = tempfile::tempdir().unwrap();
    let orig = image::open(astronaut()).unwrap().to_rgb8();
    for (ext, format) in
        [("tif", image::ImageFormat::Tiff), ("tiff", image::ImageFormat::Tiff), ("bmp", image::ImageFormat::Bmp)]
    {
        let input = dir.path().join(format!("in.{ext}"));
        orig.save_with_format(&input, format).unwrap();
        let output = dir.path().join(format!("out.{ext}"));
        let out = faceveil(os_args!["redact", &input, "-o", &output]);
        assert!(out.status.success(), "{ext}: {}", String::from_utf8_lossy(&out.stderr));
        let bytes = std::fs::read(&output).unwrap();
        assert_eq!(image::guess_format(&bytes).ok(), Some(format), "{ext}: not written as a {format:?} picture");
        let got = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(got.dimensions(), orig.dimensions());
        let kept = astronaut_detail_kept(&orig, &got);
        assert!(kept.abs() < 0.3, "{ext}: {kept:.2} of the face's detail kept");
        assert_eq!(max_diff(got.as_raw(), orig.as_raw(), 512, (0, 300, 150, 512)), 0, "{ext}: not lossless");
    }
    // Across formats too: the TIFF's picture as PNG.
    let output = dir.path().join("from-tiff.png");
    let out = faceveil(os_args!["redact", &dir.path().join("in.tif"), "-o", &output]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = image::open(&output).unwrap().to_rgb8();
    assert!(astronaut_detail_kept(&orig, &got).abs() < 0.3);
}

#[test]
fn an_animated_picture_is_redacted_as_video_or_refused_never_cut_to_its_first_frame() {
    // Before, the picture decoder read the first frame only and wrote a one-frame "success".
    let dir = tempfile::tempdir().unwrap();
    let clip = clip30(dir.path());
    let apng = dir.path().join("anim.png");
    ffmpeg(&["-i", clip.to_str().unwrap(), "-frames:v", "5", "-plays", "0", "-f", "apng", apng.to_str().unwrap()]);
    let output = dir.path().join("anim.mkv");
    let out = faceveil(os_args!["redact", &apng, "-o", &output, "--crf", "0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (a, b) = (decode_rgb(&apng, W, H), decode_rgb(&output, W, H));
    assert_eq!((a.len(), b.len()), (5, 5), "frames lost");
    for (i, (fa, fb)) in a.iter().zip(&b).enumerate() {
        let kept = detail_kept(fa, fb, W, FACE_INNER);
        assert!(kept.abs() < 0.3, "frame {i}: {kept:.2} of the face's detail kept");
    }
    let still = dir.path().join("anim-out.png");
    let out = faceveil(os_args!["redact", &apng, "-o", &still]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a video cannot be written as a still image"));
    // An animated WebP, which neither the picture decoder nor this FFmpeg reads whole: refused.
    let webp = dir.path().join("anim.webp");
    ffmpeg(&["-i", apng.to_str().unwrap(), "-c:v", "libwebp_anim", "-loop", "0", webp.to_str().unwrap()]);
    let output = dir.path().join("anim-out.webp");
    let out = faceveil(os_args!["redact", &webp, "-o", &output]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("anim.webp") && err.contains("animated WebP"), "{err}");
    assert!(!output.exists() && !still.exists());
}

/// Writes `pages` to `path` as one TIFF, each marked with its `NewSubfileType` (1: a reduced-resolution copy).
fn write_tiff(path: &Path, pages: &[(&image::RgbImage, u32)]) {
    use tiff::encoder::{colortype::RGB8, TiffEncoder};
    let mut enc = TiffEncoder::new(std::fs::File::create(path).unwrap()).unwrap();
    for (img, kind) in pages {
        let mut page = enc.new_image::<RGB8>(img.width(), img.height()).unwrap();
        page.encoder().write_tag(tiff::tags::Tag::NewSubfileType, *kind).unwrap();
        page.write_data(img.as_raw()).unwrap();
    }
}

#[test]
fn a_tiff_of_several_pages_is_refused_and_its_thumbnail_is_not_carried() {
    let dir = tempfile::tempdir().unwrap();
    let orig = image::open(astronaut()).unwrap().to_rgb8();
    let thumb = image::imageops::thumbnail(&orig, 128, 128);
    // A scan of two pages: only the first would be read, so the second's faces would silently go missing.
    let pages = dir.path().join("pages.tif");
    write_tiff(&pages, &[(&orig, 2), (&orig, 2)]);
    let output = dir.path().join("out.tif");
    let out = faceveil(os_args!["redact", &pages, "-o", &output]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("pages.tif") && err.contains("2 pages"), "{err}");
    assert!(!output.exists());
    // A picture with its reduced-resolution copy: redacted, and the copy (the face unredacted) not written.
    let with_thumb = dir.path().join("thumb.tif");
    write_tiff(&with_thumb, &[(&orig, 0), (&thumb, 1)]);
    let out = faceveil(os_args!["redact", &with_thumb, "-o", &output]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("thumbnail"), "no warning");
    let decoder = tiff::decoder::Decoder::new(std::io::BufReader::new(std::fs::File::open(&output).unwrap())).unwrap();
    assert!(!decoder.more_images(), "the output holds more than one picture");
    let got = image::open(&output).unwrap().to_rgb8();
    assert!(astronaut_detail_kept(&orig, &got).abs() < 0.3);
}

#[test]
fn a_video_output_whose_container_cannot_hold_the_video_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let input = clip30(dir.path());
    for (name, why) in [("out.webm", "webm format cannot hold"), ("out.txt", "extension .txt"), ("out", "no extension")]
    {
        let output = dir.path().join(name);
        let out = faceveil(os_args!["redact", &input, "-o", &output]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(why) && err.contains(".mp4, .mkv"), "{name}: {err}");
        assert!(!output.exists(), "{name}");
    }
    assert_eq!(list_dir(dir.path()), vec![input.file_name().unwrap().to_str().unwrap()]);
}

#[test]
fn refuses_to_overwrite_and_to_write_over_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.png");
    std::fs::copy(astronaut(), &input).unwrap();
    let existing = dir.path().join("exists.png");
    std::fs::write(&existing, b"keep me").unwrap();

    let out = faceveil(os_args!["redact", &input, "-o", &existing]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--overwrite"));
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");

    let before = std::fs::read(&input).unwrap();
    let out = faceveil(os_args!["redact", &input, "-o", &input, "--overwrite"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("input"));
    // Through another path to the same file, too.
    let dotted = dir.path().join(".").join("in.png");
    let out = faceveil(os_args!["redact", &input, "-o", &dotted, "--overwrite"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read(&input).unwrap(), before, "input modified");

    let out = faceveil(os_args!["redact", &input, "-o", &existing, "--overwrite"]);
    assert!(out.status.success());
    assert_ne!(std::fs::read(&existing).unwrap(), b"keep me");
    assert_eq!(list_dir(dir.path()), vec!["exists.png", "in.png"]);
}

#[test]
fn corrupt_input_fails_with_its_name_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("broken.mp4");
    let bytes: Vec<u8> = (0..50_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(&input, bytes).unwrap();
    let output = dir.path().join("out.mp4");
    let out = faceveil(os_args!["redact", &input, "-o", &output]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.mp4"), "message does not name the file: {err}");
    assert_eq!(list_dir(dir.path()), vec!["broken.mp4"], "output or temporary file left behind");
}

#[test]
fn codec_thread_count_is_a_setting_not_a_change_to_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mp4");
    make_clip(&input, 12, &lossless_h264(), &[], "");
    for threads in ["1", "3"] {
        let output = dir.path().join(format!("out-{threads}.mp4"));
        let out = faceveil(os_args!["redact", &input, "-o", &output, "--crf", "0", "--codec-threads", threads]);
        assert!(out.status.success(), "{threads} threads: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(frame_times(&input), frame_times(&output));
        assert_redacted_and_intact(&input, &output);
    }
    let (one, three) =
        (decode_rgb(&dir.path().join("out-1.mp4"), W, H), decode_rgb(&dir.path().join("out-3.mp4"), W, H));
    assert!(one == three, "lossless output must not depend on the encoder's thread count");
    let out = faceveil(os_args!["redact", &input, "-o", &dir.path().join("x.mp4"), "--codec-threads", "65"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("codec threads 65"));
}

/// faceveil's default `faster` is x264's `faster` with less motion refinement (`config::FASTER_SUBME`, issue
/// 34); any other preset is x264's own.
#[test]
fn files_are_encoded_at_faster_with_less_refinement_unless_another_preset_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mp4");
    make_clip(&input, 12, &lossless_h264(), &[], "");
    let x264_options = |name: &str, preset: &[&str]| {
        let output = dir.path().join(format!("{name}.mp4"));
        let out = faceveil_command()
            .args(os_args!["redact", &input, "-o", &output, "--crf", "0"])
            .args(preset)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        assert_redacted_and_intact(&input, &output);
        x264_options_of(&output)
    };
    let default = x264_options("default", &[]);
    assert!(default.contains(" me=hex subme=2 ") && default.contains(" ref=2 "), "{default}");
    let medium = x264_options("medium", &["--preset", "medium"]);
    assert!(medium.contains(" me=hex subme=7 ") && medium.contains(" ref=3 "), "{medium}");
}

#[test]
fn missing_input_and_bad_settings() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.mp4");
    let out = faceveil(os_args!["redact", "/nonexistent/clip.mp4", "-o", &output]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/clip.mp4"));
    let out = faceveil(os_args!["redact", &astronaut(), "-o", &output, "--mask-scale", "9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected >= 1, <= 4"));
    let out = faceveil(os_args!["redact", &astronaut(), "-o", &dir.path().join("x.png"), "--style", "sparkle"]);
    assert_eq!(out.status.code(), Some(2));
    // An image cannot become a video and a video cannot become an image.
    let out = faceveil(os_args!["redact", &astronaut(), "-o", &output]);
    assert_eq!(out.status.code(), Some(2));
    assert!(list_dir(dir.path()).is_empty());
}

#[test]
fn audio_the_container_cannot_hold_is_an_error_unless_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("pcm.mkv");
    make_clip(&input, 10, &lossless_h264(), &["-c:a", "pcm_s16le"], "");
    let output = dir.path().join("out.mp4");
    let out = faceveil(os_args!["redact", &input, "-o", &output]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--audio drop") && err.contains("pcm.mkv"), "{err}");
    assert!(!output.exists());
    let out = faceveil(os_args!["redact", &input, "-o", &output, "--audio", "drop"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stream_codecs(&output), vec!["video"]);
    // The same audio fits a Matroska output unchanged.
    let mkv = dir.path().join("out.mkv");
    let out = faceveil(os_args!["redact", &input, "-o", &mkv]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(packet_count(&input, "a:0"), packet_count(&mkv, "a:0"));
}

#[test]
fn chapters_are_metadata_dropped_with_a_word_or_kept_when_asked_in_every_container() {
    // A council meeting's recording with its agenda as chapters: their titles can name people.
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.mp4");
    let meta = dir.path().join("chapters.txt");
    let input = dir.path().join("meeting.mp4");
    make_clip(&plain, 25, &lossless_h264(), &[], "");
    std::fs::write(
        &meta,
        ";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=400\ntitle=Item 1: minutes\n\
         [CHAPTER]\nTIMEBASE=1/1000\nSTART=400\nEND=1000\ntitle=Item 2: public comment\n",
    )
    .unwrap();
    let (p, m, i) = (plain.to_str().unwrap(), meta.to_str().unwrap(), input.to_str().unwrap());
    ffmpeg(&["-i", p, "-i", m, "-map", "0", "-map_chapters", "1", "-c", "copy", i]);
    let chapters = |path: &Path| {
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_chapters", "-of", "csv=p=0"])
            .arg(path)
            .output()
            .unwrap();
        // start and end in seconds, and the title (ids and time bases are the container's own).
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let fields = |l: &str| -> String {
            let f: Vec<&str> = l.splitn(7, ',').collect();
            [f[3], f[5], f[6]].join(",")
        };
        text.lines().map(fields).collect::<Vec<_>>()
    };
    let agenda = chapters(&input);
    assert_eq!(agenda, ["0.000000,0.400000,Item 1: minutes", "0.400000,1.000000,Item 2: public comment"]);
    for ext in ["mp4", "mkv"] {
        let stripped = dir.path().join(format!("stripped.{ext}"));
        let out = faceveil(os_args!["redact", &input, "-o", &stripped]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(chapters(&stripped).is_empty(), "{ext}");
        // One word for the chapters, none for MP4's chapter track that holds them.
        assert!(stderr.contains("2 chapter(s) dropped") && !stderr.contains("data stream"), "{stderr}");
        let kept = dir.path().join(format!("kept.{ext}"));
        let out = faceveil(os_args!["redact", &input, "-o", &kept, "--keep-metadata"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && !stderr.contains("dropped"), "{stderr}");
        assert_eq!(chapters(&kept), agenda, "{ext}");
    }
}

#[test]
fn audio_tracks_keep_their_language_and_which_is_the_default_and_the_audio_description() {
    // A meeting with the floor and an interpretation that is also the audio description, the second the default.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("two-tracks.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=f=440",
        "-f",
        "lavfi",
        "-i",
        "sine=f=880",
        "-t",
        "1",
        "-map",
        "0",
        "-map",
        "1",
        "-map",
        "2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-metadata:s:a:0",
        "language=eng",
        "-metadata:s:a:1",
        "language=fra",
        "-disposition:a:0",
        "0",
        "-disposition:a:1",
        "default+visual_impaired",
        input.to_str().unwrap(),
    ]);
    let tracks =
        |p: &Path| probe_all(p, "stream=codec_type:stream_disposition=default,visual_impaired:stream_tags=language");
    let audio = |p: &Path| {
        tracks(p).split("codec_type=").filter(|t| t.starts_with("audio")).map(str::to_owned).collect::<Vec<_>>()
    };
    let want = audio(&input);
    assert!(want.len() == 2 && want[1].contains("visual_impaired=1") && want[1].contains("default=1"), "{want:?}");
    for ext in ["mkv", "mp4"] {
        let output = dir.path().join(format!("out.{ext}"));
        let out = faceveil(os_args!["redact", &input, "-o", &output]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(audio(&output), want, "{ext}");
    }
}

#[test]
fn metadata_is_stripped_unless_kept_but_the_camera_timecode_survives() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.mp4");
    let input = dir.path().join("tagged.mp4");
    make_clip(&plain, 5, &lossless_h264(), &["-c:a", "aac"], "");
    ffmpeg(&[
        "-i",
        plain.to_str().unwrap(),
        "-c",
        "copy",
        "-metadata",
        "title=Camera 7 at 51.5N 0.1W",
        // A camera's start timecode: a timecode track (tmcd) beside the video.
        "-timecode",
        "10:20:30:04",
        input.to_str().unwrap(),
    ]);
    let stripped = dir.path().join("stripped.mp4");
    let kept = dir.path().join("kept.mp4");
    let out = faceveil(os_args!["redact", &input, "-o", &stripped]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("dropped"), "the timecode track is written again, not lost: {stderr}");
    assert!(faceveil(os_args!["redact", &input, "-o", &kept, "--keep-metadata"]).status.success());
    // Timing, not a description of anyone: kept either way, as MP4 keeps it (a timecode track), and into Matroska.
    let mkv = dir.path().join("stripped.mkv");
    assert!(faceveil(os_args!["redact", &input, "-o", &mkv]).status.success());
    for p in [&input, &stripped, &kept, &mkv] {
        assert_eq!(probe_entry(p, "stream_tags=timecode").trim().to_lowercase(), "tag:timecode=10:20:30:04", "{p:?}");
    }
    let streams = |p: &Path| probe_all(p, "stream=codec_type");
    assert_eq!(streams(&input), streams(&stripped), "video, audio and the timecode track");
    let title = |p: &Path| {
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "format_tags=title", "-of", "default=nw=1"])
            .arg(p)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(title(&input).contains("Camera 7"));
    assert!(!title(&stripped).contains("Camera 7"));
    assert!(title(&kept).contains("Camera 7"));
}

#[test]
fn verify_passes_redacted_output_and_flags_overlay_review_copy() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mp4");
    make_clip(&input, 12, &lossless_h264(), &["-c:a", "aac"], "");
    let redacted = dir.path().join("redacted.mp4");
    let overlay = dir.path().join("overlay.mp4");
    let overlay_report = dir.path().join("overlay.json");
    assert!(faceveil(os_args!["redact", &input, "-o", &redacted]).status.success());
    let out = faceveil(os_args!["redact", &input, "-o", &overlay, "--overlay", "--report", &overlay_report]);
    assert!(out.status.success());
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&overlay_report).unwrap()).unwrap();
    assert_eq!(r["not_for_release"], true);

    let out = faceveil(os_args!["verify", &redacted]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let json = dir.path().join("findings.json");
    let out = faceveil(os_args!["verify", &redacted, &overlay, "--json", &json]);
    assert_eq!(out.status.code(), Some(4));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("overlay.mp4: FACES STILL DETECTABLE in 12 of 12"), "{stdout}");
    assert!(stdout.contains("at 00:00:00.040"), "time codes missing: {stdout}");
    let findings: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(findings[0]["frames_flagged"], 0);
    assert_eq!(findings[1]["frames_flagged"], 12);

    // Against the original: the redacted output keeps none of the face's detail, the overlay keeps all.
    assert_eq!(faceveil(os_args!["verify", &redacted, "--orig", &input]).status.code(), Some(0));
    assert_eq!(faceveil(os_args!["verify", &overlay, "--orig", &input]).status.code(), Some(4));
    assert_eq!(faceveil(os_args!["verify", &overlay, &redacted, "--orig", &input]).status.code(), Some(2));
}

#[test]
fn review_sheet_shows_redacted_frames_with_time_codes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mp4");
    make_clip(&input, 40, &lossless_h264(), &["-c:a", "aac"], "");
    let output = dir.path().join("out.mp4");
    let sheet = dir.path().join("out.review.png");
    let out = faceveil(os_args!["redact", &input, "-o", &output, "--review-sheet", &sheet]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let img = image::open(&sheet).unwrap().to_rgb8();
    // Four thumbnails of 320 px per row, at least two rows (busiest plus evenly spaced frames).
    assert_eq!(img.width(), 4 * 324 + 4);
    assert!(img.height() >= 2 * (180 + 28));
    // The first thumbnail is a redacted frame: its face region matches the output, not the input.
    let a = decode_rgb(&input, W, H);
    let b = decode_rgb(&output, W, H);
    let thumb = image::imageops::crop_imm(&img, 4, 4, 320, 180).to_image();
    let face_thumb = |frame: &[u8]| {
        let full = image::RgbImage::from_raw(W, H, frame.to_vec()).unwrap();
        image::imageops::resize(&full, 320, 180, image::imageops::FilterType::Triangle)
    };
    let diff = |x: &image::RgbImage, y: &image::RgbImage| -> f64 {
        let (mut s, mut n) = (0f64, 0f64);
        for yy in 31..54 {
            for xx in 141..159 {
                s += (x.get_pixel(xx, yy)[1] as f64 - y.get_pixel(xx, yy)[1] as f64).abs();
                n += 1.0;
            }
        }
        s / n
    };
    assert!(diff(&thumb, &face_thumb(&b[0])) < diff(&thumb, &face_thumb(&a[0])), "the sheet shows unredacted faces");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&sheet).unwrap().permissions().mode() & 0o777, 0o644);
}

#[test]
fn static_camera_reuses_unchanged_regions_and_keeps_the_face_redacted() {
    // A fixed camera: the portrait over a flat background, identical in every frame (lossless).
    let dir = tempfile::tempdir().unwrap();
    let (input, output, report) = (dir.path().join("in.mp4"), dir.path().join("out.mp4"), dir.path().join("r.json"));
    let portrait = astronaut();
    let mut args = vec!["-f", "lavfi", "-i", "color=c=0x405060:size=640x360:rate=25", "-loop", "1", "-i"];
    args.push(portrait.to_str().unwrap());
    args.extend(["-filter_complex", "[1:v]scale=360:360[f];[0:v][f]overlay=140:0,format=yuv420p", "-frames:v", "40"]);
    args.extend(lossless_h264());
    args.push(input.to_str().unwrap());
    ffmpeg(&args);
    let out =
        faceveil(os_args!["redact", &input, "-o", &output, "--crf", "0", "--precision", "fp32", "--report", &report]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["model_sha256"], default_models_sha256().as_str(), "--precision fp32 is used for video");
    let (run, reused) = (r["detector_passes"].as_u64().unwrap(), r["detector_passes_reused"].as_u64().unwrap());
    assert!(reused > 3 * run, "an unchanged picture is not searched again: {run} passes run, {reused} reused");
    // The pixels the detector was given are counted for the passes that ran, not for the reused ones.
    let px = |k: &str| r["detector_pixels"][k].as_u64().unwrap();
    let searched = px("whole") + px("tiles") + px("focus");
    assert!(px("whole") > 0 && searched <= run * faceveil::detect::TILE_INPUT_PIXELS, "{}", r["detector_pixels"]);
    assert_eq!(r["frames_with_faces"], 40, "the reused result still reports the face in every frame");
    let (a, b) = (decode_rgb(&input, W, H), decode_rgb(&output, W, H));
    assert_eq!(a.len(), 40);
    for (i, (fa, fb)) in a.iter().zip(&b).enumerate() {
        let kept = detail_kept(fa, fb, W, FACE_INNER);
        assert!(kept.abs() < 0.3, "frame {i}: {kept:.2} of the face's detail kept");
    }
}

#[test]
fn openvino_runtime_runs_where_installed_and_is_named_where_not_issue_14() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.png");
    let out = faceveil(os_args!["redact", &astronaut(), "-o", &output, "--runtime", "openvino"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        assert!(stderr.contains("OpenVINO provider, bf16"), "{stderr}");
        assert!(output.exists());
    } else {
        assert!(stderr.contains("FACEVEIL_OPENVINO=1 bash scripts/setup.sh"), "{stderr}");
        assert!(!output.exists());
    }
}

#[test]
fn follow_camera_measures_a_shaking_camera_and_every_frame_is_redacted() {
    // A hand-held camera: a 640×360 window shaking up to ±8 px (x) and ±6 px (y) over a still scene, the
    // astronaut in front of a textured background (the test pattern's first frame, held).
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("shake.mkv");
    let portrait = astronaut();
    let filter = "[1:v]trim=end_frame=1,loop=loop=-1:size=1:start=0,scale=700:400,setpts=N/25/TB[bg];\
                  [0:v]scale=360:360[face];[bg][face]overlay=170:20:shortest=1,\
                  crop=640:360:x='30+8*sin(2*PI*3.1*t)':y='20+6*sin(2*PI*2.3*t+1)',format=yuv420p[v]";
    let mut args = vec!["-loop", "1", "-framerate", "25", "-i", portrait.to_str().unwrap()];
    args.extend(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-filter_complex", filter]);
    args.extend(["-map", "[v]", "-frames:v", "30"]);
    args.extend(lossless_h264());
    args.push(input.to_str().unwrap());
    ffmpeg(&args);
    let frames = decode_rgb(&input, W, H);
    assert_eq!(frames.len(), 30);
    for (flag, moved) in [(None, 0..=0), (Some("--follow-camera"), 15..=29)] {
        let output = dir.path().join("out.mkv");
        let report = dir.path().join("out.json");
        let mut args =
            os_args!["redact", &input, "-o", &output, "--crf", "0", "--report", &report, "--overwrite"].to_vec();
        args.extend(flag.map(std::ffi::OsStr::new));
        let out = faceveil(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        let measured = r["frames_camera_moved"].as_u64().unwrap();
        assert!(moved.contains(&measured), "{flag:?}: the camera's shift measured on {measured} frames");
        assert_eq!(r["parameters"]["follow_camera"], flag.is_some());
        let redacted = decode_rgb(&output, W, H);
        assert_eq!(redacted.len(), 30, "frame count changed");
        // Inside the face wherever the shake puts it (`FACE_INNER` less the shake).
        for (i, (a, b)) in frames.iter().zip(&redacted).enumerate() {
            let kept = detail_kept(a, b, W, (292, 70, 310, 100));
            assert!(kept.abs() < 0.3, "{flag:?} frame {i}: {kept:.2} of the face's detail kept");
        }
    }
}
