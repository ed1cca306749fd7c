//! YuNet (Apache-2.0, from `ShiqiYu/libfacedetection.train`), a face detector built for small faces at about
//! a seventh of CenterFace's cost per pixel. See `models/README.md`.
//!
//! Input `input`: `[1, 3, H, W]` **BGR**, float 0–255, H and W multiples of 32. Outputs per stride
//! s ∈ {8, 16, 32}, one row per cell of the `H/s × W/s` grid (row-major): `cls_s` and `obj_s` `[1, n, 1]`
//! (score = √(cls·obj)), `bbox_s` `[1, n, 4]` (dx, dy, log w, log h: centre `((col + dx)·s, (row + dy)·s)`,
//! size `(e^lw·s, e^lh·s)`), `kps_s` landmarks (unused: faceveil needs no facial landmarks).

use super::{nms, DetectSettings, Detection, Detector, SessionOptions, ShippedModel};
use crate::geom::BBox;
use crate::{Error, Result};
use image::RgbImage;
use ort::session::Session;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

/// YuNet-s as published (`onnx/yunet_s_dynamic.onnx`).
pub const YUNET_S: ShippedModel = ShippedModel {
    file: "yunet_s_dynamic.onnx",
    sha256: "daede24002cc8590f457998cc5e6c9e8b82f45f6bd969506a8913cd4ed10a2d3",
};
/// Every YuNet faceveil accepts.
pub const YUNET_MODELS: [ShippedModel; 1] = [YUNET_S];

const STRIDES: [usize; 3] = [8, 16, 32];

/// YuNet boxes up to this tall (in its input pixels: 20 frame pixels in a 2× tile) are kept from the run's
/// small-face threshold up; taller ones need more, rising linearly to [`TALL_MIN_SCORE`] at [`TALL_HEIGHT`].
/// Measured on wider_dev magnified 2× (`benches/detector_scores.py`): every annotated face of 20 frame
/// pixels and more scores at least 0.4 in daylight, while most of what YuNet fires on at 0.1 that is no face
/// is that tall; in the dark CenterFace searches beside it.
pub const SMALL_HEIGHT: f32 = 40.0;
pub const TALL_HEIGHT: f32 = 80.0;
pub const TALL_MIN_SCORE: f32 = 0.4;

/// The least score a YuNet box `height` input pixels tall is kept at, for a small-face `threshold`.
pub fn yunet_min_score(height: f32, threshold: f32) -> f32 {
    let t = ((height - SMALL_HEIGHT) / (TALL_HEIGHT - SMALL_HEIGHT)).clamp(0.0, 1.0);
    threshold.max(threshold + (TALL_MIN_SCORE - threshold) * t)
}
const INPUT: &str = "input";

/// Borrowed YuNet outputs of one stride: `rows × cols` cells.
#[derive(Debug, Clone, Copy)]
pub struct YuNetLevel<'a> {
    pub stride: usize,
    pub cls: &'a [f32],
    pub obj: &'a [f32],
    /// Four values per cell: dx, dy, log w, log h.
    pub bbox: &'a [f32],
    pub rows: usize,
    pub cols: usize,
}

