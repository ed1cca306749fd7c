//! Push/pull redaction of raw frames from a capture pipeline, without FFmpeg: push each frame as it is
//! captured, pull redacted frames in order once the look-ahead has seen past them.
//!
//! ```
//! use faceveil::detect::ScriptedDetector;
//! use faceveil::frames::{Frame, FrameRedactor, PixelLayout};
//! use faceveil::{BBox, Detection, Options};
//!
//! # fn main() -> faceveil::Result<()> {
//! // A stand-in detector that finds one face in the first frame; use `CenterFace` in a real recorder.
//! let face = Detection { bbox: BBox::new(16.0, 16.0, 48.0, 56.0), score: 0.9 };
//! let detector = ScriptedDetector::new([vec![face]]);
//! let mut redactor = FrameRedactor::new(detector, Options::default())?;
//! let (w, h) = (64, 64);
//! let mut pulled = Vec::new();
//! for pts in 0..10 {
//!     let pixels = vec![100u8; PixelLayout::I420.frame_len(w, h)];
//!     redactor.push(Frame::new(PixelLayout::I420, w, h, pts * 3600, pixels)?)?;
//!     // A frame comes back once `delay_frames()` later frames have been pushed.
//!     while let Some(frame) = redactor.pull() {
//!         pulled.push(frame.pts);
//!     }
//! }
//! redactor.flush()?;
//! while let Some(frame) = redactor.pull() {
//!     pulled.push(frame.pts);
//! }
//! assert_eq!(pulled, (0..10).map(|i| i * 3600).collect::<Vec<_>>());
//! # Ok(())
//! # }
//! ```
//!
//! **Latency:** frame *n* can be pulled after frame *n* + [`FrameRedactor::delay_frames`] was pushed (the
//! look-ahead that bridges detector misses, 5 frames by default, 11 for a 50 fps stream whose rate
//! [`FrameRedactor::set_frame_rate`] was told, and the newest frame), or after
//! [`FrameRedactor::flush`].
//!
//! **Memory:** the redactor holds at most `delay_frames() + 1` frames it has not released, plus the frames
//! you have not pulled yet, plus the detector's buffers (about 50 MB for CenterFace at 1080p). Pull after
//! every push to keep it at that.
//!
//! **Threads:** a `FrameRedactor` is `Send` (move it to the thread that feeds it) but not shared: push and
//! pull from one thread at a time. Use one redactor per camera; they are independent. Detection runs on the
//! calling thread (ONNX Runtime uses its own threads inside).
//!
//! **Detection** is the video path's own per-frame core ([`analyse::Core`](crate::analyse::Core)) on the schedule of [`Analyser`](crate::detect::Analyser): small-face tiles spread
//! over `tile_period` frames, the whole frame at half resolution where tiles apply, and results reused for
//! regions whose pixels did not change (a fixed camera mostly pays for what moves). On a small CPU, load the
//! int8 model (`CenterFace::load(&find_shipped_model(None, &CENTERFACE_INT8)?, ..)`): about 1.5× faster.
//!
//! **Failures:** if the detector cannot analyse a frame, `push` returns the error and the frame is dropped,
//! never released unredacted; with [`OnDetectorError::RedactFrame`](crate::OnDetectorError) the frame is
//! released flat grey instead.

use crate::analyse::{Core, Effort, Verdict};
use crate::detect::Detector;
use crate::geom::Rotation;
use crate::redact::ChannelLayout;
use crate::{Error, FrameRate, Options, Result, Schedule};
use image::RgbImage;
use std::collections::VecDeque;

/// How a frame's pixels are laid out in its buffer (tightly packed, no row padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelLayout {
    /// Packed 8-bit R, G, B.
    Rgb24,
    /// Packed 8-bit B, G, R.
    Bgr24,
    /// Packed 8-bit R, G, B and a fourth byte (alpha or padding, left as it is).
    Rgba,
    /// Packed 8-bit B, G, R and a fourth byte (alpha or padding, left as it is).
    Bgra,
    /// 8-bit planar Y, then U and V at half width and height (rounded up), BT.601 limited range.
    I420,
    /// 8-bit planar Y, then interleaved U/V at half width and height (rounded up), BT.601 limited range.
    Nv12,
}

