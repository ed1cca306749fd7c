//! Face detection: the [`Detector`] trait, detection-size policy, NMS and the CenterFace model.
//!
//! Detectors only report boxes and scores. Nothing here computes embeddings or keeps face pixels.

mod centerface;
pub mod fields;
pub mod lowlight;
mod multiscale;
mod nms;
mod onnx;
mod pair;
mod runtime;
mod schedule;
mod select;
mod yunet;

pub use centerface::{
    decode_centerface, CenterFace, CenterFaceOutputs, SessionOptions, ShippedModel, CENTERFACE_FP32, CENTERFACE_INT8,
    DEFAULT_MODEL, MODEL_FILE_NAME, MODEL_SHA256, SHIPPED_MODELS,
};
pub use multiscale::{
    faces_multiscale, faces_turned, merge, min_score, plausible, tile_pass, tiles, tiny_face_tiles, video_tiles,
    whole_input_size_with_tiles, whole_pass, Tile, TILE_INPUT, TILE_INPUT_PIXELS, TINY_FACE_HEIGHT, TINY_FACE_OVERLAP,
    TINY_FACE_SCALE,
};
pub(crate) use multiscale::{input_pixels, whole_pass_as};
pub use nms::nms;
pub use pair::Pair;
pub use runtime::{
    find_model, find_openvino_library, find_runtime_library, find_shipped_model, find_small_model, init_runtime,
    init_runtime_at, keep_runtime_telemetry_off, resolve_runtime, Runtime, RuntimeInfo, RUNTIME_TELEMETRY_OFF,
};
pub use schedule::{
    Analyser, AnalyserStats, PassPixels, Plan, Unsearched, BLOCK, CHANGE_LEVELS, MAX_REUSE, TURNED_MIN_SCORE,
    WHOLE_PERIOD,
};
pub use select::{load_detector, DetectorChoice, Precision};
pub use yunet::{decode_yunet, YuNet, YuNetLevel, YUNET_MODELS, YUNET_S};

use crate::geom::{BBox, Rotation};
use crate::media::MediaKind;
use crate::Result;
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// One face found in one frame. Coordinates are frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
}

/// Which pass of the search a picture is for: a detector that holds more than one model ([`Pair`]) runs the
/// one made for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// The whole frame, scaled to the detector's size: faces from a few percent of the frame up.
    Whole,
    /// The whole frame again, on the video frames between two [`Whole`](Pass::Whole) passes (see the
    /// schedule of [`Analyser`]): searched by the cheaper detector where it is as good, for the same faces and
    /// new ones that the tracker bridges back from the next `Whole` pass if it alone sees them.
    WholeRepeat,
    /// A magnified tile of the frame: the small faces, new ones among them.
    Small,
    /// A magnified crop around small faces already found (a focus pass): the same faces again.
    Focus,
}

/// How much one model ran, for reports: calls and detector input pixels (no boxes, no faces).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelUsage {
    /// `centerface` or `yunet-s`.
    pub model: String,
    pub sha256: String,
    /// The runtime, provider and precision that ran it.
    pub runtime: String,
    pub passes: u64,
    /// Detector input pixels (each side padded to the model's 32-pixel grid).
    pub pixels: u64,
}

impl ModelUsage {
    /// What ran between `before` and `after` (counts of the same detector), model by model.
    pub fn since(after: &[ModelUsage], before: &[ModelUsage]) -> Vec<ModelUsage> {
        after
            .iter()
            .map(|a| {
                let b = before.iter().find(|b| b.model == a.model && b.sha256 == a.sha256);
                ModelUsage {
                    passes: a.passes - b.map_or(0, |b| b.passes.min(a.passes)),
                    pixels: a.pixels - b.map_or(0, |b| b.pixels.min(a.pixels)),
                    ..a.clone()
                }
            })
            .collect()
    }
}

/// A model's running counts (see [`ModelUsage`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    passes: u64,
    pixels: u64,
}

impl Usage {
    pub(crate) fn add(&mut self, pixels: u64) {
        self.passes += 1;
        self.pixels += pixels;
    }

