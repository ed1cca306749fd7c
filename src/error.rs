//! The library's one error type. Every variant names the file (or frame) it concerns.

use std::path::PathBuf;

/// Everything that can go wrong in faceveil. The binary maps [`Error::is_usage`] to exit code 2 and
/// everything else to 1.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is outside its allowed range or settings contradict each other.
    #[error("invalid setting: {0}")]
    Config(String),

    /// A reviewer's edit file is malformed, does not fit the picture, or names frames the clip does not have.
    #[error("{path}: edit file: {reason}")]
    Edits { path: PathBuf, reason: String },

    /// The output would overwrite the input.
    #[error("{path}: output is the input file; faceveil never writes to its input")]
    OutputIsInput { path: PathBuf },

    /// The output exists and overwriting was not requested.
    #[error("{path}: output already exists (use --overwrite to replace it)")]
    OutputExists { path: PathBuf },

    /// The output format cannot hold what the input is (e.g. a video written to `.png`).
    #[error("{path}: {reason}")]
    UnsupportedOutput { path: PathBuf, reason: String },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The input could not be opened, probed or decoded.
    #[error("{path}: {reason}")]
    BadInput { path: PathBuf, reason: String },

    /// An audio/subtitle stream cannot be carried into the output container.
    #[error("{path}: {reason}")]
    StreamNotCarried { path: PathBuf, reason: String },

    /// FFmpeg failed while writing the output.
    #[error("{path}: {reason}")]
    Encode { path: PathBuf, reason: String },

    #[error("{path}: cannot decode image: {source}")]
    Image {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },

    /// The ONNX Runtime shared library was not found in any of the searched places.
    #[error("ONNX Runtime library not found; searched: {}. Run scripts/setup.sh or set FACEVEIL_ORT_LIB to libonnxruntime.so", display_paths(.searched))]
    RuntimeNotFound { searched: Vec<PathBuf> },

    /// `--runtime openvino` was asked for, but the OpenVINO build of ONNX Runtime is not installed.
    #[error("the OpenVINO build of ONNX Runtime was not found; searched: {}. Install it with FACEVEIL_OPENVINO=1 bash scripts/setup.sh or set FACEVEIL_ORT_OPENVINO_LIB", display_paths(.searched))]
    OpenVinoNotFound { searched: Vec<PathBuf> },

    /// The ONNX Runtime library exists but could not be loaded.
    #[error("{path}: cannot load ONNX Runtime: {reason}")]
    RuntimeLoad { path: PathBuf, reason: String },

    /// The detector model file is missing.
    #[error("detector model not found; searched: {}. Pass --model or reinstall faceveil", display_paths(.searched))]
    ModelNotFound { searched: Vec<PathBuf> },

    /// The detector model file is not the expected one.
    #[error("{path}: detector model has SHA-256 {actual}, expected {expected}; the file is damaged or not the model faceveil ships")]
    ModelChecksum { path: PathBuf, expected: String, actual: String },

    /// ONNX Runtime rejected the model or failed to run it.
    #[error("detector: {0}")]
    Inference(String),

    /// The detector produced output that cannot be interpreted (fail closed: the frame is not written).
    #[error("detector output unusable: {0}")]
    DetectorOutput(String),

    /// A frame could not be analysed; faceveil stops rather than write it unredacted.
    #[error("{path}: frame {frame}: {source}")]
    Frame {
        path: PathBuf,
        frame: u64,
        #[source]
        source: Box<Error>,
    },

    /// A bug in faceveil (e.g. a pipeline thread panicked); nothing was written.
    #[error("internal error: {0}")]
    Internal(String),

    /// The run was cancelled by the caller.
    #[error("cancelled")]
    Cancelled,

    /// The caller asked the run to stop (e.g. Ctrl-C); no output was written.
    #[error("{path}: interrupted; no output written")]
    Interrupted { path: PathBuf },

    /// A file took longer than the time limit set for it; no output was written.
    #[error("{path}: not finished within the time limit of {seconds} s; no output written")]
    TimeLimit { path: PathBuf, seconds: u64 },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// A temporary file could not be made in `dir`. The `tempfile` crate's message names the random temporary
    /// name, which means nothing to the user: only the folder and the system's reason are kept.
    #[cfg_attr(not(feature = "ffmpeg"), allow(dead_code))]
    pub(crate) fn temp_in(dir: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let text = source.to_string();
        let reason = text.split(" at path ").next().unwrap_or(&text).to_string();
        Error::Io { path: dir.into(), source: std::io::Error::new(source.kind(), reason) }
    }

    #[cfg_attr(not(feature = "ffmpeg"), allow(dead_code))]
    pub(crate) fn bad_input(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::BadInput { path: path.into(), reason: reason.into() }
    }

    /// True for errors caused by how faceveil was called rather than by the data (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Config(_)
                | Error::Edits { .. }
                | Error::OutputIsInput { .. }
                | Error::OutputExists { .. }
                | Error::UnsupportedOutput { .. }
        )
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