impl PixelLayout {
    /// Bytes in one `width × height` frame.
    pub fn frame_len(self, width: u32, height: u32) -> usize {
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        match self.packed() {
            Some((bytes, _)) => w * h * bytes,
            None => w * h + 2 * cw * ch,
        }
    }

    /// For the packed RGB layouts: bytes per pixel and the offsets of R, G and B in a pixel.
    fn packed(self) -> Option<(usize, [usize; 3])> {
        match self {
            PixelLayout::Rgb24 => Some((3, [0, 1, 2])),
            PixelLayout::Bgr24 => Some((3, [2, 1, 0])),
            PixelLayout::Rgba => Some((4, [0, 1, 2])),
            PixelLayout::Bgra => Some((4, [2, 1, 0])),
            PixelLayout::I420 | PixelLayout::Nv12 => None,
        }
    }

    /// The channels of a frame, each with the range of the buffer it lives in.
    fn channels(self, width: u32, height: u32) -> Vec<(std::ops::Range<usize>, ChannelLayout)> {
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let luma = w * h;
        let chroma = cw as usize * ch as usize;
        match self {
            PixelLayout::Rgb24 | PixelLayout::Bgr24 | PixelLayout::Rgba | PixelLayout::Bgra => {
                let base = ChannelLayout::packed_rgb(width, height)[0];
                self.packed()
                    .into_iter()
                    .flat_map(|(bytes, offsets)| {
                        let base = ChannelLayout { stride: w * bytes, step: bytes, ..base };
                        offsets.map(|offset| (0..luma * bytes, ChannelLayout { offset, ..base }))
                    })
                    .collect()
            }
            PixelLayout::I420 => vec![
                (0..luma, ChannelLayout::planar(width, height, w, 0, 0, true)),
                (luma..luma + chroma, ChannelLayout::planar(cw, ch, cw as usize, 1, 1, false)),
                (luma + chroma..luma + 2 * chroma, ChannelLayout::planar(cw, ch, cw as usize, 1, 1, false)),
            ],
            PixelLayout::Nv12 => {
                let uv = ChannelLayout { step: 2, ..ChannelLayout::planar(cw, ch, 2 * cw as usize, 1, 1, false) };
                vec![
                    (0..luma, ChannelLayout::planar(width, height, w, 0, 0, true)),
                    (luma..luma + 2 * chroma, uv),
                    (luma..luma + 2 * chroma, ChannelLayout { offset: 1, ..uv }),
                ]
            }
        }
    }
}

/// One raw frame and its presentation timestamp (in the caller's time base; only its order matters here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub layout: PixelLayout,
    pub width: u32,
    pub height: u32,
    pub pts: i64,
    pub data: Vec<u8>,
}

impl Frame {
    /// Checks that `data` holds exactly one frame of this layout and size.
    pub fn new(layout: PixelLayout, width: u32, height: u32, pts: i64, data: Vec<u8>) -> Result<Self> {
        let frame = Self { layout, width, height, pts, data };
        frame.check()?;
        Ok(frame)
    }

    /// Checks that `data` holds exactly one frame of this layout and size. The fields are public, so a frame
    /// changed after [`new`](Self::new) is checked again wherever it is read: a buffer that does not fit is an
    /// error, never a picture with no face in it.
    pub fn check(&self) -> Result<()> {
        let (layout, width, height) = (self.layout, self.width, self.height);
        crate::config::check_picture_size(width, height).map_err(Error::Config)?;
        let want = layout.frame_len(width, height);
        if self.data.len() != want {
            return Err(Error::Config(format!(
                "a {width}x{height} {layout:?} frame has {want} bytes, not {}",
                self.data.len()
            )));
        }
        Ok(())
    }