    pub(crate) fn report(&self, model: &str, sha256: &str, runtime: &RuntimeInfo) -> ModelUsage {
        ModelUsage {
            model: model.into(),
            sha256: sha256.into(),
            runtime: runtime.to_string(),
            passes: self.passes,
            pixels: self.pixels,
        }
    }
}

/// Finds faces in an upright RGB picture.
///
/// `detect` takes `&mut self` because an ONNX Runtime session runs with exclusive access and detectors reuse
/// their buffers. An implementation must return an error, never an empty list, when it could not analyse the
/// picture: faceveil fails closed on errors, whereas an empty list means "no face here".
pub trait Detector: Send {
    /// Detects faces in `image`; boxes are in `image`'s pixel coordinates.
    fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>>;

    /// Detects faces in `image` for one kind of [`Pass`]. The default is [`detect`](Self::detect), whatever
    /// the pass.
    fn detect_for(&mut self, image: &RgbImage, _pass: Pass) -> Result<Vec<Detection>> {
        self.detect(image)
    }

    /// [`detect_for`](Self::detect_for) on `image`, whose caller already decided whether it is dark and made
    /// its low-light copy (see [`lowlight`]): `equalised` is `Some(copy)` exactly when `image` is dark, `copy`
    /// being `image` equalised. A detector that equalises dark pictures itself runs on `copy` instead of
    /// deciding and equalising again (the same answers, once for several models); the default ignores it.
    fn detect_lit(&mut self, image: &RgbImage, equalised: Option<&RgbImage>, pass: Pass) -> Result<Vec<Detection>> {
        let _ = equalised;
        self.detect_for(image, pass)
    }

    /// Detects faces in each of `images` for `pass`; the answers come in the order of `images`, and an error
    /// on any picture fails them all. The default runs [`detect_for`](Self::detect_for) on each in turn; a
    /// detector may run them side by side (see [`YuNet`]), with the same answers.
    fn detect_each(&mut self, images: Vec<RgbImage>, pass: Pass) -> Result<Vec<Vec<Detection>>> {
        images.iter().map(|image| self.detect_for(image, pass)).collect()
    }

    /// How much each model behind this detector ran so far (empty for detectors without a model).
    fn usage(&self) -> Vec<ModelUsage> {
        Vec::new()
    }

    /// SHA-256 of the model file behind this detector, for reports; `None` for detectors without one.
    fn model_sha256(&self) -> Option<String> {
        None
    }

    /// The inference runtime behind this detector, for reports; `None` for detectors without one.
    fn runtime(&self) -> Option<RuntimeInfo> {
        None
    }

    /// Called before each file with its kind of media, so that a detector can choose how to work for it
    /// (see [`PerMedia`]). The default does nothing.
    fn prepare_for(&mut self, _kind: MediaKind) {}
}

impl<D: Detector + ?Sized> Detector for Box<D> {
    fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>> {
        (**self).detect(image)
    }

    fn detect_for(&mut self, image: &RgbImage, pass: Pass) -> Result<Vec<Detection>> {
        (**self).detect_for(image, pass)
    }

    fn detect_each(&mut self, images: Vec<RgbImage>, pass: Pass) -> Result<Vec<Vec<Detection>>> {
        (**self).detect_each(images, pass)
    }

    fn detect_lit(&mut self, image: &RgbImage, equalised: Option<&RgbImage>, pass: Pass) -> Result<Vec<Detection>> {
        (**self).detect_lit(image, equalised, pass)
    }

    fn usage(&self) -> Vec<ModelUsage> {
        (**self).usage()
    }

    fn model_sha256(&self) -> Option<String> {
        (**self).model_sha256()
    }

    fn runtime(&self) -> Option<RuntimeInfo> {
        (**self).runtime()
    }

    fn prepare_for(&mut self, kind: MediaKind) {
        (**self).prepare_for(kind)
    }
}

/// One detector for still images and another for video, chosen by [`Detector::prepare_for`] (still images
/// until told otherwise). faceveil's default pairs the full-precision CenterFace for stills, where time is
/// cheap, with its int8 quantisation for video, where volume makes speed matter.
#[derive(Debug)]
pub struct PerMedia<S, V> {
    still: S,
    video: V,
    kind: MediaKind,
}

