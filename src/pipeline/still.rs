//! One still image through the shared per-frame core: every detection pass at once, no bridging.

use super::EditSource;
use crate::analyse::{Core, Effort, Stats};
use crate::config::Options;
use crate::detect::Detector;
use crate::edits::Edits;
use crate::io::still;
use crate::redact::ChannelLayout;
use crate::{Error, Result};
use image::{DynamicImage, ImageFormat};
use std::path::Path;

pub(crate) struct StillOutcome {
    pub(crate) stats: Stats,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) warnings: Vec<String>,
    /// The redacted picture as written (for the review sheet).
    pub(crate) redacted: DynamicImage,
    pub(crate) edits: Option<Edits>,
}

pub(crate) fn redact_still(
    input: &Path,
    in_format: ImageFormat,
    tmp: &Path,
    out_format: ImageFormat,
    options: &Options,
    detector: &mut dyn Detector,
    edits: Option<(&EditSource, bool)>,
) -> Result<StillOutcome> {
    let (img, mut warnings) = still::read(input, in_format)?;
    let (w, h) = (img.width(), img.height());
    let mut core = Core::still(options, w, h);
    if let Some((source, allow_keep)) = edits {
        let parsed = source.parse(w, h, allow_keep)?;
        if parsed.needs_follow() {
            return Err(Error::Edits { path: source.path.clone(), reason: "\"follow\" needs a video".into() });
        }
        core.set_edits(parsed);
    }
    let mut rgb = img.to_rgb8();
    let frame_err = |e: Error| Error::Frame { path: input.to_path_buf(), frame: 0, source: Box::new(e) };
    let pushed = core.push(detector, &rgb, Effort::Full, ()).map_err(frame_err)?;
    let Some((_, verdict)) = pushed.or_else(|| core.finish(detector).pop()) else {
        return Err(Error::Internal("a still image was not released by the core".into()));
    };
    if let (Some(e), Some((source, _))) = (core.edits(), edits) {
        e.check_reached(1, &source.path)?;
    }
    if verdict.blank {
        let why = core.last_error().unwrap_or("unknown error");
        warnings.push(format!("detector failed ({why}); the whole image was blanked"));
    }
    let keep_alpha = img.color().has_alpha() && out_format != ImageFormat::Jpeg;
    let out = if keep_alpha {
        let mut rgba = img.to_rgba8();
        let base = ChannelLayout { step: 4, ..ChannelLayout::planar(w, h, w as usize * 4, 0, 0, true) };
        for c in 0..3 {
            verdict.apply(&mut rgba, &ChannelLayout { offset: c, ..base }, &options.redact)?;
        }
        DynamicImage::ImageRgba8(rgba)
    } else {
        for layout in &ChannelLayout::packed_rgb(w, h) {
            verdict.apply(&mut rgb, layout, &options.redact)?;
        }
        DynamicImage::ImageRgb8(rgb)
    };
    still::write(&out, tmp, out_format)?;
    Ok(StillOutcome { stats: core.stats(), width: w, height: h, warnings, redacted: out, edits: core.edits().cloned() })
}