    /// The frame as RGB (BT.601 limited range for the YUV layouts), for the detector.
    pub fn to_rgb(&self) -> Result<RgbImage> {
        self.check()?;
        let (w, h) = (self.width as usize, self.height as usize);
        let unfit = || Error::Internal(format!("{}x{} frame buffer does not fit", self.width, self.height));
        if self.layout == PixelLayout::Rgb24 {
            return RgbImage::from_raw(self.width, self.height, self.data.clone()).ok_or_else(unfit);
        }
        if let Some((bytes, [r, g, b])) = self.layout.packed() {
            let rgb = self.data.chunks_exact(bytes).flat_map(|px| [px[r], px[g], px[b]]).collect();
            return RgbImage::from_raw(self.width, self.height, rgb).ok_or_else(unfit);
        }
        let cw = w.div_ceil(2);
        let chroma = cw * h.div_ceil(2);
        let (y_plane, rest) = self.data.split_at(w * h);
        let mut out = vec![0u8; w * h * 3];
        for (y, row) in out.chunks_exact_mut(w * 3).enumerate() {
            for (x, px) in row.chunks_exact_mut(3).enumerate() {
                let c = (y / 2) * cw + x / 2;
                let (u, v) = match self.layout {
                    PixelLayout::Nv12 => (rest[2 * c], rest[2 * c + 1]),
                    _ => (rest[c], rest[chroma + c]),
                };
                px.copy_from_slice(&yuv_to_rgb(y_plane[y * w + x], u, v));
            }
        }
        RgbImage::from_raw(self.width, self.height, out).ok_or_else(unfit)
    }
}

/// BT.601 limited-range YCbCr to RGB, in 16.16 fixed point.
fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = (i32::from(y) - 16) * 76_309;
    let (d, e) = (i32::from(u) - 128, i32::from(v) - 128);
    let clamp = |x: i32| ((x + 32_768) >> 16).clamp(0, 255) as u8;
    [clamp(c + 104_597 * e), clamp(c - 25_675 * d - 53_279 * e), clamp(c + 132_201 * d)]
}

/// What a [`FrameRedactor`] has counted so far: the core's counts ([`Stats`](crate::analyse::Stats)), shared
/// with every other path. `frames` is the frames pushed, `frames_released` those made ready to pull.
pub type FrameStats = crate::analyse::Stats;

/// Detects, tracks and redacts faces in a stream of raw frames. See the [module documentation](self).
pub struct FrameRedactor<D> {
    detector: D,
    options: Options,
    /// The per-frame core, made for the stream's layout and size at its first frame.
    core: Option<(PixelLayout, u32, u32, Core<Frame>)>,
    ready: VecDeque<Frame>,
    last_pts: Option<i64>,
    /// How frames are turned for display (a rotation flag): faces are searched in the upright picture.
    rotation: Rotation,
    /// The stream's frame rate, where known: the schedule's bridging window and tile period follow it.
    rate: Option<FrameRate>,
    /// Whether the next frames are interlaced, and whether an interlaced frame ever came (the delay is a frame
    /// longer from then on).
    scan: Scan,
    fields_seen: bool,
    /// Counts of the streams before the current one (a flush starts a new one).
    done: FrameStats,
}

impl<D> std::fmt::Debug for FrameRedactor<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let format = self.core.as_ref().map(|(l, w, h, _)| (*l, *w, *h));
        f.debug_struct("FrameRedactor").field("format", &format).field("ready", &self.ready.len()).finish()
    }
}

impl<D: Detector> FrameRedactor<D> {
    pub fn new(mut detector: D, options: Options) -> Result<Self> {
        options.validate()?;
        options.redact.require_redaction("frames passed through the frame API")?;
        // Frames are video: each pass goes to the model that searches it in video.
        detector.prepare_for(crate::report::MediaKind::Video);
        Ok(Self {
            detector,
            options,
            core: None,
            ready: VecDeque::new(),
            last_pts: None,
            rotation: Rotation::None,
            rate: None,
            scan: Scan::Progressive,
            fields_seen: false,
            done: FrameStats::default(),
        })
    }

    /// Whether the frames pushed from now on are interlaced (a stream may change from frame to frame, as
    /// GStreamer's "mixed" streams do). Once an interlaced frame came, every frame is held a frame longer
    /// ([`delay_frames`](Self::delay_frames)): its second field needs the next frame's faces.
    pub fn set_scan(&mut self, scan: Scan) {
        self.scan = scan;
        self.fields_seen |= scan != Scan::Progressive;
    }

    /// How the frames are to be turned for display (a phone's or camera's rotation flag, e.g. GStreamer's
    /// `image-orientation` tag): faces are searched in the upright picture, as the file path does, and the
    /// masks land on the stored pixels. Set it before a stream's first frame, or [`flush`](Self::flush) first:
    /// changing it while frames are held is an error.
    pub fn set_rotation(&mut self, rotation: Rotation) -> Result<()> {
        if self.core.is_some() && rotation != self.rotation {
            return Err(Error::Config(format!(
                "the rotation changes from {:?} to {rotation:?} while frames are held: flush first",
                self.rotation
            )));
        }
        self.rotation = rotation;
        Ok(())
    }

