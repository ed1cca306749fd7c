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
/// the caller's choice (full resolution for the detector, thumbnail size for review sheets). The scaler is
/// reused from frame to frame and writes straight into the picture returned (no intermediate RGB frame: one
/// full-size picture and one copy a frame less).
pub(crate) struct UprightRgb {
    rotation: Rotation,
    /// Output size in stored orientation, or `None` for the frame's own size.
    size: Option<(u32, u32)>,
    scaler: FrameScaler,
}

/// A scaler kept from frame to frame and made again only when a frame's format or size differs from the one
/// it was made for (a stream's picture size may change mid-stream).
#[derive(Default)]
pub(crate) struct FrameScaler(Option<(software::scaling::Context, Pixel, u32, u32)>);

impl FrameScaler {
    /// The scaler from `frame`'s format and size to `out` at `width × height`. The output side must be the same
    /// on every call (it is not part of the key).
    pub(crate) fn for_frame(
        &mut self,
        frame: &frame::Video,
        out: Pixel,
        (width, height): (u32, u32),
        flags: software::scaling::Flags,
    ) -> std::result::Result<&mut software::scaling::Context, ff::Error> {
        let key = (frame.format(), frame.width(), frame.height());
        if !self.0.as_ref().is_some_and(|(_, f, w, h)| (*f, *w, *h) == key) {
            let ctx = software::scaling::Context::get(key.0, key.1, key.2, out, width, height, flags)?;
            self.0 = Some((ctx, key.0, key.1, key.2));
        }
        // The scaler was made just above if it was not there.
        self.0.as_mut().map(|(ctx, ..)| ctx).ok_or(ff::Error::Bug)
    }
}

/// Alignment of the scaler's output rows (bytes), as FFmpeg aligns the rows of its own pictures: its SIMD
/// converters then write whole rows with aligned stores. Also the slack left after the last row.
const ROW_ALIGN: usize = 64;

impl UprightRgb {
    /// Full resolution.
    pub(crate) fn new(rotation: Rotation) -> Self {
        Self { rotation, size: None, scaler: FrameScaler::default() }
    }

    /// Scaled to `width × height` (stored orientation) before turning upright.
    pub(crate) fn scaled(rotation: Rotation, width: u32, height: u32) -> Self {
        Self { size: Some((width, height)), ..Self::new(rotation) }
    }

    /// The frame as an upright, tightly packed RGB picture.
    pub(crate) fn convert(&mut self, frame: &frame::Video) -> Result<RgbImage> {
        self.convert_into(frame, None)
    }

    /// [`convert`](Self::convert), written into `reuse`'s memory (a picture no longer needed) where given.
    pub(crate) fn convert_into(&mut self, frame: &frame::Video, reuse: Option<RgbImage>) -> Result<RgbImage> {
        let (w, h) = (frame.width(), frame.height());
        let (sw, sh) = self.size.unwrap_or((w, h));
        let scaler = self
            .scaler
            .for_frame(frame, Pixel::RGB24, (sw, sh), software::scaling::Flags::AREA)
            .map_err(|e| Error::Internal(format!("scaler: {e}")))?;
        let buf = reuse.map(RgbImage::into_raw).unwrap_or_default();
        Ok(rotate_upright(scale_packed(scaler, frame, sw, sh, buf)?, self.rotation))
    }
}