impl<S: Detector, V: Detector> PerMedia<S, V> {
    pub fn new(still: S, video: V) -> Self {
        Self { still, video, kind: MediaKind::Image }
    }

    fn active(&self) -> &dyn Detector {
        match self.kind {
            MediaKind::Image => &self.still,
            MediaKind::Video => &self.video,
        }
    }
}

impl<S: Detector, V: Detector> Detector for PerMedia<S, V> {
    fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>> {
        match self.kind {
            MediaKind::Image => self.still.detect(image),
            MediaKind::Video => self.video.detect(image),
        }
    }

    fn detect_for(&mut self, image: &RgbImage, pass: Pass) -> Result<Vec<Detection>> {
        match self.kind {
            MediaKind::Image => self.still.detect_for(image, pass),
            MediaKind::Video => self.video.detect_for(image, pass),
        }
    }

    fn detect_each(&mut self, images: Vec<RgbImage>, pass: Pass) -> Result<Vec<Vec<Detection>>> {
        match self.kind {
            MediaKind::Image => self.still.detect_each(images, pass),
            MediaKind::Video => self.video.detect_each(images, pass),
        }
    }

    fn detect_lit(&mut self, image: &RgbImage, equalised: Option<&RgbImage>, pass: Pass) -> Result<Vec<Detection>> {
        match self.kind {
            MediaKind::Image => self.still.detect_lit(image, equalised, pass),
            MediaKind::Video => self.video.detect_lit(image, equalised, pass),
        }
    }

    fn usage(&self) -> Vec<ModelUsage> {
        let mut all = self.still.usage();
        all.extend(self.video.usage());
        all
    }

    fn model_sha256(&self) -> Option<String> {
        self.active().model_sha256()
    }

    fn runtime(&self) -> Option<RuntimeInfo> {
        self.active().runtime()
    }

    fn prepare_for(&mut self, kind: MediaKind) {
        self.kind = kind;
    }
}

/// A detector made when it is first used. Each ONNX session holds its weights and a working arena (tens of
/// MB for CenterFace), so the CLI's [`PerMedia`] defers its still images' model: a run over video never
/// builds it. A failure to build is returned by the first `detect` and by every
/// later one (the detector is not tried again).
pub struct Deferred<D> {
    state: DeferredState<D>,
    sha256: Option<String>,
}

type Make<D> = Box<dyn FnOnce() -> Result<D> + Send>;

enum DeferredState<D> {
    Pending(Make<D>),
    Made(D),
    Failed(String),
}

impl<D: Detector> Deferred<D> {
    /// `make` builds the detector on first use; `sha256` is what [`Detector::model_sha256`] reports until then
    /// (the model file's hash, checked beforehand by the caller, e.g. with [`CenterFace::verify`]).
    pub fn new(sha256: Option<String>, make: impl FnOnce() -> Result<D> + Send + 'static) -> Self {
        Self { state: DeferredState::Pending(Box::new(make)), sha256 }
    }

    /// Whether the detector has been built.
    pub fn is_made(&self) -> bool {
        matches!(self.state, DeferredState::Made(_))
    }

    fn get(&mut self) -> Result<&mut D> {
        if matches!(self.state, DeferredState::Pending(_)) {
            if let DeferredState::Pending(make) =
                std::mem::replace(&mut self.state, DeferredState::Failed(String::new()))
            {
                self.state = match make() {
                    Ok(d) => DeferredState::Made(d),
                    Err(e) => {
                        self.state = DeferredState::Failed(e.to_string());
                        return Err(e);
                    }
                };
            }
        }
        match &mut self.state {
            DeferredState::Made(d) => Ok(d),
            DeferredState::Failed(why) => Err(crate::Error::Inference(format!("detector unavailable: {why}"))),
            DeferredState::Pending(_) => Err(crate::Error::Internal("deferred detector not built".into())),
        }
    }
}

