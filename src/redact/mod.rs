//! Destroying faces: masks (ellipse or box) and styles (blur, pixelate, fill) whose strength is relative to
//! the face size, so a large face is as thoroughly destroyed as a small one.
//!
//! Work is done per channel on any 8-bit layout: packed RGB (three interleaved channels) or planar YUV with
//! subsampled chroma, so video frames are redacted in their decoded pixel format.

mod style;

pub use style::{blur_radius, pixel_cell};

use crate::geom::BBox;
use crate::{Error, Result};
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// How a face region is destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// Heavy blur: three box passes with radius ≥ 1/5 of the face (sigma ≈ face size / 5), then flattened to
    /// 10 % of its remaining shading, so not even the coarse light and shadow of the head is left.
    #[default]
    Blur,
    /// Mosaic of about five cells across the mask.
    Pixelate,
    /// Solid fill with the region's mean colour.
    Fill,
    /// Review only: a bright outline around each face, which stays visible. Never for release; reports
    /// mark such outputs `not_for_release`.
    Outline,
}

/// Shape of the redacted region inside the (enlarged) face box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    #[default]
    Ellipse,
    Box,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedactSettings {
    pub style: Style,
    pub shape: Shape,
    /// Each face box is enlarged by this factor (width and height) before masking.
    pub mask_scale: f32,
}

impl Default for RedactSettings {
    fn default() -> Self {
        Self { style: Style::Blur, shape: Shape::Ellipse, mask_scale: 1.3 }
    }
}

impl RedactSettings {
    pub fn validate(&self) -> Result<()> {
        if !(self.mask_scale >= 1.0 && self.mask_scale <= 4.0) {
            return Err(Error::Config(format!("invalid mask scale {} (expected >= 1, <= 4)", self.mask_scale)));
        }
        Ok(())
    }

    /// Refuses the review-only [`Style::Outline`] for an output that is stored or passed on as redacted (live
    /// recordings, the frame API, the C ABI): a recorder must never be able to keep unredacted footage by a
    /// setting. `what` names that output in the message.
    pub fn require_redaction(&self, what: &str) -> Result<()> {
        if self.style == Style::Outline {
            return Err(Error::Config(format!(
                "{what} must be redacted: the outline (overlay) style leaves faces visible and is only for review \
                 copies of files (`faceveil redact --overlay`)"
            )));
        }
        Ok(())
    }

    /// The region actually redacted for a detected face box.
    pub fn mask_box(&self, face: &BBox) -> BBox {
        face.scaled(self.mask_scale)
    }
}

/// Where one 8-bit channel lives in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelLayout {
    /// Samples per row and rows of this channel.
    pub width: u32,
    pub height: u32,
    /// Bytes from one row to the next (decoded planes are often padded).
    pub stride: usize,
    /// Bytes from one sample to the next in a row (1 planar, 3 packed RGB).
    pub step: usize,
    /// Byte offset of the first sample (the channel index in packed layouts).
    pub offset: usize,
    /// log2 of horizontal / vertical subsampling relative to frame pixels (1 for 4:2:0 chroma).
    pub shift_x: u8,
    pub shift_y: u8,
    /// The channel carries brightness (luma, or one of R, G, B): it gets an outline's bright value. Chroma
    /// planes do not.
    pub intensity: bool,
}

impl ChannelLayout {
    /// The three channels of a tightly packed RGB image.
    pub fn packed_rgb(width: u32, height: u32) -> [ChannelLayout; 3] {
        let base = ChannelLayout {
            width,
            height,
            stride: width as usize * 3,
            step: 3,
            offset: 0,
            shift_x: 0,
            shift_y: 0,
            intensity: true,
        };
        [base, ChannelLayout { offset: 1, ..base }, ChannelLayout { offset: 2, ..base }]
    }

    /// One plane of a planar image; `intensity` for the luma plane, not for chroma.
    pub fn planar(width: u32, height: u32, stride: usize, shift_x: u8, shift_y: u8, intensity: bool) -> ChannelLayout {
        ChannelLayout { width, height, stride, step: 1, offset: 0, shift_x, shift_y, intensity }
    }

    /// Checks that every sample lies inside a buffer of `len` bytes.
    pub fn check(&self, len: usize) -> Result<()> {
        if self.width == 0 || self.height == 0 {
            return Ok(());
        }
        let last = self.offset + (self.height as usize - 1) * self.stride + (self.width as usize - 1) * self.step;
        if last >= len {
            return Err(Error::Config(format!("channel layout {self:?} does not fit a buffer of {len} bytes")));
        }
        Ok(())
    }

    #[inline]
    fn index(&self, x: u32, y: u32) -> usize {
        self.offset + y as usize * self.stride + x as usize * self.step
    }
}