/// Runs `scaler` (set up for `frame`'s format and size, RGB24 `sw × sh` out) into `buf`'s memory (grown if
/// needed; what it held is not kept) as a packed picture: rows are written [`ROW_ALIGN`]-aligned, then moved
/// together in place where that left gaps.
fn scale_packed(
    scaler: &mut software::scaling::Context,
    frame: &frame::Video,
    sw: u32,
    sh: u32,
    mut buf: Vec<u8>,
) -> Result<RgbImage> {
    let fail = |what: String| Error::Internal(format!("scaler: {what}"));
    let (row, rows) = (sw as usize * 3, sh as usize);
    let stride = row.next_multiple_of(ROW_ALIGN);
    let Ok(stride_c) = i32::try_from(stride) else { return Err(fail(format!("{sw} pixels a row"))) };
    let Ok(src_rows) = i32::try_from(frame.height()) else { return Err(fail("frame height".into())) };
    buf.clear();
    buf.reserve(stride * rows + ROW_ALIGN);
    let dst: [*mut u8; 4] = [buf.as_mut_ptr(), std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut()];
    let dst_stride: [i32; 4] = [stride_c, 0, 0, 0];
    // SAFETY: the scaler was made for this frame's format and size (the caller keys it on them), so it reads
    // the frame's planes within their line sizes; it writes `sh` rows of `sw` RGB24 pixels at `stride` bytes
    // apart into `buf`, whose capacity holds them and ROW_ALIGN bytes more. No byte is read from `buf` here.
    let written = unsafe {
        ff::ffi::sws_scale(
            scaler.as_mut_ptr(),
            (*frame.as_ptr()).data.as_ptr() as *const *const u8,
            (*frame.as_ptr()).linesize.as_ptr(),
            0,
            src_rows,
            dst.as_ptr(),
            dst_stride.as_ptr(),
        )
    };
    if usize::try_from(written).ok() != Some(rows) {
        return Err(fail(format!("{written} of {rows} rows converted")));
    }
    if stride != row {
        for y in 1..rows {
            // SAFETY: both ranges lie in the `stride × rows` bytes the scaler wrote (row y's `row` bytes from
            // `y × stride`, moved to `y × row`, below it: never past a row not yet moved); `copy` allows overlap.
            unsafe { std::ptr::copy(buf.as_ptr().add(y * stride), buf.as_mut_ptr().add(y * row), row) };
        }
    }
    // SAFETY: the first `row × rows` bytes are the packed rows, every one written by the scaler (and moved).
    unsafe { buf.set_len(row * rows) };
    RgbImage::from_raw(sw, sh, buf).ok_or_else(|| fail("picture size".into()))
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

/// `frame` turned clockwise by `turn` as [`rotate_upright`] turns a picture: a new frame of the same planar 8-bit
/// format whose every plane is turned with the picture, with the frame's properties (timestamp, picture type,
/// colour description) and its sample aspect ratio turned too. For an output container that cannot carry a
/// rotation flag: the picture is then stored as it is to be shown. A format subsampled along one axis only
/// (4:2:2) cannot turn a quarter: its chroma would need the other axis subsampled (an error; the caller
/// converts such video to 4:4:4 first).
pub(crate) fn turned_frame(frame: &frame::Video, turn: Rotation) -> Result<frame::Video> {
    let quarter = matches!(turn, Rotation::Cw90 | Rotation::Cw270);
    let (sx, sy) = frame.format().descriptor().map(|d| (d.log2_chroma_w(), d.log2_chroma_h())).unwrap_or((0, 0));
    if quarter && sx != sy {
        return Err(Error::Internal(format!("a {:?} picture cannot be turned a quarter", frame.format())));
    }
    let (w, h) = turn.upright_size(frame.width(), frame.height());
    let mut out = frame::Video::new(frame.format(), w, h);
    // SAFETY: both frames are valid; only properties are copied, not data.
    if unsafe { ff::ffi::av_frame_copy_props(out.as_mut_ptr(), frame.as_ptr()) } < 0 {
        return Err(Error::Internal("copying a turned frame's properties".into()));
    }
    if quarter {
        let sar = frame.aspect_ratio();
        if sar.numerator() > 0 && sar.denominator() > 0 {
            // SAFETY: the frame is valid; a plain field is written.
            unsafe {
                (*out.as_mut_ptr()).sample_aspect_ratio = ff::Rational(sar.denominator(), sar.numerator()).into()
            };
        }
    }
    for plane in 0..frame.planes() {
        let (pw, ph) = (frame.plane_width(plane) as usize, frame.plane_height(plane) as usize);
        let (ow, oh) = turn.upright_size(pw as u32, ph as u32);
        if (out.plane_width(plane), out.plane_height(plane)) != (ow, oh) {
            return Err(Error::Internal(format!(
                "plane {plane} of a {:?} picture turned to the wrong size",
                frame.format()
            )));
        }
        let (from, to) = (frame.stride(plane), out.stride(plane));
        let src = frame.data(plane);
        let dst = out.data_mut(plane);
        for (y, row) in src.chunks(from).take(ph).enumerate() {
            for (x, &v) in row[..pw].iter().enumerate() {
                // Where sample (x, y) of a `pw × ph` plane lands (image::imageops::rotate90/180/270).
                let (u, t) = match turn {
                    Rotation::None => (x, y),
                    Rotation::Cw90 => (ph - 1 - y, x),
                    Rotation::Cw180 => (pw - 1 - x, ph - 1 - y),
                    Rotation::Cw270 => (y, pw - 1 - x),
                };
                dst[t * to + u] = v;
            }
        }
    }
    out.set_pts(frame.pts());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A planar YUV 4:2:0 frame with a different value at every sample.
    fn pattern(w: u32, h: u32) -> frame::Video {
        let mut f = frame::Video::new(Pixel::YUV420P, w, h);
        for plane in 0..3 {
            let stride = f.stride(plane);
            let (pw, ph) = (f.plane_width(plane) as usize, f.plane_height(plane) as usize);
            let data = f.data_mut(plane);
            for y in 0..ph {
                for x in 0..pw {
                    data[y * stride + x] = ((x * 7 + y * 13 + plane * 50) % 256) as u8;
                }
            }
        }
        f
    }

    /// What FFmpeg's own scaler run gives, row by row from its padded RGB frame.
    fn reference(f: &frame::Video) -> Vec<u8> {
        let (w, h) = (f.width(), f.height());
        let mut ctx =
            software::scaling::Context::get(f.format(), w, h, Pixel::RGB24, w, h, software::scaling::Flags::AREA)
                .unwrap();
        let mut out = frame::Video::empty();
        ctx.run(f, &mut out).unwrap();
        let stride = out.stride(0);
        (0..h as usize).flat_map(|y| out.data(0)[y * stride..y * stride + w as usize * 3].to_vec()).collect()
    }

    /// Plane `plane` of `f` as a grey picture.
    fn plane_of(f: &frame::Video, plane: usize) -> image::GrayImage {
        let (w, h, stride) = (f.plane_width(plane), f.plane_height(plane), f.stride(plane));
        image::GrayImage::from_fn(w, h, |x, y| image::Luma([f.data(plane)[y as usize * stride + x as usize]]))
    }

    #[test]
    fn a_turned_frame_turns_every_plane_with_the_picture_and_keeps_its_properties() {
        use image::imageops::{rotate180, rotate270, rotate90};
        for (format, w, h) in [(Pixel::YUV420P, 6, 4), (Pixel::YUV444P, 5, 3), (Pixel::YUVJ420P, 18, 10)] {
            let mut f = frame::Video::new(format, w, h);
            for plane in 0..3 {
                let stride = f.stride(plane);
                let (pw, ph) = (f.plane_width(plane) as usize, f.plane_height(plane) as usize);
                for y in 0..ph {
                    for x in 0..pw {
                        f.data_mut(plane)[y * stride + x] = (x * 31 + y * 7 + plane * 50) as u8;
                    }
                }
            }
            f.set_pts(Some(1234));
            f.set_kind(ff::picture::Type::P);
            // SAFETY: a valid frame; a plain field is written.
            unsafe { (*f.as_mut_ptr()).sample_aspect_ratio = ff::Rational(4, 3).into() };
            for turn in [Rotation::None, Rotation::Cw90, Rotation::Cw180, Rotation::Cw270] {
                let t = turned_frame(&f, turn).unwrap();
                assert_eq!(
                    (t.format(), (t.width(), t.height())),
                    (format, turn.upright_size(w, h)),
                    "{format:?} {turn:?}"
                );
                assert_eq!((t.pts(), t.kind()), (Some(1234), ff::picture::Type::P));
                let quarter = matches!(turn, Rotation::Cw90 | Rotation::Cw270);
                assert_eq!(t.aspect_ratio(), if quarter { ff::Rational(3, 4) } else { ff::Rational(4, 3) });
                for plane in 0..3 {
                    let p = plane_of(&f, plane);
                    let want = match turn {
                        Rotation::None => p,
                        Rotation::Cw90 => rotate90(&p),
                        Rotation::Cw180 => rotate180(&p),
                        Rotation::Cw270 => rotate270(&p),
                    };
                    assert!(plane_of(&t, plane) == want, "{format:?} {turn:?} plane {plane}");
                }
            }
        }
        // 4:2:2 turns a half, not a quarter (its chroma would be subsampled down the picture).
        let f = frame::Video::new(Pixel::YUV422P, 8, 4);
        assert!(turned_frame(&f, Rotation::Cw180).is_ok());
        assert!(turned_frame(&f, Rotation::Cw90).is_err());
    }

    #[test]
    fn frames_of_any_width_convert_to_the_scalers_own_pixels_in_reused_memory() {
        let mut rgb = UprightRgb::new(Rotation::None);
        let mut spare = None;
        // Rows whose bytes fill the aligned stride, rows that leave a gap, and a picture smaller than the last.
        for (w, h) in [(64, 32), (826, 540), (33, 18), (1280, 720), (826, 540)] {
            let f = pattern(w, h);
            let got = rgb.convert_into(&f, spare.take()).unwrap();
            assert_eq!(got.dimensions(), (w, h));
            assert!(got.as_raw() == &reference(&f), "{w}x{h} differs from the scaler's own output");
            spare = Some(got);
        }
    }
}
