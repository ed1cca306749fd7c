//! Checking already-redacted outputs: scan every frame at high sensitivity and list where a face still seems
//! detectable. A second opinion for reviewers, not a proof: the same detector family made the output.

use crate::detect::{detect_multiscale, DetectSettings, Detector};
use crate::geom::BBox;
use crate::io::still;
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

/// Formats `pts × num/den` seconds as `HH:MM:SS.mmm` with integer arithmetic.
pub fn time_code(pts: i64, time_base: (i32, i32)) -> String {
    let (num, den) = (time_base.0 as i128, time_base.1.max(1) as i128);
    let ms = (pts as i128 * num * 1000).div_euclid(den).max(0);
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// Scans `path` (image or video) with `detector` at `settings` (use a sensitive threshold).
pub fn verify_file(path: &Path, settings: &DetectSettings, detector: &mut dyn Detector) -> Result<VerifyReport> {
    settings.validate()?;
    let mut report = VerifyReport { file: path.to_path_buf(), frames: 0, frames_flagged: 0, findings: Vec::new() };
    let mut check = |frame: u64, pts: i64, tb: (i32, i32), img: &image::RgbImage| -> Result<()> {
        let found = detect_multiscale(detector, img, settings, |_| true).map_err(|e| Error::Frame {
            path: path.to_path_buf(),
            frame,
            source: Box::new(e),
        })?;
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
    if still::probe(path)?.is_some() {
        let img = image::open(path).map_err(|e| Error::Image { path: path.to_path_buf(), source: e })?.to_rgb8();
        check(0, 0, (1, 1), &img)?;
        report.frames = 1;
    } else {
        report.frames = crate::io::video::scan_frames(path, |f, pts, tb, img| check(f, pts, tb, img))?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_codes_use_integer_time_bases() {
        assert_eq!(time_code(0, (1, 25)), "00:00:00.000");
        assert_eq!(time_code(3601 * 90000 + 45000, (1, 90000)), "01:00:01.500");
        assert_eq!(time_code(1001, (1001, 30000)), "00:00:33.400");
    }
}
