//! Everything that touches FFmpeg: opening inputs (files, URLs, devices) and decoding ([`input`]), the
//! output plan, encoder and sinks ([`output`], [`segments`]), and pixel access to decoded frames
//! ([`picture`]). No per-frame policy lives here: the pipeline decides, this module moves bytes.

pub(crate) mod clock;
pub(crate) mod input;
pub(crate) mod output;
pub(crate) mod picture;
pub(crate) mod segments;

use crate::geom::Rotation;
use crate::{Error, Result};
use ffmpeg_next as ff;
use std::sync::Once;

pub(crate) fn init() -> Result<()> {
    static INIT: Once = Once::new();
    let mut result = Ok(());
    INIT.call_once(|| {
        result = ff::init().map_err(|e| Error::Config(format!("FFmpeg initialisation failed: {e}")));
    });
    result
}

/// Silences FFmpeg's own log lines (process-wide: FFmpeg has one log level). faceveil reports what matters in
/// its errors, warnings and reports; the CLI calls this, a library user decides for their process.
pub fn quiet_ffmpeg_log() {
    ff::util::log::set_level(ff::util::log::Level::Fatal);
}

/// Clockwise display rotation from a display matrix (nine little-endian i32).
fn rotation_of(matrix: &[u8]) -> Rotation {
    if matrix.len() < 36 {
        return Rotation::None;
    }
    let mut m = [0i32; 9];
    for (i, v) in m.iter_mut().enumerate() {
        *v = i32::from_ne_bytes([matrix[4 * i], matrix[4 * i + 1], matrix[4 * i + 2], matrix[4 * i + 3]]);
    }
    // SAFETY: `m` holds the nine values av_display_rotation_get reads.
    let ccw = unsafe { ff::ffi::av_display_rotation_get(m.as_ptr()) };
    Rotation::from_degrees(-ccw)
}
