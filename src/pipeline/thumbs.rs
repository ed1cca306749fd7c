//! Review-sheet thumbnails of redacted frames, made in the redaction thread (the scaler is not `Send`: it is
//! made there) from the frame as it goes to the encoder: the sheet only ever shows redacted pixels.

use crate::geom::Rotation;
use crate::io::ffmpeg::picture::UprightRgb;
use crate::media::time_code;
use crate::review::{ReviewCollector, THUMB_WIDTH};
use ff::{frame, Rational};
use ffmpeg_next as ff;

pub(crate) struct Thumbnails<'a> {
    collector: &'a mut ReviewCollector,
    rotation: Rotation,
    time_base: Rational,
    rgb: Option<UprightRgb>,
}

impl<'a> Thumbnails<'a> {
    pub(crate) fn new(collector: &'a mut ReviewCollector, rotation: Rotation, time_base: Rational) -> Self {
        Self { collector, rotation, time_base, rgb: None }
    }

    /// Best effort: a frame whose thumbnail cannot be made is simply not on the sheet.
    pub(crate) fn offer(&mut self, frame: &frame::Video, index: u64, faces: usize) {
        if !self.collector.wants(index, faces) {
            return;
        }
        let rotation = self.rotation;
        let rgb = self.rgb.get_or_insert_with(|| {
            let (w, h) = (frame.width(), frame.height());
            let (uw, _) = rotation.upright_size(w, h);
            let scale = f64::from(THUMB_WIDTH) / f64::from(uw.max(1));
            let size = |n: u32| ((f64::from(n) * scale).round() as u32).max(1);
            UprightRgb::scaled(rotation, size(w), size(h))
        });
        let Ok(thumb) = rgb.convert(frame) else { return };
        let tb = (self.time_base.numerator(), self.time_base.denominator());
        self.collector.offer(index, time_code(frame.pts().unwrap_or(0), tb), faces, &thumb);
    }
}
