//! Frame-level redaction of raw RGB frames, without FFmpeg.

use crate::detect::{Analyser, DetectSettings, Detection, Detector};
use crate::geom::BBox;
use crate::redact::{redact_rgb, RedactSettings};
use crate::Result;
use image::RgbImage;

/// Detects and redacts faces in single RGB frames.
///
/// Each call is independent: use [`crate::track::TrackFill`] (or the file pipeline) to bridge misses
/// across frames of a video.
#[derive(Debug)]
pub struct Redactor<D> {
    detector: D,
    detect: DetectSettings,
    redact: RedactSettings,
}

impl<D: Detector> Redactor<D> {
    /// Refuses the review-only outline style: what a `Redactor` returns is redacted.
    pub fn new(detector: D, detect: DetectSettings, redact: RedactSettings) -> Result<Self> {
        detect.validate()?;
        redact.validate()?;
        redact.require_redaction("a Redactor's picture")?;
        Ok(Self { detector, detect, redact })
    }

    /// Finds the faces in an upright frame as a photo is searched ([`Analyser::exhaustive`]): a whole-frame
    /// pass plus upscaled tiles for small faces. Returns the regions to redact in frame pixels, before mask
    /// enlargement: each face's box, grown to its head for a confident face
    /// ([`face_regions`](crate::detect::face_regions)).
    pub fn detect(&mut self, frame: &RgbImage) -> Result<Vec<Detection>> {
        let (w, h) = frame.dimensions();
        Analyser::exhaustive(self.detect.clone(), w, h).analyse(&mut self.detector, frame)
    }

    /// Detects faces in `frame` and redacts them in place. Returns what was found.
    pub fn redact(&mut self, frame: &mut RgbImage) -> Result<Vec<Detection>> {
        let found = self.detect(frame)?;
        let boxes: Vec<BBox> = found.iter().map(|d| d.bbox).collect();
        redact_rgb(frame, &boxes, &self.redact)?;
        Ok(found)
    }

    /// Redacts the given boxes (e.g. from temporal bridging) without running the detector.
    pub fn redact_boxes(&self, frame: &mut RgbImage, boxes: &[BBox]) -> Result<()> {
        redact_rgb(frame, boxes, &self.redact)
    }

    pub fn detector_mut(&mut self) -> &mut D {
        &mut self.detector
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::ScriptedDetector;
    use image::Rgb;

    #[test]
    fn the_outline_style_is_refused_issue_33() {
        let outline = RedactSettings { style: crate::redact::Style::Outline, ..Default::default() };
        let e = Redactor::new(ScriptedDetector::default(), DetectSettings::default(), outline).unwrap_err();
        assert!(e.to_string().contains("a Redactor's picture must be redacted"), "{e}");
    }

    #[test]
    fn redactor_maps_detector_boxes_to_frame_and_redacts_there() {
        // 2560x1440 frame: the detector sees it at 1280x720, so its box is doubled.
        let found = vec![Detection { bbox: BBox::new(100.0, 100.0, 150.0, 160.0), score: 0.8 }];
        let settings = DetectSettings { tile_scale: 0.0, ..Default::default() };
        let mut r = Redactor::new(ScriptedDetector::new([found]), settings, RedactSettings::default()).unwrap();
        let mut frame = RgbImage::from_fn(2560, 1440, |x, y| Rgb([((x ^ y) & 0xff) as u8, 0, 0]));
        let orig = frame.clone();
        let dets = r.redact(&mut frame).unwrap();
        // (200,200)-(300,320) in frame pixels, grown to the head of a confident face.
        assert_eq!(dets[0].bbox, BBox::new(190.0, 176.0, 310.0, 320.0));
        assert_ne!(frame.get_pixel(250, 260), orig.get_pixel(250, 260));
        assert_eq!(frame.get_pixel(1000, 1000), orig.get_pixel(1000, 1000));
    }
}