    /// Whether frames are also searched turned a quarter, a half and three quarters, for faces on their side or
    /// upside down ([`DetectSettings::turned`](crate::DetectSettings::turned)). Set it before a stream's first
    /// frame, or [`flush`](Self::flush) first: changing the search while frames are held is an error.
    pub fn set_turned(&mut self, turned: bool) -> Result<()> {
        if self.core.is_some() && turned != self.options.detect.turned {
            return Err(Error::Config("the turned search changes while frames are held: flush first".into()));
        }
        self.options.detect.turned = turned;
        Ok(())
    }

    /// The stream's frame rate (GStreamer's caps `framerate`, a camera's setting): a fast camera's bridging
    /// window and tile period are stretched to the same time as at 25 fps ([`Options::schedule`]), so a frame
    /// at 50 fps costs about half as much. Unknown (the default), the stream is taken for 25 fps, which never
    /// searches less often. Set it before a stream's first frame, or [`flush`](Self::flush) first: changing the
    /// schedule while frames are held is an error.
    pub fn set_frame_rate(&mut self, rate: Option<FrameRate>) -> Result<()> {
        if self.core.is_some() && self.options.schedule(rate) != self.options.schedule(self.rate) {
            return Err(Error::Config(format!(
                "the frame rate changes from {} to {} while frames are held: flush first",
                self.rate.map_or("unknown".into(), |r| r.to_string()),
                rate.map_or("unknown".into(), |r| r.to_string())
            )));
        }
        self.rate = rate;
        Ok(())
    }

    /// The schedule frames are searched and bridged on, at the frame rate set.
    pub fn schedule(&self) -> Schedule {
        self.options.schedule(self.rate)
    }

    /// Frames a pushed frame is held back for: the look-ahead, and the newest frame (whose tiles are searched
    /// at [`flush`](Self::flush) if their turn never comes).
    pub fn delay_frames(&self) -> usize {
        self.schedule().bridge_frames as usize + 1 + usize::from(self.fields_seen)
    }

    pub fn stats(&self) -> FrameStats {
        let current = self.core.as_ref().map(|(.., c)| c.stats()).unwrap_or_default();
        add_stats(self.done, current)
    }

    /// Analyses `frame` and queues it. Every frame of a stream must have the same layout and size, and
    /// timestamps must increase. On a detector failure the frame is dropped and the error returned (or,
    /// with `OnDetectorError::RedactFrame`, it is queued to be released flat grey).
    pub fn push(&mut self, frame: Frame) -> Result<()> {
        let format = (frame.layout, frame.width, frame.height);
        if let Some((l, w, h, _)) = &self.core {
            if (*l, *w, *h) != format {
                return Err(Error::Config(format!(
                    "frame format changed from {:?} to {format:?} mid-stream",
                    (l, w, h)
                )));
            }
        }
        if let Some(last) = self.last_pts.filter(|&l| frame.pts <= l) {
            return Err(Error::Config(format!("frame timestamps must increase: {} after {last}", frame.pts)));
        }
        if self.core.is_none() {
            self.options.check_window(self.rate, frame.width, frame.height, frame.data.len() as u64, 0, false)?;
        }
        let rgb = crate::detect::rotate_upright(frame.to_rgb()?, self.rotation);
        let (options, rate, rotation) = (&self.options, self.rate, self.rotation);
        let (.., core) = self.core.get_or_insert_with(|| {
            (frame.layout, frame.width, frame.height, Core::new(options, rate, frame.width, frame.height, rotation))
        });
        let pts = frame.pts;
        let released = core.push_owned(&mut self.detector, rgb, Effort::Full, (0, self.scan), frame)?;
        self.last_pts = Some(pts);
        if let Some((frame, verdict)) = released {
            self.release(frame, &verdict)?;
        }
        Ok(())
    }

    /// The next redacted frame, in push order, if its look-ahead is complete.
    pub fn pull(&mut self) -> Option<Frame> {
        self.ready.pop_front()
    }

    /// The frame [`pull`](Self::pull) would return next, left in place.
    pub fn peek(&self) -> Option<&Frame> {
        self.ready.front()
    }

