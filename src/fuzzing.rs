//! Entry points for the fuzz targets in `fuzz/` and for the test that replays their corpus on stable Rust.
//!
//! Each takes outside bytes and must come back with `Ok` or a typed error: a panic, a hang or an invariant
//! broken (a frame written unredacted, a box outside the picture, a report that does not round-trip) is a
//! finding. They are public only so the fuzz crate can call them; they are not part of the library's API.

use crate::detect::{decode_centerface, CenterFaceOutputs};
#[cfg(feature = "ffmpeg")]
use crate::{
    detect::{Detection, Detector},
    geom::BBox,
    Result,
};
#[cfg(feature = "ffmpeg")]
use image::RgbImage;

/// Any bytes as a media file through the whole redaction path (probe, demux, decode, detect, track, redact,
/// encode, mux), with a stand-in detector that finds one face in the middle of every frame.
///
/// Invariants: on success the output exists and every decoded frame was written and redacted; on error no
/// output exists.
#[cfg(feature = "ffmpeg")]
pub fn media_bytes(data: &[u8]) {
    let Ok(dir) = tempfile::tempdir() else { return };
    let input = dir.path().join("input");
    if std::fs::write(&input, data).is_err() {
        return;
    }
    let (image_out, video_out) = (dir.path().join("out.png"), dir.path().join("out.mkv"));
    let options = crate::Options {
        encode: crate::EncodeSettings { crf: 40, preset: "ultrafast".into(), ..Default::default() },
        ..Default::default()
    };
    let mut detector = CentreFace;
    // An image input needs an image output and a video a video output: the error for the wrong pairing is
    // part of the contract, so try the image path first and fall back to video.
    let (result, output) = match crate::redact_file(&input, &image_out, &options, &mut detector) {
        Err(crate::Error::UnsupportedOutput { .. }) => {
            (crate::redact_file(&input, &video_out, &options, &mut detector), &video_out)
        }
        other => (other, &image_out),
    };
    match result {
        Ok(report) => {
            assert!(output.exists(), "success without an output");
            assert_eq!(report.frames_written, report.frames, "decoded frames not all written");
            assert_eq!(report.frames_redacted, report.frames, "a frame was written unredacted");
        }
        Err(_) => assert!(!output.exists(), "an error left an output"),
    }
}

/// A detector that reports one face, a quarter of the picture, in the middle of every frame.
#[cfg(feature = "ffmpeg")]
struct CentreFace;

#[cfg(feature = "ffmpeg")]
impl Detector for CentreFace {
    fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>> {
        let (w, h) = (image.width() as f32, image.height() as f32);
        Ok(vec![Detection { bbox: BBox::new(w * 0.25, h * 0.25, w * 0.75, h * 0.75), score: 0.9 }])
    }
}

/// Bytes as a CenterFace output: grid size, picture size and threshold from the first bytes, then every
/// four bytes one `f32` (NaN and infinities included) filling the heatmap, scale and offset tensors; one bit
/// makes the tensor lengths disagree with the grid.
///
/// Invariants: mismatched tensors are an error, and so is a NaN score (it would otherwise read as "no
/// face"); well-formed tensors with finite values and scales that cannot overflow are accepted; every detection is finite, inside the picture, non-empty and
/// scores above the threshold.
pub fn centerface_output(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let rows = usize::from(data[0] % 48) + 1;
    let cols = usize::from(data[1] % 48) + 1;
    let img_w = u32::from(u16::from_le_bytes([data[2], data[3]])) % 4096 + 1;
    let img_h = u32::from(u16::from_le_bytes([data[4], data[5]])) % 4096 + 1;
    let threshold = f32::from(data[6]) / 255.0;
    let mismatch = data[7] & 1 == 1;
    let values: Vec<f32> = data[8..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let n = rows * cols;
    let take = |len: usize, skip: usize| -> Vec<f32> {
        if values.is_empty() {
            vec![0.0; len]
        } else {
            (0..len).map(|i| values[(i + skip) % values.len()]).collect()
        }
    };
    let heatmap = take(if mismatch { n + 1 } else { n }, 0);
    let (scale, offset) = (take(2 * n, n), take(2 * n, 3 * n));
    let out = CenterFaceOutputs { heatmap: &heatmap, scale: &scale, offset: &offset, rows, cols };
    match decode_centerface(&out, img_w, img_h, threshold, 0.3) {
        Ok(dets) => {
            assert!(!mismatch, "mismatched tensors accepted");
            for d in dets {
                let b = d.bbox;
                assert!([b.x0, b.y0, b.x1, b.y1, d.score].iter().all(|v| v.is_finite()), "non-finite {d:?}");
                assert!(b.x0 >= 0.0 && b.y0 >= 0.0 && b.x1 <= img_w as f32 && b.y1 <= img_h as f32, "{d:?} outside");
                assert!(b.x1 > b.x0 && b.y1 > b.y0, "empty box {d:?}");
                assert!(d.score > threshold, "score under threshold {d:?}");
            }
        }
        // Non-finite values, and scales whose box overflows to infinity, fail closed (a broken model must not
        // read as "no face"); tame values are always accepted.
        Err(e) => {
            let tame = heatmap.iter().chain(&offset).all(|v| v.is_finite()) && scale.iter().all(|v| v.abs() < 20.0);
            assert!(mismatch || !tame, "well-formed tame tensors refused: {e}");
        }
    }
}

/// Bytes as the JSON a batch reads back (a file's report, which decides whether it is redone, and a
/// summary), and as a shard specification.
///
/// Invariants: whatever parses serialises and parses back to the same value; bad text is an error.
pub fn report_json(data: &[u8]) {
    if let Ok(report) = serde_json::from_slice::<crate::Report>(data) {
        let _ = report.parameters.validate();
        let _ = report.input_damaged();
        round_trip(&report);
    }
    #[cfg(feature = "ffmpeg")]
    if let Ok(summary) = serde_json::from_slice::<crate::batch::Summary>(data) {
        let _ = summary.to_csv();
        let _ = summary.outcome();
    }
    if let Ok(options) = serde_json::from_slice::<crate::Options>(data) {
        let _ = options.validate();
        round_trip(&options);
    }
    #[cfg(feature = "ffmpeg")]
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(shard) = crate::batch::Shard::parse(text) {
            assert!(shard.index < shard.count, "{text:?} parsed to {shard:?}");
        }
    }
}

fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    // Floats print exactly in JSON and NaN cannot be read, so a value holding NaN is not expected back.
    let Ok(text) = serde_json::to_string(value) else { return };
    match serde_json::from_str::<T>(&text) {
        Ok(back) => assert!(back == *value || text.contains("null"), "{value:?} came back as {back:?}"),
        Err(e) => panic!("{text} does not parse back: {e}"),
    }
}