impl<D> std::fmt::Debug for Deferred<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            DeferredState::Pending(_) => "pending",
            DeferredState::Made(_) => "made",
            DeferredState::Failed(_) => "failed",
        };
        f.debug_struct("Deferred").field("state", &state).field("sha256", &self.sha256).finish()
    }
}

impl<D: Detector> Detector for Deferred<D> {
    fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>> {
        self.get()?.detect(image)
    }

    fn detect_for(&mut self, image: &RgbImage, pass: Pass) -> Result<Vec<Detection>> {
        self.get()?.detect_for(image, pass)
    }

    fn detect_each(&mut self, images: Vec<RgbImage>, pass: Pass) -> Result<Vec<Vec<Detection>>> {
        self.get()?.detect_each(images, pass)
    }

    fn detect_lit(&mut self, image: &RgbImage, equalised: Option<&RgbImage>, pass: Pass) -> Result<Vec<Detection>> {
        self.get()?.detect_lit(image, equalised, pass)
    }

    fn usage(&self) -> Vec<ModelUsage> {
        match &self.state {
            DeferredState::Made(d) => d.usage(),
            _ => Vec::new(),
        }
    }

    fn model_sha256(&self) -> Option<String> {
        match &self.state {
            DeferredState::Made(d) => d.model_sha256(),
            _ => self.sha256.clone(),
        }
    }

    fn runtime(&self) -> Option<RuntimeInfo> {
        match &self.state {
            DeferredState::Made(d) => d.runtime(),
            _ => None,
        }
    }

    fn prepare_for(&mut self, kind: MediaKind) {
        if let DeferredState::Made(d) = &mut self.state {
            d.prepare_for(kind);
        }
    }
}

/// Settings of the detection step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectSettings {
    /// Minimum detector score for a face (0..1). Lower finds more faces and more false ones.
    pub threshold: f32,
    /// Longest side, in pixels, of the picture given to the detector. Larger frames are scaled down to it.
    pub max_side: u32,
    /// Frames whose longest side is below this are scaled up to it, so that faces in small videos are
    /// large enough for the detector.
    pub min_side: u32,
    /// IoU above which two detections in one frame are the same face.
    pub nms_iou: f32,
    /// Small faces: overlapping tiles of the full-resolution frame are also scanned, scaled up by this
    /// factor (0 turns tiling off). Tiles are skipped when the whole-frame pass already sees the frame at
    /// this scale or larger.
    pub tile_scale: f32,
    /// Low light: a dark detector input (median luma under [`lowlight::DARK_MEDIAN`]) is contrast-equalised
    /// (CLAHE) before detection, so faces in night and dim footage reach the threshold. Only the detector's
    /// copy changes. Reports written before this setting existed ran without it (hence `false` when absent).
    #[serde(default)]
    pub low_light: bool,
    /// The model that searches the small faces (tiles and focus crops): YuNet, built for them, or CenterFace,
    /// which also searches the whole frame. Reports written before this setting existed used CenterFace.
    #[serde(default)]
    pub small_detector: SmallDetector,
    /// Score threshold of YuNet (0..1) where it searches (its scores run higher than CenterFace's).
    #[serde(default)]
    pub small_threshold: f32,
    /// Turned faces: also search the picture turned a quarter, a half and three quarters, for faces lying
    /// on their side or upside down (people lying down, a camera mounted sideways or upside down without a
    /// rotation flag), which both models miss more often the further they are turned. A photo is searched
    /// whole in each turn (about three times the time); a video's whole frame is searched in one turn at a
    /// time, at the detector's full size, as often as its full whole-frame pass runs (small turned faces are
    /// not searched in video). Off by default: the turned search finds
    /// things that are no face upright, and at [`TURNED_MIN_SCORE`] it still adds
    /// over-redaction (docs/performance.md, 2026-12-07 thirty-first stop). Reports written before this
    /// setting existed ran without it.
    #[serde(default)]
    pub turned: bool,
}

/// Which model searches the small faces (see [`DetectSettings::small_detector`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmallDetector {
    /// CenterFace everywhere (one model).
    #[default]
    CenterFace,
    /// YuNet on the small-face passes, CenterFace on the whole frame ([`Pair`]).
    YuNet,
}

