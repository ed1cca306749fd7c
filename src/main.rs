//! The `faceveil` command: a thin layer over the library.

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use faceveil::detect::{CenterFace, SessionOptions};
use faceveil::{AudioMode, DetectSettings, EncodeSettings, OnDetectorError, Options, RedactSettings, Shape, Style};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "faceveil", version, about = "Remove faces from video and photos, without identifying anyone")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Redact every face in one video or image.
    Redact(RedactArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum StyleArg {
    Blur,
    Pixelate,
    Fill,
}

#[derive(Clone, Copy, ValueEnum)]
enum ShapeArg {
    Ellipse,
    Box,
}

#[derive(Clone, Copy, ValueEnum)]
enum AudioArg {
    Copy,
    Drop,
}

#[derive(Clone, Copy, ValueEnum)]
enum OnErrorArg {
    Fail,
    RedactFrame,
}

#[derive(clap::Args)]
struct RedactArgs {
    /// Input video (anything FFmpeg reads) or image (jpg, png, webp).
    input: PathBuf,
    /// Output file; its extension picks the container (mp4, mkv, mov, avi, ts) or image format (jpg, png, webp).
    #[arg(short, long)]
    output: PathBuf,
    /// Detector score threshold (0..1); lower finds more faces.
    #[arg(long, default_value_t = DetectSettings::default().threshold)]
    threshold: f32,
    #[arg(long, value_enum, default_value = "blur")]
    style: StyleArg,
    #[arg(long, value_enum, default_value = "ellipse")]
    shape: ShapeArg,
    /// Enlarge each face box by this factor before redacting (1..4).
    #[arg(long, default_value_t = RedactSettings::default().mask_scale)]
    mask_scale: f32,
    /// Copy audio streams unchanged, or drop them.
    #[arg(long, value_enum, default_value = "copy")]
    audio: AudioArg,
    /// When the detector cannot analyse a frame: stop with no output (fail), or blank that whole frame.
    #[arg(long, value_enum, default_value = "fail")]
    on_detector_error: OnErrorArg,
    /// Keep container and stream metadata (stripped by default: it can hold locations and device names).
    #[arg(long)]
    keep_metadata: bool,
    /// x264 constant rate factor (0..51); 18 is visually lossless.
    #[arg(long, default_value_t = EncodeSettings::default().crf)]
    crf: u8,
    /// x264 preset.
    #[arg(long, default_value_t = EncodeSettings::default().preset)]
    preset: String,
    /// Frames before and after every detection that are redacted too (bridges detector misses).
    #[arg(long, default_value_t = Options::default().bridge_frames)]
    bridge_frames: u32,
    /// Small faces: also scan overlapping tiles of the frame scaled up by this factor (0: off).
    #[arg(long, default_value_t = DetectSettings::default().tile_scale)]
    tile_scale: f32,
    /// Video: spread the small-face tiles over this many frames (1: all tiles every frame).
    #[arg(long, default_value_t = Options::default().tile_period)]
    tile_period: u32,
    /// Longest side of the picture given to the detector, in pixels.
    #[arg(long, default_value_t = DetectSettings::default().max_side)]
    det_size: u32,
    /// Write a JSON report (counts, parameters, hashes; no face data) to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Replace OUTPUT if it exists.
    #[arg(long)]
    overwrite: bool,
    /// Detector model (default: the shipped CenterFace, found beside the binary or in the repository).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Threads for the detector (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Run the detector on the GPU through ONNX Runtime's CUDA provider (needs the `cuda` build).
    #[arg(long)]
    cuda: bool,
}

impl RedactArgs {
    fn options(&self) -> Options {
        let defaults = DetectSettings::default();
        Options {
            detect: DetectSettings {
                threshold: self.threshold,
                max_side: self.det_size,
                min_side: defaults.min_side.min(self.det_size),
                tile_scale: self.tile_scale,
                ..defaults
            },
            redact: RedactSettings {
                style: match self.style {
                    StyleArg::Blur => Style::Blur,
                    StyleArg::Pixelate => Style::Pixelate,
                    StyleArg::Fill => Style::Fill,
                },
                shape: match self.shape {
                    ShapeArg::Ellipse => Shape::Ellipse,
                    ShapeArg::Box => Shape::Box,
                },
                mask_scale: self.mask_scale,
            },
            bridge_frames: self.bridge_frames,
            tile_period: self.tile_period,
            audio: match self.audio {
                AudioArg::Copy => AudioMode::Copy,
                AudioArg::Drop => AudioMode::Drop,
            },
            on_detector_error: match self.on_detector_error {
                OnErrorArg::Fail => OnDetectorError::Fail,
                OnErrorArg::RedactFrame => OnDetectorError::RedactFrame,
            },
            keep_metadata: self.keep_metadata,
            encode: EncodeSettings { crf: self.crf, preset: self.preset.clone() },
            overwrite: self.overwrite,
        }
    }
}

/// Exit codes: 0 success, 1 failure, 2 usage error.
enum Failure {
    Usage(anyhow::Error),
    Run(anyhow::Error),
}

impl From<faceveil::Error> for Failure {
    fn from(e: faceveil::Error) -> Self {
        if e.is_usage() { Failure::Usage(e.into()) } else { Failure::Run(e.into()) }
    }
}

fn redact(args: &RedactArgs) -> Result<(), Failure> {
    let options = args.options();
    options.validate()?;
    if let Some(report) = &args.report {
        if report.exists() && !args.overwrite {
            return Err(faceveil::Error::OutputExists { path: report.clone() }.into());
        }
    }
    let model = faceveil::detect::find_model(args.model.as_deref())?;
    let session = SessionOptions { intra_threads: args.threads, runtime_library: None, cuda: args.cuda };
    let mut detector = CenterFace::load(&model, options.detect.clone(), &session)?;
    let report = faceveil::redact_file(&args.input, &args.output, &options, &mut detector)?;
    if let Some(path) = &args.report {
        write_report(path, &report).map_err(Failure::Run)?;
    }
    eprintln!(
        "faceveil: {} -> {}: {} frame(s), faces in {}, {} detection(s), {} frame(s) redacted{}",
        args.input.display(),
        args.output.display(),
        report.frames,
        report.frames_with_faces,
        report.detections,
        report.frames_redacted,
        if report.warnings.is_empty() { String::new() } else { format!("; warnings: {}", report.warnings.join("; ")) }
    );
    Ok(())
}

/// Writes the report atomically beside its final name.
fn write_report(path: &std::path::Path, report: &faceveil::Report) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("{}: cannot create report", path.display()))?;
    serde_json::to_writer_pretty(&mut tmp, report).with_context(|| format!("{}: cannot write report", path.display()))?;
    tmp.persist(path).map_err(|e| anyhow::anyhow!("{}: cannot write report: {}", path.display(), e.error))?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    let result = match &cli.command {
        Command::Redact(args) => redact(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("faceveil: error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Run(e)) => {
            eprintln!("faceveil: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