/// Redacts every face in `faces` (boxes as detected, in frame pixels) in one channel.
pub fn redact_channel(buf: &mut [u8], layout: &ChannelLayout, faces: &[BBox], settings: &RedactSettings) -> Result<()> {
    layout.check(buf.len())?;
    for face in faces.iter().filter(|f| f.is_valid()) {
        let mask = settings.mask_box(face);
        // Strength follows the face's size in frame pixels.
        apply_in_channel(buf, layout, &mask, mask.width().max(mask.height()), settings)?;
    }
    Ok(())
}

/// Redacts whole regions of one channel (`regions` in frame pixels, box masks as given, not enlarged) with the
/// strength a face of `face_size` frame pixels gets: for regions that may hold faces up to that size anywhere.
/// A blur style covers them with a mosaic instead: it destroys as much, costs a fraction of a blur over large
/// areas (cover can be most of a frame), and shows that the region was covered, not a face found.
pub fn cover_channel(
    buf: &mut [u8],
    layout: &ChannelLayout,
    regions: &[BBox],
    settings: &RedactSettings,
    face_size: f32,
) -> Result<()> {
    layout.check(buf.len())?;
    let style = if settings.style == Style::Blur { Style::Pixelate } else { settings.style };
    let boxed = RedactSettings { style, shape: Shape::Box, mask_scale: 1.0 };
    for r in regions.iter().filter(|r| r.is_valid()) {
        apply_in_channel(buf, layout, r, face_size, &boxed)?;
    }
    Ok(())
}

/// One mask redacted in one channel with the strength of a `size`-pixel face (both in frame pixels, turned
/// into this channel's samples here).
fn apply_in_channel(
    buf: &mut [u8],
    layout: &ChannelLayout,
    mask: &BBox,
    size: f32,
    settings: &RedactSettings,
) -> Result<()> {
    let (fx, fy) = ((1u32 << layout.shift_x) as f32, (1u32 << layout.shift_y) as f32);
    let plane_box = BBox::new(mask.x0 / fx, mask.y0 / fy, mask.x1 / fx, mask.y1 / fy);
    style::apply(buf, layout, &plane_box, size / fx.max(fy), settings)
}

/// Sets every sample of one channel to `value` (a blanked frame).
pub fn fill_channel(buf: &mut [u8], layout: &ChannelLayout, value: u8) -> Result<()> {
    layout.check(buf.len())?;
    for y in 0..layout.height {
        for x in 0..layout.width {
            buf[layout.index(x, y)] = value;
        }
    }
    Ok(())
}

/// Share of a `width × height` frame covered by the masks of `faces` (overlaps counted once per box, so
/// an upper bound when masks overlap; capped at 1).
pub fn mask_area_fraction(faces: &[BBox], settings: &RedactSettings, width: u32, height: u32) -> f64 {
    let frame = width as f64 * height as f64;
    if frame <= 0.0 {
        return 0.0;
    }
    let shape = if settings.shape == Shape::Ellipse { std::f64::consts::FRAC_PI_4 } else { 1.0 };
    let sum: f64 = faces
        .iter()
        .filter(|b| b.is_valid())
        .map(|b| settings.mask_box(b).clamped(width, height).area() as f64 * shape)
        .sum();
    (sum / frame).min(1.0)
}

/// Redacts faces in a packed RGB image.
pub fn redact_rgb(image: &mut RgbImage, faces: &[BBox], settings: &RedactSettings) -> Result<()> {
    let layouts = ChannelLayout::packed_rgb(image.width(), image.height());
    let buf: &mut [u8] = image;
    for layout in &layouts {
        redact_channel(buf, layout, faces, settings)?;
    }
    Ok(())
}

/// The pixels `x0..x1` of row `y` that lie in the mask for `b` ([`in_mask`]), as a range (empty: `x0 == x1`).
/// They are one run: each test is monotone in the pixel's distance from the mask's centre line (floating-point
/// subtraction, division and squaring of a non-negative value never reverse an order), so the run is found
/// from both ends and the pixels inside it are not tested.
pub(crate) fn mask_span(shape: Shape, b: &BBox, y: u32, x0: u32, x1: u32) -> (u32, u32) {
    let Some(start) = (x0..x1).find(|&x| in_mask(shape, b, x, y)) else {
        return (x0, x0);
    };
    let end = (start..x1).rev().find(|&x| in_mask(shape, b, x, y)).map_or(start, |x| x + 1);
    (start, end)
}

/// True when pixel `(x, y)` (its centre) lies in the mask for `b` (in the same coordinates).
#[inline]
pub(crate) fn in_mask(shape: Shape, b: &BBox, x: u32, y: u32) -> bool {
    let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
    match shape {
        Shape::Box => px >= b.x0 && px < b.x1 && py >= b.y0 && py < b.y1,
        Shape::Ellipse => {
            let (cx, cy) = b.center();
            let (rx, ry) = (b.width() * 0.5, b.height() * 0.5);
            if rx <= 0.0 || ry <= 0.0 {
                return false;
            }
            let (dx, dy) = ((px - cx) / rx, (py - cy) / ry);
            dx * dx + dy * dy <= 1.0
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
