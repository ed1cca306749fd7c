//! Checking already-redacted outputs: scan every frame at high sensitivity and list where a face still seems
//! detectable. A second opinion for reviewers, not a proof: the same detector family made the output.

use crate::detect::{faces_multiscale, faces_turned, DetectSettings, Detector};
use crate::geom::BBox;
use crate::io::still;
pub use crate::media::time_code;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Findings kept per file at most (counts stay exact).
const MAX_FINDINGS: usize = 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    pub frame: u64,
    /// Presentation time in the stream's time base (`time_base` = numerator/denominator seconds).
    pub pts: i64,
    pub time_base: (i32, i32),
    /// `HH:MM:SS.mmm`, for people.
    pub time: String,
    /// Box in upright display pixels.
    pub bbox: BBox,
    pub score: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    pub file: PathBuf,
    pub frames: u64,
    pub frames_flagged: u64,
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    pub fn clean(&self) -> bool {
        self.frames_flagged == 0
    }
}

/// Share of the original's fine detail inside `b` that survives in `red` (the judge's criterion):
/// `<hp_o, hp_r> / <hp_o, hp_o>` over the central 80 % of the box, `hp` = grey minus its 5×5 mean.
/// Redaction leaves ~0 (blur, fill, grain are uncorrelated with the face); an intact face ~1.
pub fn detail_kept(orig: &image::RgbImage, red: &image::RgbImage, b: &BBox) -> f64 {
    if orig.dimensions() != red.dimensions() {
        return 1.0;
    }
    let (w, h) = orig.dimensions();
    let inner = b.scaled(0.8).to_pixel_rect(w, h);
    let grey = |img: &image::RgbImage, x: u32, y: u32| {
        let p = img.get_pixel(x.min(w - 1), y.min(h - 1));
        0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64
    };
    let hp = |img: &image::RgbImage, x: u32, y: u32| {
        let mut m = 0.0;
        for dy in 0..5u32 {
            for dx in 0..5u32 {
                m += grey(img, (x + dx).saturating_sub(2), (y + dy).saturating_sub(2));
            }
        }
        grey(img, x, y) - m / 25.0
    };
    let (mut oo, mut or) = (0f64, 0f64);
    for y in inner.y0..inner.y1 {
        for x in inner.x0..inner.x1 {
            let (a, r) = (hp(orig, x, y), hp(red, x, y));
            oo += a * a;
            or += a * r;
        }
    }
    if oo <= 1e-6 {
        0.0
    } else {
        or / oo
    }
}

/// With an original, a detection counts only where this much of the face's detail survived.
pub const DETAIL_KEPT_MAX: f64 = 0.5;

/// Scans `path` (image or video) with `detector` at `settings` (use a sensitive threshold). With `original`
/// (the unredacted source, same frames), a detection is reported only where the output still carries the
/// original's fine detail there, so redacted heads that merely look like heads are not reported.
pub fn verify_file(
    path: &Path,
    original: Option<&Path>,
    settings: &DetectSettings,
    detector: &mut dyn Detector,
) -> Result<VerifyReport> {
    verify_file_until(path, original, settings, detector, &std::sync::atomic::AtomicBool::new(false))
}

/// [`verify_file`], ending with [`Error::Cancelled`] once `stop` is set (checked every frame).
pub fn verify_file_until(
    path: &Path,
    original: Option<&Path>,
    settings: &DetectSettings,
    detector: &mut dyn Detector,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<VerifyReport> {
    settings.validate()?;
    let mut report = VerifyReport { file: path.to_path_buf(), frames: 0, frames_flagged: 0, findings: Vec::new() };
    let mut check =
        |frame: u64, pts: i64, tb: (i32, i32), img: &image::RgbImage, orig: Option<&image::RgbImage>| -> Result<()> {
            let search = |detector: &mut dyn Detector| -> Result<Vec<_>> {
                let mut found = faces_multiscale(detector, img, settings, |_| true)?;
                if settings.turned {
                    found.extend(faces_turned(detector, img, settings)?);
                }
                Ok(found)
            };
            let found =
                search(detector).map_err(|e| Error::Frame { path: path.to_path_buf(), frame, source: Box::new(e) })?;
            let found: Vec<_> = match orig {
                Some(o) => {
                    found.into_iter().filter(|d| detail_kept(o, img, &d.bbox).abs() >= DETAIL_KEPT_MAX).collect()
                }
                None => found,
            };
            if !found.is_empty() {
                report.frames_flagged += 1;
            }
            for d in found {
                if report.findings.len() < MAX_FINDINGS {
                    report.findings.push(Finding {
                        frame,
                        pts,
                        time_base: tb,
                        time: time_code(pts, tb),
                        bbox: d.bbox,
                        score: d.score,
                    });
                }
            }
            Ok(())
        };
    // Stills are read as `redact` reads them: upright, EXIF orientation applied (an original stored turned
    // must be compared with its redacted copy, which is written upright).
    let load = |p: &Path| -> Result<image::RgbImage> {
        let format = still::probe(p)?.ok_or_else(|| Error::bad_input(p, "not a JPEG, PNG, WebP, TIFF or BMP image"))?;
        Ok(still::read(p, format)?.0.to_rgb8())
    };
    if still::probe(path)?.is_some() {
        let img = load(path)?;
        let orig = original.map(load).transpose()?;
        if let Some(o) = &orig {
            if o.dimensions() != img.dimensions() {
                return Err(Error::bad_input(
                    path,
                    format!(
                        "is {}x{} upright but its original is {}x{}: not the same picture",
                        img.width(),
                        img.height(),
                        o.width(),
                        o.height()
                    ),
                ));
            }
        }
        check(0, 0, (1, 1), &img, orig.as_ref())?;
        report.frames = 1;
        return Ok(report);
    }
    let mut reader = crate::io::ffmpeg::input::FrameReader::open(path)?;
    let mut orig_reader = original.map(crate::io::ffmpeg::input::FrameReader::open).transpose()?;
    let tb = reader.time_base();
    let mut n = 0u64;
    while let Some((pts, img)) = reader.next_frame()? {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let orig = match orig_reader.as_mut() {
            Some(r) => match r.next_frame()? {
                Some((_, o)) => Some(o),
                None => return Err(Error::bad_input(path, "has more frames than its original")),
            },
            None => None,
        };
        check(n, pts.unwrap_or(0), tb, &img, orig.as_ref())?;
        n += 1;
    }
    // A check over fewer frames than the file holds, or over wrongly paired frames, is not a clean result.
    let refused = |r: &crate::io::ffmpeg::input::FrameReader, p: &Path| -> Result<()> {
        match r.send_errors() {
            0 => Ok(()),
            k => Err(Error::bad_input(p, format!("{k} packets could not be decoded: not every frame was checked"))),
        }
    };
    refused(&reader, path)?;
    if let (Some(r), Some(o)) = (orig_reader.as_mut(), original) {
        refused(r, o)?;
        if r.next_frame()?.is_some() {
            return Err(Error::bad_input(path, "has fewer frames than its original"));
        }
    }
    report.frames = n;
    Ok(report)
}