impl Default for DetectSettings {
    fn default() -> Self {
        Self {
            threshold: 0.08,
            max_side: 1280,
            min_side: 640,
            nms_iou: 0.3,
            tile_scale: 2.0,
            low_light: true,
            small_detector: SmallDetector::YuNet,
            small_threshold: 0.1,
            turned: false,
        }
    }
}

impl DetectSettings {
    pub fn validate(&self) -> Result<()> {
        use crate::Error::Config;
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(Config(format!("invalid threshold {} (expected > 0, < 1)", self.threshold)));
        }
        if !(32..=8192).contains(&self.max_side) {
            return Err(Config(format!("invalid detection size {} (expected >= 32, <= 8192)", self.max_side)));
        }
        if self.min_side > self.max_side {
            return Err(Config(format!(
                "invalid minimum detection size {} (expected <= detection size {})",
                self.min_side, self.max_side
            )));
        }
        if !(self.tile_scale == 0.0 || (1.0..=4.0).contains(&self.tile_scale)) {
            return Err(Config(format!("invalid tile scale {} (expected 0 or >= 1, <= 4)", self.tile_scale)));
        }
        if self.small_detector == SmallDetector::YuNet && !(self.small_threshold > 0.0 && self.small_threshold < 1.0) {
            return Err(Config(format!("invalid small-face threshold {} (expected > 0, < 1)", self.small_threshold)));
        }
        if !(self.nms_iou > 0.0 && self.nms_iou <= 1.0) {
            return Err(Config(format!("invalid NMS IoU {} (expected > 0, <= 1)", self.nms_iou)));
        }
        Ok(())
    }

    /// The size of the picture handed to the detector for an upright `w × h` frame: aspect ratio kept, longest
    /// side within `[min_side, max_side]`, each side at least 1.
    pub fn input_size(&self, w: u32, h: u32) -> (u32, u32) {
        let long = w.max(h).max(1);
        let target = long.clamp(self.min_side, self.max_side);
        if target == long {
            return (w.max(1), h.max(1));
        }
        let s = target as f64 / long as f64;
        (((w as f64 * s).round() as u32).max(1), ((h as f64 * s).round() as u32).max(1))
    }
}

/// Runs `detector` on `small`, a version of a stored `frame_w × frame_h` frame that was rotated upright by
/// `rotation` and scaled, and returns the regions to redact ([`face_regions`]) in stored-frame pixel
/// coordinates.
pub fn detect_in_frame<D: Detector + ?Sized>(
    detector: &mut D,
    small: &RgbImage,
    rotation: Rotation,
    frame_w: u32,
    frame_h: u32,
) -> Result<Vec<Detection>> {
    let (uw, uh) = rotation.upright_size(frame_w, frame_h);
    let sx = uw as f32 / small.width().max(1) as f32;
    let sy = uh as f32 / small.height().max(1) as f32;
    let found = detector.detect(small)?;
    let upright = found.into_iter().map(|d| Detection { bbox: d.bbox.rescaled(sx, sy), score: d.score }).collect();
    Ok(face_regions(upright)
        .into_iter()
        .map(|d| Detection {
            bbox: rotation.box_to_stored(&d.bbox, frame_w, frame_h).clamped(frame_w, frame_h),
            score: d.score,
        })
        .filter(|d| d.bbox.is_valid())
        .collect())
}

/// A detection scoring at least this is confidently a face, and (from [`HEAD_MIN_HEIGHT`] up) its region
/// grows to cover the head. Weaker detections are mostly small faces and textures: growing those would
/// blur more of the scene for no protection (a recogniser cannot read a head of a few pixels).
pub const HEAD_SCORE: f32 = 0.3;
/// Faces at least this tall, in upright frame pixels, are grown to their heads.
pub const HEAD_MIN_HEIGHT: f32 = 24.0;
/// The head around a confident face box: the box grows by this share of its height upwards (forehead, hair
/// line, hair) ...
pub const HEAD_UP: f32 = 0.2;
/// ... and by this share of its width to each side (ears, head outline). Recognisers that read the whole head
/// (FaceNet) link people by what a face-sized mask leaves around it.
pub const HEAD_SIDE: f32 = 0.1;

