//! Pixel access to decoded frames: the upright RGB copy the detector (or a thumbnail) gets, and the frame's
//! own planes, where redaction happens (in the stored picture, never in a copy).

use crate::detect::rotate_upright;
use crate::geom::Rotation;
use crate::redact::ChannelLayout;
use crate::{Error, Result};
use ff::format::Pixel;
use ff::{frame, software};
use ffmpeg_next as ff;
use image::RgbImage;

/// Converts decoded frames of one stream to upright RGB at `(width, height)` of the stored picture scaled by
/// the caller's choice (full resolution for the detector, thumbnail size for review sheets). The scaler and
/// its output picture are reused from frame to frame (a fresh full-size RGB picture per frame costs its page
/// faults every time).
pub(crate) struct UprightRgb {
    rotation: Rotation,
    /// Output size in stored orientation, or `None` for the frame's own size.
    size: Option<(u32, u32)>,
    scaler: Option<(software::scaling::Context, Pixel, u32, u32)>,
    rgb: frame::Video,
}

impl UprightRgb {
    /// Full resolution.
    pub(crate) fn new(rotation: Rotation) -> Self {
        Self { rotation, size: None, scaler: None, rgb: frame::Video::empty() }
    }

    /// Scaled to `width × height` (stored orientation) before turning upright.
    pub(crate) fn scaled(rotation: Rotation, width: u32, height: u32) -> Self {
        Self { size: Some((width, height)), ..Self::new(rotation) }
    }

    pub(crate) fn convert(&mut self, frame: &frame::Video) -> Result<RgbImage> {
        let (w, h) = (frame.width(), frame.height());
        let (sw, sh) = self.size.unwrap_or((w, h));
        let key = (frame.format(), w, h);
        if self.scaler.as_ref().map(|(_, f, a, b)| (*f, *a, *b)) != Some(key) {
            let ctx = software::scaling::Context::get(
                frame.format(),
                w,
                h,
                Pixel::RGB24,
                sw,
                sh,
                software::scaling::Flags::AREA,
            )
            .map_err(|e| Error::Internal(format!("scaler: {e}")))?;
            self.scaler = Some((ctx, key.0, key.1, key.2));
            self.rgb = frame::Video::empty();
        }
        if let Some((ctx, ..)) = self.scaler.as_mut() {
            ctx.run(frame, &mut self.rgb).map_err(|e| Error::Internal(format!("scaler: {e}")))?;
        }
        Ok(rotate_upright(packed_rgb(&self.rgb)?, self.rotation))
    }
}

/// Copies an RGB24 frame (rows padded to its stride) into a tightly packed image.
fn packed_rgb(f: &frame::Video) -> Result<RgbImage> {
    let (w, h) = (f.width() as usize, f.height() as usize);
    let stride = f.stride(0);
    let data = f.data(0);
    // A picture that does not fit its buffer is an error, never a black picture ("no face here").
    let unfit = || Error::Internal(format!("{w}x{h} RGB picture does not fit its buffer ({} bytes)", data.len()));
    if h > 0 && (stride < w * 3 || data.len() < (h - 1) * stride + w * 3) {
        return Err(unfit());
    }
    let mut buf = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        buf.extend_from_slice(&data[y * stride..y * stride + w * 3]);
    }
    RgbImage::from_raw(w as u32, h as u32, buf).ok_or_else(unfit)
}

/// Calls `f` with each of the (up to three) planes of a decoded planar YUV frame and where its samples are,
/// after making the frame writable: the decoder's reference pictures are never changed.
pub(crate) fn for_each_plane(
    frame: &mut frame::Video,
    mut f: impl FnMut(&mut [u8], &ChannelLayout) -> Result<()>,
) -> Result<()> {
    // SAFETY: the frame is valid; make_writable copies its buffers if the decoder still references them.
    let rc = unsafe { ff::ffi::av_frame_make_writable(frame.as_mut_ptr()) };
    if rc < 0 {
        return Err(Error::Internal(format!("cannot make frame writable: {}", ff::Error::from(rc))));
    }
    let (sx, sy) = frame.format().descriptor().map(|d| (d.log2_chroma_w(), d.log2_chroma_h())).unwrap_or((1, 1));
    for plane in 0..frame.planes().min(3) {
        let (shx, shy) = if plane == 0 { (0, 0) } else { (sx, sy) };
        let layout = ChannelLayout::planar(
            frame.plane_width(plane),
            frame.plane_height(plane),
            frame.stride(plane),
            shx,
            shy,
            plane == 0,
        );
        f(frame.data_mut(plane), &layout)?;
    }
    Ok(())
}