    /// End of stream: every frame still held is redacted and made ready to pull. The redactor can then
    /// take a new stream (timestamps continue to have to increase).
    pub fn flush(&mut self) -> Result<()> {
        let Some((.., mut core)) = self.core.take() else { return Ok(()) };
        for (frame, verdict) in core.finish(&mut self.detector) {
            self.release(frame, &verdict)?;
        }
        self.done = add_stats(self.done, core.stats());
        Ok(())
    }

    /// Drops every frame held or ready without releasing it (a flush or seek: they are never to be shown),
    /// and starts a new stream. Returns how many were dropped.
    pub fn discard(&mut self) -> usize {
        let held = self.core.take().map_or(0, |(.., core)| {
            let stats = core.stats();
            self.done = add_stats(self.done, stats);
            stats.frames.saturating_sub(stats.frames_released)
        });
        let ready = self.ready.len();
        self.ready.clear();
        held as usize + ready
    }

    fn release(&mut self, mut frame: Frame, verdict: &Verdict) -> Result<()> {
        if verdict.changes_pixels() {
            for (range, layout) in frame.layout.channels(frame.width, frame.height) {
                verdict.apply(&mut frame.data[range], &layout, &self.options.redact)?;
            }
        }
        self.ready.push_back(frame);
        Ok(())
    }
}

/// Counts of two streams together.
fn add_stats(a: FrameStats, b: FrameStats) -> FrameStats {
    FrameStats {
        frames: a.frames + b.frames,
        frames_released: a.frames_released + b.frames_released,
        frames_with_faces: a.frames_with_faces + b.frames_with_faces,
        detections: a.detections + b.detections,
        max_faces_in_frame: a.max_faces_in_frame.max(b.max_faces_in_frame),
        frames_redacted: a.frames_redacted + b.frames_redacted,
        frames_blanked: a.frames_blanked + b.frames_blanked,
        frames_degraded: a.frames_degraded + b.frames_degraded,
        frames_by_effort: std::array::from_fn(|k| a.frames_by_effort[k] + b.frames_by_effort[k]),
        frames_covered: a.frames_covered + b.frames_covered,
        tracks: a.tracks + b.tracks,
        frames_camera_moved: a.frames_camera_moved + b.frames_camera_moved,
        passes_run: a.passes_run + b.passes_run,
        passes_reused: a.passes_reused + b.passes_reused,
        passes_focus: a.passes_focus + b.passes_focus,
        pixels: a.pixels.sum(b.pixels),
        masked_area: a.masked_area + b.masked_area,
    }
}

