//! faceveil removes faces from recorded video and photos before they are stored or released. It detects
//! faces and destroys them (blur, pixelate, fill) **without identifying anyone**: no embeddings, no face
//! crops, tracking by motion and overlap only, no network access.
//!
//! Two levels of use:
//! - [`redact_file`]: a whole file (video through FFmpeg, or a still image), written atomically, with a
//!   [`Report`].
//! - [`frames::FrameRedactor`]: raw frames (RGB, I420, NV12) pushed from your own capture pipeline and
//!   pulled back redacted after a short look-ahead, without FFmpeg (`default-features = false`).
//! - [`Redactor`]: single RGB pictures, without tracking.
//!
//! ```no_run
//! use faceveil::{detect::{CenterFace, SessionOptions}, Options};
//! use std::path::Path;
//!
//! # fn main() -> faceveil::Result<()> {
//! let options = Options::default();
//! let mut detector = CenterFace::load_default(options.detect.clone(), &SessionOptions::default())?;
//! let report = faceveil::redact_file(Path::new("in.mp4"), Path::new("out.mp4"), &options, &mut detector)?;
//! println!("{} of {} frames had faces", report.frames_with_faces, report.frames);
//! # Ok(())
//! # }
//! ```
//!
//! No detector is perfect: faceveil errs toward redacting too much (enlarged masks, a low threshold, and
//! temporal bridging of misses), and stops rather than write a frame it could not analyse.

#[cfg(feature = "ffmpeg")]
pub mod accounting;
pub mod analyse;
#[cfg(feature = "ffmpeg")]
pub mod batch;
pub mod config;
pub mod detect;
pub mod edits;
pub mod error;
pub mod frames;
#[doc(hidden)]
pub mod fuzzing;
pub mod geom;
pub mod io;
pub mod media;
#[cfg(feature = "ffmpeg")]
mod pipeline;
pub mod redact;
pub mod redactor;
pub mod report;
pub mod review;
#[cfg(feature = "review-page")]
pub mod review_page;
pub mod track;
#[cfg(feature = "ffmpeg")]
pub mod verify;

pub use config::{AudioMode, EncodeSettings, FrameRate, OnDetectorError, Options, Schedule};
pub use detect::{DetectSettings, Detection, Detector};
pub use error::{Error, Result};
pub use geom::BBox;
pub use media::MediaKind;
#[cfg(feature = "ffmpeg")]
pub use pipeline::{check_side_output, live, redact_file, redact_file_with, Extras, LatencyHistogram, LiveEvent};
pub use redact::{RedactSettings, Shape, Style};
pub use redactor::Redactor;
pub use report::Report;

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    io::hex(&sha2::Sha256::digest(bytes))
}