/// Turns merged detections of an upright picture into the regions to redact: every confident face
/// ([`HEAD_SCORE`], [`HEAD_MIN_HEIGHT`]) grows to its head ([`HEAD_UP`], [`HEAD_SIDE`]); the rest are kept as
/// found. Upright coordinates, so "up" is up whatever the stored rotation.
pub fn face_regions(found: Vec<Detection>) -> Vec<Detection> {
    found
        .into_iter()
        .map(|d| {
            let (w, h) = (d.bbox.width(), d.bbox.height());
            if d.score < HEAD_SCORE || h < HEAD_MIN_HEIGHT {
                return d;
            }
            let b = d.bbox;
            Detection { bbox: BBox::new(b.x0 - HEAD_SIDE * w, b.y0 - HEAD_UP * h, b.x1 + HEAD_SIDE * w, b.y1), ..d }
        })
        .collect()
}

/// Rotates a stored-orientation picture upright for detection.
pub fn rotate_upright(img: RgbImage, rotation: Rotation) -> RgbImage {
    match rotation {
        Rotation::None => img,
        turn => turned(&img, turn),
    }
}

/// The quarter, half and three-quarter turns a picture is also searched in for faces on their side or upside
/// down ([`DetectSettings::turned`]).
pub(crate) const TURNS: [Rotation; 3] = [Rotation::Cw90, Rotation::Cw180, Rotation::Cw270];

/// A copy of `img` turned clockwise by `turn` (boxes found in it map back with [`Rotation::box_to_stored`]).
pub(crate) fn turned(img: &RgbImage, turn: Rotation) -> RgbImage {
    match turn {
        Rotation::None => img.clone(),
        Rotation::Cw90 => image::imageops::rotate90(img),
        Rotation::Cw180 => image::imageops::rotate180(img),
        Rotation::Cw270 => image::imageops::rotate270(img),
    }
}

/// A detector that returns fixed boxes per call, in call order; for tests and for embedding applications
/// that bring their own detections. After the script runs out it keeps returning no faces.
#[derive(Debug, Clone, Default)]
pub struct ScriptedDetector {
    frames: std::collections::VecDeque<std::result::Result<Vec<Detection>, String>>,
}

impl ScriptedDetector {
    pub fn new(frames: impl IntoIterator<Item = Vec<Detection>>) -> Self {
        Self { frames: frames.into_iter().map(Ok).collect() }
    }

    /// Makes call number `index` (0-based) fail, as a broken model would.
    pub fn fail_at(mut self, index: usize) -> Self {
        while self.frames.len() <= index {
            self.frames.push_back(Ok(Vec::new()));
        }
        self.frames[index] = Err(format!("scripted failure at call {index}"));
        self
    }
}