pub use crate::detect::fields::Scan;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Detection, ScriptedDetector};
    use crate::geom::BBox;
    use crate::OnDetectorError;

    fn textured(layout: PixelLayout, w: u32, h: u32, pts: i64) -> Frame {
        // A moving camera: every frame differs, so every frame is searched (unchanged pictures reuse results).
        let shift = (pts as u8).wrapping_mul(40);
        let data = (0..layout.frame_len(w, h)).map(|i| (((i * 7919) % 251) as u8).wrapping_add(shift)).collect();
        Frame::new(layout, w, h, pts, data).unwrap()
    }

    fn face() -> Detection {
        Detection { bbox: BBox::new(40.0, 30.0, 80.0, 80.0), score: 0.9 }
    }

    fn no_tiles() -> Options {
        let mut o = Options::default();
        o.detect.tile_scale = 0.0;
        o
    }

    #[test]
    fn the_review_only_outline_style_is_refused_issue_15() {
        let mut o = no_tiles();
        o.redact.style = crate::redact::Style::Outline;
        let e = FrameRedactor::new(ScriptedDetector::new([]), o).unwrap_err().to_string();
        assert!(e.contains("must be redacted"), "{e}");
    }

    #[test]
    fn discard_drops_held_frames_unreleased_and_starts_a_new_stream() {
        let mut r = FrameRedactor::new(ScriptedDetector::new([]), no_tiles()).unwrap();
        for i in 0..4 {
            r.push(textured(PixelLayout::Rgba, 64, 48, i)).unwrap();
        }
        let waiting = r.stats().frames - r.stats().frames_released;
        assert_eq!(r.discard() as u64, waiting + r.ready.len() as u64);
        assert!(r.pull().is_none());
        r.flush().unwrap();
        assert!(r.pull().is_none(), "a discarded frame came back");
        // A new stream, of another size, goes on.
        r.push(textured(PixelLayout::Bgra, 32, 32, 10)).unwrap();
        r.flush().unwrap();
        assert_eq!(r.pull().map(|f| f.pts), Some(10));
    }

    #[test]
    fn the_frame_rate_sets_the_look_ahead_and_cannot_change_it_while_frames_are_held() {
        let mut r = FrameRedactor::new(ScriptedDetector::new([]), no_tiles()).unwrap();
        assert_eq!(r.delay_frames(), 6, "unknown: the 25 fps schedule");
        r.set_frame_rate(FrameRate::new(50, 1)).unwrap();
        assert_eq!(r.delay_frames(), 12);
        for pts in 0..12 {
            r.push(textured(PixelLayout::Rgb24, 64, 48, pts)).unwrap();
        }
        assert!(r.pull().is_none(), "12 frames held at 50 fps");
        let e = r.set_frame_rate(FrameRate::new(25, 1)).unwrap_err().to_string();
        assert!(e.contains("from 50 to 25 while frames are held"), "{e}");
        r.set_frame_rate(FrameRate::new(60, 1)).unwrap();
        r.push(textured(PixelLayout::Rgb24, 64, 48, 12)).unwrap();
        assert_eq!(r.pull().map(|f| f.pts), Some(0));
        r.flush().unwrap();
        r.set_frame_rate(FrameRate::new(25, 1)).unwrap();
        assert_eq!(r.delay_frames(), 6);
    }

    #[test]
    fn a_rotation_flag_searches_the_upright_picture_and_masks_the_stored_pixels() {
        // Stored 480×640, shown turned 90° clockwise: the detector sees 640×480 and finds the face there.
        let det = ScriptedDetector::new([vec![face()]]);
        let mut r = FrameRedactor::new(det, no_tiles()).unwrap();
        r.set_rotation(Rotation::Cw90).unwrap();
        let orig = textured(PixelLayout::Rgb24, 480, 640, 0);
        r.push(orig.clone()).unwrap();
        assert!(r.set_rotation(Rotation::None).is_err(), "changed while a frame is held");
        r.flush().unwrap();
        let red = r.pull().unwrap();
        let stored = Rotation::Cw90.box_to_stored(&face().bbox, 480, 640);
        let (cx, cy) = (((stored.x0 + stored.x1) / 2.0) as u32, ((stored.y0 + stored.y1) / 2.0) as u32);
        let (o, d) = (orig.to_rgb().unwrap(), red.to_rgb().unwrap());
        assert_ne!(o.get_pixel(cx, cy), d.get_pixel(cx, cy), "the face's stored pixels were kept");
        // Where the upright box would be if the flag were ignored, nothing changed.
        assert_eq!(o.get_pixel(45, 35), d.get_pixel(45, 35));
        assert!(r.set_rotation(Rotation::None).is_ok(), "after a flush the rotation may change");
    }

    #[test]
    fn the_fourth_byte_of_packed_layouts_is_left_as_it_is() {
        let det = ScriptedDetector::new([vec![face()]]);
        let mut r = FrameRedactor::new(det, no_tiles()).unwrap();
        let orig = textured(PixelLayout::Bgra, 640, 480, 0);
        r.push(orig.clone()).unwrap();
        r.flush().unwrap();
        let red = r.pull().unwrap();
        let alpha = |f: &Frame| f.data.iter().skip(3).step_by(4).copied().collect::<Vec<u8>>();
        assert_eq!(alpha(&orig), alpha(&red));
        assert_ne!(orig.data, red.data);
    }

    #[test]
    fn frames_come_back_in_order_after_the_look_ahead_and_flush() {
        // Interlaced frames wait one frame more (their second field needs the next frame's faces).
        for (scan, delay) in [(Scan::Progressive, 6), (Scan::Interlaced { top_first: true }, 7)] {
            let mut r = FrameRedactor::new(ScriptedDetector::new([]), no_tiles()).unwrap();
            r.set_scan(scan);
            assert_eq!(r.delay_frames(), delay, "{scan:?}");
            let mut out = Vec::new();
            for i in 0..8 {
                r.push(textured(PixelLayout::Nv12, 160, 120, 100 + 40 * i)).unwrap();
                // Latency bound: frame i is out once frame i + delay is in, never later.
                while let Some(f) = r.pull() {
                    out.push(f.pts);
                }
                assert_eq!(out.len() as i64, (i + 1 - r.delay_frames() as i64).max(0), "{scan:?}, after push {i}");
            }
            r.flush().unwrap();
            while let Some(f) = r.pull() {
                out.push(f.pts);
            }
            assert_eq!(out, (0..8).map(|i| 100 + 40 * i).collect::<Vec<_>>());
            assert_eq!(r.stats().frames_released, 8);
        }
    }

    #[test]
    fn every_layout_is_redacted_inside_the_face_only_and_misses_are_bridged() {
        for layout in [
            PixelLayout::Rgb24,
            PixelLayout::Bgr24,
            PixelLayout::Rgba,
            PixelLayout::Bgra,
            PixelLayout::I420,
            PixelLayout::Nv12,
        ] {
            // The detector finds the face in frames 0 and 2 but misses frame 1.
            let det = ScriptedDetector::new([vec![face()], vec![], vec![face()]]);
            let mut r = FrameRedactor::new(det, no_tiles()).unwrap();
            // 640×480 reaches the detector unscaled, so the scripted boxes are frame pixels.
            let originals: Vec<Frame> = (0..3).map(|i| textured(layout, 640, 480, i)).collect();
            for f in &originals {
                r.push(f.clone()).unwrap();
            }
            r.flush().unwrap();
            for orig in &originals {
                let red = r.pull().unwrap();
                let rgb_o = orig.to_rgb().unwrap();
                let rgb_r = red.to_rgb().unwrap();
                assert_ne!(rgb_o.get_pixel(60, 55), rgb_r.get_pixel(60, 55), "{layout:?} pts {} face kept", orig.pts);
                assert_eq!(rgb_o.get_pixel(600, 400), rgb_r.get_pixel(600, 400), "{layout:?} background changed");
                assert_eq!(orig.data[..160], red.data[..160], "{layout:?} first row changed");
            }
            assert_eq!(r.stats().frames_redacted, 3);
        }
    }

    #[test]
    fn detector_failure_drops_the_frame_or_blanks_it() {
        let det = ScriptedDetector::new([]).fail_at(1);
        let mut r = FrameRedactor::new(det, no_tiles()).unwrap();
        r.push(textured(PixelLayout::I420, 64, 48, 0)).unwrap();
        assert!(r.push(textured(PixelLayout::I420, 64, 48, 1)).is_err());
        r.push(textured(PixelLayout::I420, 64, 48, 2)).unwrap();
        r.flush().unwrap();
        let pts: Vec<i64> = std::iter::from_fn(|| r.pull()).map(|f| f.pts).collect();
        assert_eq!(pts, vec![0, 2], "the failed frame must not come out");

        let det = ScriptedDetector::new([]).fail_at(1);
        let options = Options { on_detector_error: OnDetectorError::RedactFrame, ..no_tiles() };
        let mut r = FrameRedactor::new(det, options).unwrap();
        for i in 0..3 {
            r.push(textured(PixelLayout::Rgb24, 64, 48, i)).unwrap();
        }
        r.flush().unwrap();
        let frames: Vec<Frame> = std::iter::from_fn(|| r.pull()).collect();
        assert!(frames[1].data.iter().all(|&b| b == 128));
        assert_eq!(r.stats().frames_blanked, 1);
    }

    #[test]
    fn bad_frames_are_refused() {
        assert!(Frame::new(PixelLayout::I420, 64, 48, 0, vec![0; 10]).is_err());
        let mut r = FrameRedactor::new(ScriptedDetector::new([]), no_tiles()).unwrap();
        r.push(textured(PixelLayout::I420, 64, 48, 5)).unwrap();
        assert!(r.push(textured(PixelLayout::I420, 64, 48, 5)).is_err(), "timestamp not increasing");
        assert!(r.push(textured(PixelLayout::Nv12, 64, 48, 6)).is_err(), "layout changed");
        assert!(r.push(textured(PixelLayout::I420, 66, 48, 6)).is_err(), "size changed");
    }

    #[test]
    fn yuv_conversion_matches_bt601() {
        assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
        let [r, g, b] = yuv_to_rgb(81, 90, 240);
        assert!(r > 250 && g < 5 && b < 5, "BT.601 red: {r} {g} {b}");
    }
}