/// Decodes YuNet outputs into boxes in input-image pixels (clamped to `img_w × img_h`) and applies NMS.
///
/// Fails closed as CenterFace's decoder does: tensors of the wrong length, a NaN score anywhere, or a
/// non-finite box at a cell above the threshold are errors, never silently dropped faces.
pub fn decode_yunet(
    levels: &[YuNetLevel<'_>],
    img_w: u32,
    img_h: u32,
    threshold: f32,
    nms_iou: f32,
) -> Result<Vec<Detection>> {
    let mut dets = Vec::new();
    for l in levels {
        let n = l.rows * l.cols;
        if l.cls.len() != n || l.obj.len() != n || l.bbox.len() != 4 * n {
            return Err(Error::DetectorOutput(format!(
                "stride {}: tensor sizes cls {}, obj {}, bbox {} do not match a {}x{} grid",
                l.stride,
                l.cls.len(),
                l.obj.len(),
                l.bbox.len(),
                l.rows,
                l.cols
            )));
        }
        let s = l.stride as f32;
        for i in 0..n {
            let (c, o) = (l.cls[i], l.obj[i]);
            if c.is_nan() || o.is_nan() {
                return Err(Error::DetectorOutput(format!("NaN score at stride {} cell {i}", l.stride)));
            }
            let score = (c.clamp(0.0, 1.0) * o.clamp(0.0, 1.0)).sqrt();
            if score <= threshold {
                continue;
            }
            let (row, col) = ((i / l.cols) as f32, (i % l.cols) as f32);
            let b = &l.bbox[4 * i..4 * i + 4];
            let (cx, cy) = ((col + b[0]) * s, (row + b[1]) * s);
            let (w, h) = (b[2].exp() * s, b[3].exp() * s);
            let bbox = BBox::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0);
            if ![bbox.x0, bbox.y0, bbox.x1, bbox.y1].iter().all(|v| v.is_finite()) {
                return Err(Error::DetectorOutput(format!(
                    "non-finite box at stride {} cell ({row}, {col}) with score {score}",
                    l.stride
                )));
            }
            if score < yunet_min_score(h, threshold) {
                continue;
            }
            let bbox = bbox.clamped(img_w, img_h);
            if bbox.is_valid() {
                dets.push(Detection { bbox, score });
            }
        }
    }
    Ok(nms(dets, nms_iou))
}

/// Most one-thread sessions [`Detector::detect_each`] runs side by side.
const MAX_SIDE_SESSIONS: usize = 8;
/// [`Detector::detect_each`] runs pictures side by side when there are at least this many per session.
const MIN_PER_WORKER: usize = 2;

/// YuNet run by ONNX Runtime, with its own score threshold ([`DetectSettings::small_threshold`]).
///
/// Several pictures at once ([`Detector::detect_each`]: the focus crops around a video frame's known small
/// faces) run side by side, one per core, each on a one-thread session of its own (made on first use): a
/// small picture leaves most of one session's threads waiting on each other, and its low-light equalisation
/// and input conversion run on the calling thread alone. One-thread sessions give the same answers as the
/// many-thread one.
pub struct YuNet {
    session: Session,
    /// Made on the first pictures that run side by side.
    side: Option<SideBySide>,
    /// The model and options, to make the side sessions.
    bytes: Vec<u8>,
    options: SessionOptions,
    settings: DetectSettings,
    model_path: PathBuf,
    sha256: String,
    info: super::RuntimeInfo,
    usage: super::Usage,
}

impl std::fmt::Debug for YuNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YuNet").field("model_path", &self.model_path).field("settings", &self.settings).finish()
    }
}

impl YuNet {
    /// Loads the model at `model`, which must be one of [`YUNET_MODELS`] (checked by SHA-256).
    pub fn load(model: &Path, settings: DetectSettings, options: &SessionOptions) -> Result<Self> {
        settings.validate()?;
        let (bytes, sha256) = super::onnx::read_one_of(model, &YUNET_MODELS)?;
        let (session, info) = super::onnx::session(&bytes, options, "fp32")?;
        Ok(Self {
            session,
            side: None,
            bytes,
            options: options.clone(),
            settings,
            model_path: model.to_path_buf(),
            sha256,
            info,
            usage: super::Usage::default(),
        })
    }

    /// How many pictures run side by side: one per thread the session may use (at most
    /// [`MAX_SIDE_SESSIONS`]); 1 on a GPU.
    fn side_by_side(&self) -> usize {
        if self.options.cuda {
            return 1;
        }
        super::onnx::intra_threads(self.options.intra_threads).min(MAX_SIDE_SESSIONS)
    }

    /// Checks that `model` is one of [`YUNET_MODELS`] without loading it; returns its SHA-256.
    pub fn verify(model: &Path) -> Result<String> {
        super::onnx::read_one_of(model, &YUNET_MODELS).map(|(_, sha256)| sha256)
    }
}

/// What one inference gives: the faces and the input pixels it ran on.
type Found = Result<(Vec<Detection>, u64)>;
/// What one picture of a side-by-side batch gives, with its index in the batch.
type Answer = (usize, Found);

/// One picture of a batch for a side-by-side session, and where to send its answer.
struct Job {
    index: usize,
    images: Arc<Vec<RgbImage>>,
    reply: mpsc::Sender<Answer>,
}