impl Detector for ScriptedDetector {
    fn detect(&mut self, _image: &RgbImage) -> Result<Vec<Detection>> {
        match self.frames.pop_front() {
            Some(Ok(d)) => Ok(d),
            Some(Err(e)) => Err(crate::Error::Inference(e)),
            None => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_size_scales_down_large_and_up_small_frames() {
        let s = DetectSettings::default();
        assert_eq!(s.input_size(1920, 1080), (1280, 720));
        assert_eq!(s.input_size(1280, 720), (1280, 720));
        assert_eq!(s.input_size(176, 144), (640, 524));
        assert_eq!(s.input_size(1080, 1920), (720, 1280));
        assert_eq!(s.input_size(800, 600), (800, 600));
    }

    #[test]
    fn detect_in_frame_maps_back_through_scale_and_rotation() {
        // Stored frame 200x100, rotated 90° for display: upright 100x200; detector sees it at 50x100.
        let mut det = ScriptedDetector::new([vec![Detection { bbox: BBox::new(10.0, 20.0, 25.0, 35.0), score: 0.9 }]]);
        let small = RgbImage::new(50, 100);
        let found = detect_in_frame(&mut det, &small, Rotation::Cw90, 200, 100).unwrap();
        // Upright box (20,40)-(50,70) at full scale, a confident face: its head region grows up by a fifth of
        // its height and sideways by a tenth of its width, in upright coordinates: (17,34)-(53,70).
        // Cw90 maps (u,v) -> (x=v, y=h-u): upright "up" is stored "left".
        assert_eq!(found[0].bbox, BBox::new(34.0, 47.0, 70.0, 83.0));
    }

    #[test]
    fn face_regions_grow_confident_faces_to_their_heads_only() {
        let d = |b: BBox, score: f32| Detection { bbox: b, score };
        let out = face_regions(vec![
            d(BBox::new(100.0, 100.0, 140.0, 150.0), 0.9), // confident 50 px face: grown to its head
            d(BBox::new(300.0, 100.0, 310.0, 112.0), 0.9), // confident but 12 px: kept as found
            d(BBox::new(400.0, 100.0, 460.0, 170.0), 0.15), // weak: kept as found
        ]);
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(out[0].bbox, BBox::new(96.0, 90.0, 144.0, 150.0));
        assert_eq!(out[1].bbox, BBox::new(300.0, 100.0, 310.0, 112.0));
        assert_eq!(out[2].bbox, BBox::new(400.0, 100.0, 460.0, 170.0));
    }

    #[test]
    fn per_media_detector_uses_the_one_for_the_current_kind() {
        let face = |x: f32| vec![Detection { bbox: BBox::new(x, 0.0, x + 10.0, 10.0), score: 0.9 }];
        let mut d = PerMedia::new(ScriptedDetector::new([face(1.0), face(2.0)]), ScriptedDetector::new([face(50.0)]));
        let img = RgbImage::new(4, 4);
        assert_eq!(d.detect(&img).unwrap()[0].bbox.x0, 1.0, "still images until told otherwise");
        d.prepare_for(MediaKind::Video);
        assert_eq!(d.detect(&img).unwrap()[0].bbox.x0, 50.0);
        d.prepare_for(MediaKind::Image);
        assert_eq!(d.detect(&img).unwrap()[0].bbox.x0, 2.0);
    }

    #[test]
    fn deferred_detector_is_built_on_first_use_only() {
        let face = vec![Detection { bbox: BBox::new(5.0, 0.0, 15.0, 10.0), score: 0.9 }];
        let built = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = built.clone();
        let mut d = Deferred::new(Some("abc".into()), move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(ScriptedDetector::new([face.clone(), face]))
        });
        assert_eq!(d.model_sha256().as_deref(), Some("abc"), "the checked hash is reported before loading");
        d.prepare_for(MediaKind::Video);
        assert!(!d.is_made());
        let img = RgbImage::new(4, 4);
        assert_eq!(d.detect(&img).unwrap().len(), 1);
        assert_eq!(d.detect(&img).unwrap().len(), 1);
        assert!(d.is_made());
        assert_eq!(built.load(std::sync::atomic::Ordering::SeqCst), 1, "built once");
    }

    #[test]
    fn deferred_detector_that_cannot_be_built_fails_every_call() {
        let mut d = Deferred::<ScriptedDetector>::new(None, || Err(crate::Error::Inference("no session".into())));
        let img = RgbImage::new(4, 4);
        assert!(d.detect(&img).unwrap_err().to_string().contains("no session"));
        let again = d.detect(&img).unwrap_err().to_string();
        assert!(again.contains("no session"), "{again}");
        assert!(!d.is_made());
    }

    #[test]
    fn scripted_detector_fails_where_told() {
        let mut d = ScriptedDetector::default().fail_at(1);
        let img = RgbImage::new(4, 4);
        assert!(d.detect(&img).unwrap().is_empty());
        assert!(d.detect(&img).is_err());
        assert!(d.detect(&img).unwrap().is_empty());
    }

    #[test]
    fn settings_validation_states_range() {
        let s = DetectSettings { threshold: 1.5, ..Default::default() };
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("expected > 0, < 1"), "{e}");
    }
}