/// One-thread YuNet sessions, each on a thread of its own, that take the pictures of a batch in turn. The
/// threads live as long as the detector and wait (without spinning) between batches: the cores they leave
/// are the decoder's and the encoder's.
struct SideBySide {
    jobs: Option<mpsc::Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl SideBySide {
    /// `workers` one-thread sessions of the model `bytes`, each on its own thread.
    fn start(bytes: &[u8], options: &SessionOptions, settings: &DetectSettings, workers: usize) -> Result<Self> {
        let one = SessionOptions { intra_threads: 1, ..options.clone() };
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut threads = Vec::with_capacity(workers);
        for n in 0..workers {
            let (mut session, _) = super::onnx::session(bytes, &one, "fp32")?;
            let (queue, settings) = (Arc::clone(&queue), settings.clone());
            let worker = move || loop {
                // One thread waits on the queue at a time; the others wait for the lock.
                let job = match queue.lock() {
                    Ok(queue) => queue.recv(),
                    Err(_) => return,
                };
                let Ok(job) = job else { return };
                let light = super::onnx::Light::own(settings.low_light);
                let answer = run(&mut session, &job.images[job.index], &settings, light);
                // The batch's caller has gone only if it failed already: the answer is not needed.
                let _ = job.reply.send((job.index, answer));
            };
            let thread = std::thread::Builder::new()
                .name(format!("faceveil-yunet-{n}"))
                .spawn(worker)
                .map_err(|e| Error::Internal(format!("starting a detector thread: {e}")))?;
            threads.push(thread);
        }
        Ok(Self { jobs: Some(jobs), threads })
    }

    /// Every picture of `images` on the sessions, side by side; the answers in the order of `images`. An error
    /// on any picture, or a thread that stopped, fails the batch.
    fn run(&self, images: Vec<RgbImage>) -> Result<Vec<(Vec<Detection>, u64)>> {
        let stopped = || Error::Inference("a side-by-side detector thread stopped".into());
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        let count = images.len();
        let images = Arc::new(images);
        let (reply, answers) = mpsc::channel();
        for index in 0..count {
            let job = Job { index, images: Arc::clone(&images), reply: reply.clone() };
            jobs.send(job).map_err(|_| stopped())?;
        }
        drop(reply);
        let mut slots: Vec<Option<Found>> = (0..count).map(|_| None).collect();
        // Ends when every job has answered or been dropped (a thread that panicked drops its job).
        for (index, answer) in answers {
            slots[index] = Some(answer);
        }
        slots.into_iter().map(|slot| slot.ok_or_else(stopped)?).collect()
    }
}

impl Drop for SideBySide {
    fn drop(&mut self) {
        // Closing the queue ends every thread's loop.
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One inference of YuNet on `img` (or on what `light` puts in its place) in `session`: the faces and the
/// input pixels it ran on.
fn run(session: &mut Session, img: &RgbImage, settings: &DetectSettings, light: super::onnx::Light<'_>) -> Found {
    let (w, h) = img.dimensions();
    let (outputs, pw, ph) = super::onnx::infer(session, INPUT, img, light, super::onnx::Channels::Bgr)?;
    let extract =
        |name: String, cells: usize, per: usize| super::onnx::output(&outputs, &name, &[1, cells as i64, per as i64]);
    let mut levels = Vec::with_capacity(STRIDES.len());
    for s in STRIDES {
        let (rows, cols) = (ph / s, pw / s);
        levels.push(YuNetLevel {
            stride: s,
            cls: extract(format!("cls_{s}"), rows * cols, 1)?,
            obj: extract(format!("obj_{s}"), rows * cols, 1)?,
            bbox: extract(format!("bbox_{s}"), rows * cols, 4)?,
            rows,
            cols,
        });
    }
    let found = decode_yunet(&levels, w, h, settings.small_threshold, settings.nms_iou)?;
    Ok((found, (pw * ph) as u64))
}

impl YuNet {
    /// One inference on the detector's own session, counted.
    fn run_counted(&mut self, img: &RgbImage, light: super::onnx::Light<'_>) -> Result<Vec<Detection>> {
        let (found, pixels) = run(&mut self.session, img, &self.settings, light)?;
        self.usage.add(pixels);
        Ok(found)
    }
}

impl Detector for YuNet {
    fn detect(&mut self, img: &RgbImage) -> Result<Vec<Detection>> {
        self.run_counted(img, super::onnx::Light::own(self.settings.low_light))
    }

    fn detect_lit(
        &mut self,
        img: &RgbImage,
        equalised: Option<&RgbImage>,
        _pass: super::Pass,
    ) -> Result<Vec<Detection>> {
        self.run_counted(img, super::onnx::Light::given(self.settings.low_light, equalised))
    }

    fn detect_each(&mut self, images: Vec<RgbImage>, _pass: super::Pass) -> Result<Vec<Vec<Detection>>> {
        let workers = self.side_by_side();
        if workers < 2 || images.len() < MIN_PER_WORKER * workers {
            return images.iter().map(|image| self.detect(image)).collect();
        }
        let side = match self.side.take() {
            Some(side) => side,
            None => SideBySide::start(&self.bytes, &self.options, &self.settings, workers)?,
        };
        let answers = side.run(images);
        self.side = Some(side);
        let usage = &mut self.usage;
        Ok(answers?
            .into_iter()
            .map(|(found, pixels)| {
                usage.add(pixels);
                found
            })
            .collect())
    }

    fn model_sha256(&self) -> Option<String> {
        Some(self.sha256.clone())
    }

    fn runtime(&self) -> Option<super::RuntimeInfo> {
        Some(self.info.clone())
    }

    fn usage(&self) -> Vec<super::ModelUsage> {
        vec![self.usage.report("yunet-s", &self.sha256, &self.info)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One stride-8 level of a 16×16 input (2×2 cells) with a confident face in cell (1, 0).
    fn canned() -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut cls = vec![0.5f32; 4];
        let mut obj = vec![0.001f32; 4];
        cls[2] = 0.9;
        obj[2] = 0.9;
        let mut bbox = vec![0.0f32; 16];
        // Cell (row 1, col 0): centre ((0 + 0.5)·8, (1 + 0.25)·8) = (4, 10), size (e^0·8, ln 2 → 16).
        bbox[8..12].copy_from_slice(&[0.5, 0.25, 0.0, 2f32.ln()]);
        (cls, obj, bbox)
    }

    #[test]
    fn decodes_a_canned_level_to_the_expected_box() {
        let (cls, obj, bbox) = canned();
        let level = YuNetLevel { stride: 8, cls: &cls, obj: &obj, bbox: &bbox, rows: 2, cols: 2 };
        let dets = decode_yunet(&[level], 16, 32, 0.1, 0.3).unwrap();
        assert_eq!(dets.len(), 1, "{dets:?}");
        assert!((dets[0].score - 0.9).abs() < 1e-6);
        assert_eq!(dets[0].bbox, BBox::new(0.0, 2.0, 8.0, 18.0));
        // Clamped to the picture; below the threshold nothing.
        assert_eq!(decode_yunet(&[level], 6, 12, 0.1, 0.3).unwrap()[0].bbox, BBox::new(0.0, 2.0, 6.0, 12.0));
        assert!(decode_yunet(&[level], 16, 32, 0.95, 0.3).unwrap().is_empty());
    }

    #[test]
    fn nan_scores_boxes_and_wrong_sizes_fail_closed() {
        let (mut cls, obj, mut bbox) = canned();
        cls[0] = f32::NAN;
        let level = YuNetLevel { stride: 8, cls: &cls, obj: &obj, bbox: &bbox, rows: 2, cols: 2 };
        assert!(matches!(decode_yunet(&[level], 16, 32, 0.1, 0.3), Err(Error::DetectorOutput(_))));
        cls[0] = 0.5;
        bbox[10] = f32::NAN;
        let level = YuNetLevel { stride: 8, cls: &cls, obj: &obj, bbox: &bbox, rows: 2, cols: 2 };
        assert!(matches!(decode_yunet(&[level], 16, 32, 0.1, 0.3), Err(Error::DetectorOutput(_))));
        let level = YuNetLevel { stride: 8, cls: &cls[..3], obj: &obj, bbox: &bbox, rows: 2, cols: 2 };
        assert!(matches!(decode_yunet(&[level], 16, 32, 0.1, 0.3), Err(Error::DetectorOutput(_))));
    }
}
