//! The `faceveil` command: a thin layer over the library.

use clap::{Parser, Subcommand, ValueEnum};
use faceveil::detect::{CenterFace, Detector, SessionOptions};
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
    /// Redact every video and image in a folder tree into a mirrored output tree, resumably.
    Batch(BatchArgs),
    /// Redact a live stream (udp://, rtsp://, a device, a pipe, a growing file) into fixed-length segment
    /// files that appear only when complete, or into MPEG-TS on standard output. SIGINT/SIGTERM finish the
    /// current segment and stop. Exit code 0 when the input ended or was stopped, 1 when it broke off or
    /// stalled (the segments written so far are complete and valid).
    Stream(StreamArgs),
    /// Scan redacted outputs at high sensitivity; list frames where a face still seems detectable.
    /// Exit code 0 clean, 4 faces found, 1 error.
    Verify(VerifyArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum StyleArg {
    Blur,
    Pixelate,
    Fill,
}

#[derive(Clone, Copy, ValueEnum)]
enum PrecisionArg {
    Auto,
    Fp32,
    Int8,
}

#[derive(Clone, Copy, ValueEnum)]
enum LowLightArg {
    Auto,
    Off,
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
    /// Write a JSON report (counts, parameters, hashes; no face data) to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Replace OUTPUT if it exists.
    #[arg(long)]
    overwrite: bool,
    /// Write a review sheet: a PNG contact sheet of redacted frames (the most redacted and evenly spaced
    /// ones) with time codes and face counts.
    #[arg(long)]
    review_sheet: Option<PathBuf>,
    /// Give up on a video not finished within this many seconds (exit 1, no output).
    #[arg(long)]
    time_limit: Option<u64>,
    #[command(flatten)]
    settings: SettingsArgs,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ProgressArg {
    /// One line per file on standard error.
    Human,
    /// JSON lines on standard error, for schedulers and log collectors.
    Json,
    None,
}

#[derive(clap::Args)]
struct BatchArgs {
    /// Folder to redact (walked recursively; links are not followed; media recognised by content).
    input_dir: PathBuf,
    /// Output folder: mirrors the input tree, with a `.faceveil.json` report beside every output and
    /// `faceveil-summary[-shard-K-of-N].{json,csv}` at the top. Rerunning skips complete outputs.
    #[arg(short, long)]
    output: PathBuf,
    /// Files processed at once (default: half the cores, at least 1); threads are split among them.
    #[arg(long)]
    jobs: Option<usize>,
    /// Process only shard K of N (0 <= K < N). Default: from JOB_COMPLETION_INDEX + FACEVEIL_SHARD_COUNT
    /// (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT (Slurm array), else all files.
    #[arg(long)]
    shard: Option<String>,
    /// Stop starting new files after the first failure.
    #[arg(long)]
    fail_fast: bool,
    #[arg(long, value_enum, default_value = "human")]
    progress: ProgressArg,
    /// Same as `--progress none`.
    #[arg(long, short)]
    quiet: bool,
    /// Write still images as lossless PNG (default: keep each image's format).
    #[arg(long)]
    images_as_png: bool,
    /// Write a review sheet (contact sheet of redacted frames with time codes) beside every output, as
    /// `<output>.review.png`.
    #[arg(long)]
    review_sheets: bool,
    /// Give up on a file not finished within this many seconds (it is reported failed, with no output),
    /// so one pathological recording cannot hold up a shard.
    #[arg(long)]
    time_limit: Option<u64>,
    #[command(flatten)]
    settings: SettingsArgs,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum RealtimeArg {
    /// On for anything but a regular file.
    Auto,
    On,
    Off,
}

#[derive(clap::Args)]
struct StreamArgs {
    /// Input: an FFmpeg URL or path (`udp://127.0.0.1:5000`, `rtsp://camera/stream`, `/dev/video0`, a file
    /// being recorded), or `-` for standard input.
    input: String,
    /// Segment files: a pattern where `{n}` is the segment number and strftime fields the segment's start
    /// in UTC (`cam1-%Y%m%d-%H%M%S.mp4`, `seg-{n}.ts`); or `-` for MPEG-TS on standard output.
    #[arg(short, long)]
    output: String,
    /// Segment length in seconds (segments start on the first frame at or after each boundary).
    #[arg(long, default_value_t = 60)]
    segment_time: u32,
    /// Seconds without any data after which the input counts as stalled and the run ends.
    #[arg(long, default_value_t = 10)]
    stall_timeout: u64,
    /// Read a file that is still being written; it ends when it has not grown for --stall-timeout.
    #[arg(long)]
    follow: bool,
    /// Pace detection against the wall clock: when the machine falls behind, skip the small-face tiles and
    /// then detect every other frame (bridged by tracking), with enlarged masks; never pass frames unredacted.
    #[arg(long, value_enum, default_value = "auto")]
    realtime: RealtimeArg,
    /// Write the run's report (counts, segments, real-time factor, latency) as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// FFmpeg input format where probing cannot tell: `v4l2` for a camera device (`/dev/video0`), or
    /// `mpegts`, `h264`, … for a headerless pipe.
    #[arg(long, short = 'f')]
    input_format: Option<String>,
    /// FFmpeg demuxer or protocol option for the input, KEY=VALUE, repeatable: `video_size=1280x720`,
    /// `framerate=25`, `pixel_format=yuv420p` for v4l2 or raw video; `rtsp_transport=tcp` for RTSP.
    #[arg(long = "input-option", value_name = "KEY=VALUE")]
    input_options: Vec<String>,
    #[command(flatten)]
    settings: SettingsArgs,
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// Files to check (videos or images).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Detector score above which a face counts as still detectable. Redacted heads can still look like a
    /// head to the detector (hair above a blurred oval), so findings are for a reviewer to look at.
    #[arg(long, default_value_t = 0.5)]
    threshold: f32,
    /// Write all findings as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The unredacted original (one FILE only): report a detection only where the output still carries the
    /// original's fine detail, so redacted heads that merely look like heads are not reported.
    #[arg(long)]
    orig: Option<PathBuf>,
    /// Detector model (default: the shipped CenterFace).
    #[arg(long)]
    model: Option<PathBuf>,
}

#[derive(clap::Args)]
struct SettingsArgs {
    /// Detector score threshold (0..1); lower finds more faces.
    #[arg(long, default_value_t = DetectSettings::default().threshold)]
    threshold: f32,
    #[arg(long, value_enum, default_value = "blur")]
    style: StyleArg,
    #[arg(long, value_enum, default_value = "ellipse")]
    shape: ShapeArg,
    /// Review only: outline the faces instead of redacting them. The output is NOT redacted; its report says
    /// `not_for_release`.
    #[arg(long)]
    overlay: bool,
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
    /// x264 preset [default: medium; veryfast for `stream`].
    #[arg(long)]
    preset: Option<String>,
    /// x264 rate-control look-ahead in frames, at most (memory: about 5 MB per frame at 1080p).
    #[arg(long, default_value_t = EncodeSettings::default().lookahead)]
    lookahead: u32,
    /// Threads of the video decoder and of the encoder, each, for files (0: one per four cores, at least one;
    /// every encoder thread holds pictures of its own: about 30 MB each at 1080p).
    #[arg(long, default_value_t = EncodeSettings::default().threads)]
    codec_threads: u32,
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
    /// Detector model (default: the shipped CenterFace of the chosen precision, found beside the binary or in
    /// the repository).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Detector precision: the shipped CenterFace as published (fp32, the default for everything), its 8-bit
    /// quantisation (int8, about 1.5x faster on CPUs, but it loses dark and tiny faces: see models/README.md),
    /// or auto: fp32 for still images, int8 for video.
    #[arg(long, value_enum, default_value = "fp32")]
    precision: PrecisionArg,
    /// Low light: contrast-equalise dark pictures (median brightness under 80 of 255) for the detector
    /// (auto), or never (off). Output pixels are not changed by it.
    #[arg(long, value_enum, default_value = "auto")]
    low_light: LowLightArg,
    /// Threads for the detector (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Run the detector on the GPU through ONNX Runtime's CUDA provider (needs the `cuda` build).
    #[arg(long)]
    cuda: bool,
}

impl SettingsArgs {
    fn options(&self, overwrite: bool) -> Options {
        let defaults = DetectSettings::default();
        Options {
            detect: DetectSettings {
                threshold: self.threshold,
                max_side: self.det_size,
                min_side: defaults.min_side.min(self.det_size),
                tile_scale: self.tile_scale,
                low_light: matches!(self.low_light, LowLightArg::Auto),
                ..defaults
            },
            redact: RedactSettings {
                style: match self.style {
                    _ if self.overlay => Style::Outline,
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
            encode: EncodeSettings {
                crf: self.crf,
                preset: self.preset.clone().unwrap_or_else(|| EncodeSettings::default().preset),
                lookahead: self.lookahead,
                threads: self.codec_threads,
            },
            overwrite,
        }
    }

    fn load_detector(&self, options: &Options, threads: usize) -> faceveil::Result<Box<dyn Detector>> {
        use faceveil::detect::{find_shipped_model, Deferred, PerMedia, CENTERFACE_FP32, CENTERFACE_INT8};
        let session = SessionOptions { intra_threads: threads, runtime_library: None, cuda: self.cuda };
        let load = |shipped| -> faceveil::Result<CenterFace> {
            let model = find_shipped_model(self.model.as_deref(), &shipped)?;
            CenterFace::load(&model, options.detect.clone(), &session)
        };
        // The still images' model is found and checked now but built only when the first photo needs it:
        // a video run does not hold its session. The video model is built now, so that a session that cannot
        // be made (e.g. `--cuda` without a CUDA build) fails before any work.
        let deferred = |shipped| -> faceveil::Result<Deferred<CenterFace>> {
            let model = find_shipped_model(None, &shipped)?;
            let sha256 = CenterFace::verify(&model)?;
            let (settings, session) = (options.detect.clone(), session.clone());
            Ok(Deferred::new(Some(sha256), move || CenterFace::load(&model, settings, &session)))
        };
        Ok(match self.precision {
            // An explicit --model is used for everything.
            _ if self.model.is_some() => Box::new(load(CENTERFACE_FP32)?),
            PrecisionArg::Auto => Box::new(PerMedia::new(deferred(CENTERFACE_FP32)?, load(CENTERFACE_INT8)?)),
            PrecisionArg::Fp32 => Box::new(load(CENTERFACE_FP32)?),
            PrecisionArg::Int8 => Box::new(load(CENTERFACE_INT8)?),
        })
    }
}

/// Exit codes: 0 success, 1 failure, 2 usage error, 3 batch finished with some files failed or skipped.
enum Failure {
    Usage(anyhow::Error),
    Run(anyhow::Error),
    /// A batch finished, but some files failed or were skipped (exit code 3).
    Partial,
    /// `verify` found faces (exit code 4).
    Flagged,
    /// The output was written, but the input was damaged (exit code 5).
    Damaged,
}

impl From<faceveil::Error> for Failure {
    fn from(e: faceveil::Error) -> Self {
        if e.is_usage() {
            Failure::Usage(e.into())
        } else {
            Failure::Run(e.into())
        }
    }
}

fn redact(args: &RedactArgs) -> Result<(), Failure> {
    let options = args.settings.options(args.overwrite);
    options.validate()?;
    if let Some(report) = &args.report {
        if report.exists() && !args.overwrite {
            return Err(faceveil::Error::OutputExists { path: report.clone() }.into());
        }
    }
    let mut detector = args.settings.load_detector(&options, args.settings.threads)?;
    let bar = frame_bar();
    let tick = |n: u64, total: Option<u64>| {
        if let Some(b) = &bar {
            if let Some(t) = total {
                b.set_length(t.max(n));
            }
            b.set_position(n);
        }
    };
    let extras = faceveil::Extras {
        review_sheet: args.review_sheet.clone(),
        progress: Some(&tick),
        time_limit: args.time_limit.map(std::time::Duration::from_secs),
        cancel: Some(interrupt_flag()?),
    };
    let report = faceveil::redact_file_with(&args.input, &args.output, &options, &mut detector, &extras);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = report?;
    if let Some(path) = &args.report {
        faceveil::batch::write_json_atomic(path, &report)?;
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
    if report.input_damaged() {
        eprintln!(
            "faceveil: {}: the input is damaged; the output holds every frame that could be decoded (exit 5)",
            args.input.display()
        );
        return Err(Failure::Damaged);
    }
    Ok(())
}

/// A flag set by the first SIGINT or SIGTERM, for the library to stop cleanly (no output, no temporary file
/// left; a stream finishes its segment). A second signal ends the process at once.
fn interrupt_flag() -> Result<std::sync::Arc<std::sync::atomic::AtomicBool>, Failure> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // In this order: the second signal finds the flag set and exits; the first only sets it.
        signal_hook::flag::register_conditional_shutdown(signal, 130, std::sync::Arc::clone(&flag))
            .and_then(|_| signal_hook::flag::register(signal, std::sync::Arc::clone(&flag)))
            .map_err(|e| Failure::Run(anyhow::anyhow!("signal handler: {e}")))?;
    }
    Ok(flag)
}

/// A frames bar with fps and ETA, only when standard error is a terminal.
fn frame_bar() -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {wide_bar} {pos}/{len} frames, {per_sec}, ETA {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

fn batch(args: &BatchArgs) -> Result<(), Failure> {
    use faceveil::batch::{run_batch, BatchSettings, Event, Shard, Status};
    let options = args.settings.options(false);
    options.validate()?;
    let shard = match &args.shard {
        Some(s) => Some(Shard::parse(s)?),
        None => Shard::from_env(|k| std::env::var(k).ok())?,
    };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let jobs = args.jobs.unwrap_or((cores / 2).max(1));
    if jobs == 0 {
        return Err(faceveil::Error::Config("invalid jobs 0 (expected >= 1)".into()).into());
    }
    let settings = BatchSettings {
        jobs,
        shard,
        fail_fast: args.fail_fast,
        images_as_png: args.images_as_png,
        review_sheets: args.review_sheets,
        time_limit: args.time_limit.map(std::time::Duration::from_secs),
        cancel: Some(interrupt_flag()?),
    };
    let make = |threads: usize| -> faceveil::Result<Box<dyn faceveil::Detector>> {
        let threads = if args.settings.threads > 0 { args.settings.threads } else { threads };
        Ok(Box::new(args.settings.load_detector(&options, threads)?))
    };
    let mode = if args.quiet { ProgressArg::None } else { args.progress };
    let files_bar = {
        use std::io::IsTerminal;
        (mode == ProgressArg::Human && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {wide_bar} {pos}/{len} files, ETA {eta} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        })
    };
    let say = |line: String| match &files_bar {
        Some(b) => b.println(line),
        None => eprintln!("{line}"),
    };
    let progress = |event: Event<'_>| match mode {
        ProgressArg::None => {}
        ProgressArg::Json => {
            if let Ok(line) = serde_json::to_string(&event) {
                eprintln!("{line}");
            }
        }
        ProgressArg::Human => match event {
            Event::Start { files, media, shard } => {
                if let Some(b) = &files_bar {
                    b.set_length(files as u64);
                }
                say(format!(
                    "faceveil batch: {files} file(s), {media} media{}",
                    shard.map(|s| format!(" (shard {}/{})", s.index, s.count)).unwrap_or_default()
                ))
            }
            Event::File { n, of, result } => {
                if let Some(b) = &files_bar {
                    b.inc(1);
                }
                say(format!(
                    "[{n}/{of}] {}: {}{}",
                    result.input.display(),
                    match result.status {
                        Status::Done => format!(
                            "done, {} frame(s), faces in {}, {:.1} s",
                            result.frames, result.frames_with_faces, result.seconds
                        ),
                        Status::UpToDate => "up to date".into(),
                        Status::Failed => "FAILED".into(),
                        Status::Skipped => "skipped".into(),
                    },
                    result.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
                ))
            }
        },
    };
    let summary = run_batch(&args.input_dir, &args.output, &options, &settings, &make, &progress);
    if let Some(b) = &files_bar {
        b.finish_and_clear();
    }
    let summary = summary?;
    let stem = match summary.shard {
        Some(s) => format!("faceveil-summary-shard-{}-of-{}", s.index, s.count),
        None => "faceveil-summary".into(),
    };
    let dir = &summary.output_dir;
    faceveil::batch::write_json_atomic(&dir.join(format!("{stem}.json")), &summary)?;
    faceveil::batch::write_atomic(&dir.join(format!("{stem}.csv")), summary.to_csv().as_bytes())?;
    let summary_path = dir.join(format!("{stem}.json"));
    match mode {
        ProgressArg::None => {}
        ProgressArg::Json => eprintln!(
            "{}",
            serde_json::json!({"event": "finish", "done": summary.done, "up_to_date": summary.up_to_date,
                "failed": summary.failed, "skipped": summary.skipped, "seconds": summary.seconds,
                "summary": summary_path})
        ),
        ProgressArg::Human => eprintln!(
            "faceveil batch: {} done, {} up to date, {} failed, {} skipped in {:.1} s; summary {}",
            summary.done,
            summary.up_to_date,
            summary.failed,
            summary.skipped,
            summary.seconds,
            summary_path.display()
        ),
    }
    match summary.exit_code() {
        0 => Ok(()),
        1 => Err(Failure::Run(anyhow::anyhow!(
            "interrupted: files not started are left for a rerun of the same command, which resumes"
        ))),
        5 => Err(Failure::Damaged),
        _ => Err(Failure::Partial),
    }
}

/// End-to-end frame latencies in 1 ms buckets (bounded memory however long the stream runs).
struct LatencyHistogram {
    buckets: Vec<u64>,
    count: u64,
    max_ms: f64,
}

impl LatencyHistogram {
    const LIMIT_MS: usize = 120_000;

    fn new() -> Self {
        Self { buckets: vec![0; Self::LIMIT_MS + 1], count: 0, max_ms: 0.0 }
    }

    fn add(&mut self, ms: f64) {
        self.buckets[(ms.max(0.0) as usize).min(Self::LIMIT_MS)] += 1;
        self.count += 1;
        self.max_ms = self.max_ms.max(ms);
    }

    fn percentile(&self, p: f64) -> Option<u64> {
        let rank = ((self.count as f64 * p).ceil() as u64).max(1);
        let mut seen = 0;
        for (ms, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(ms as u64);
            }
        }
        None
    }
}

#[derive(serde::Serialize)]
struct StreamSummary<'a> {
    #[serde(flatten)]
    report: &'a faceveil::io::live::StreamReport,
    realtime_factor: f64,
    latency_ms_p50: Option<u64>,
    latency_ms_p95: Option<u64>,
    latency_ms_max: f64,
    error: Option<String>,
}

fn stream(args: &StreamArgs) -> Result<(), Failure> {
    use faceveil::io::live::{redact_stream, LiveSettings, StreamOutput};
    use faceveil::io::LiveEvent;
    use std::sync::Mutex;

    let mut options = args.settings.options(false);
    options.redact.require_redaction("a live recording")?;
    if args.settings.preset.is_none() {
        // Live video has to leave the encoder as fast as it arrives.
        options.encode.preset = "veryfast".into();
    }
    options.validate()?;
    let output = if args.output == "-" {
        StreamOutput::Stdout
    } else {
        let out = StreamOutput::Segments { pattern: args.output.clone(), seconds: args.segment_time };
        faceveil::io::live::SegmentNamer::new(&args.output, args.segment_time)?;
        out
    };
    if args.stall_timeout == 0 {
        return Err(faceveil::Error::Config("--stall-timeout must be at least 1 second".into()).into());
    }
    let is_file = std::fs::metadata(&args.input).map(|m| m.is_file()).unwrap_or(false);
    let live = LiveSettings {
        stall_timeout: std::time::Duration::from_secs(args.stall_timeout),
        follow: args.follow,
        realtime: match args.realtime {
            RealtimeArg::Auto => !is_file || args.follow,
            RealtimeArg::On => true,
            RealtimeArg::Off => false,
        },
        input_format: args.input_format.clone(),
        input_options: args
            .input_options
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                _ => Err(faceveil::Error::Config(format!("--input-option {kv:?}: expected KEY=VALUE"))),
            })
            .collect::<Result<_, _>>()?,
    };
    let stop = interrupt_flag()?;
    let mut detector = args.settings.load_detector(&options, args.settings.threads)?;
    let latency = Mutex::new(LatencyHistogram::new());
    let log = |event: LiveEvent| match event {
        LiveEvent::Latency { ms, .. } => {
            if let Ok(mut h) = latency.lock() {
                h.add(ms);
            }
        }
        LiveEvent::Degraded { frame, level, lag_ms, what } => {
            eprintln!("faceveil stream: frame {frame}: {lag_ms} ms behind real time: level {level}: {what}")
        }
    };
    let on_segment = |path: &std::path::Path| eprintln!("faceveil stream: segment complete: {}", path.display());
    let result = redact_stream(&args.input, &output, &options, &live, &mut detector, stop, &log, &on_segment);
    let (report, error) = match result {
        Ok(r) => (r, None),
        Err((e, r)) => (r, Some(e)),
    };
    let hist = latency.lock().map_err(|_| Failure::Run(anyhow::anyhow!("latency log poisoned")))?;
    let summary = StreamSummary {
        report: &report,
        realtime_factor: report.realtime_factor(),
        latency_ms_p50: hist.percentile(0.5),
        latency_ms_p95: hist.percentile(0.95),
        latency_ms_max: hist.max_ms,
        error: error.as_ref().map(|e| e.to_string()),
    };
    if let Some(path) = &args.report {
        faceveil::batch::write_json_atomic(path, &summary)?;
    }
    let lat = match (summary.latency_ms_p50, summary.latency_ms_p95) {
        (Some(a), Some(b)) => format!("; latency p50 {a} ms, p95 {b} ms, max {:.0} ms", summary.latency_ms_max),
        _ => String::new(),
    };
    eprintln!(
        "faceveil stream: {}: {} frame(s), faces in {}, {} redacted, {} degraded, {} segment(s); {:.1} s of media in {:.1} s (real-time factor {:.2}){lat}{}",
        if args.input == "-" { "standard input" } else { &args.input },
        report.frames,
        report.frames_with_faces,
        report.frames_redacted,
        report.frames_degraded,
        report.segments.len(),
        report.media_ms as f64 / 1000.0,
        report.wall_ms as f64 / 1000.0,
        summary.realtime_factor,
        if report.stopped { "; stopped by signal" } else { "" }
    );
    for w in &report.warnings {
        eprintln!("faceveil stream: warning: {w}");
    }
    match error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn verify(args: &VerifyArgs) -> Result<(), Failure> {
    let settings = DetectSettings { threshold: args.threshold, ..DetectSettings::default() };
    settings.validate()?;
    if args.orig.is_some() && args.files.len() != 1 {
        return Err(faceveil::Error::Config("--orig compares one FILE with its original; pass one FILE".into()).into());
    }
    let model = faceveil::detect::find_model(args.model.as_deref())?;
    let mut detector = CenterFace::load(&model, settings.clone(), &SessionOptions::default())?;
    let mut reports = Vec::new();
    let mut flagged = false;
    for file in &args.files {
        let r = faceveil::verify::verify_file(file, args.orig.as_deref(), &settings, &mut detector)?;
        if r.clean() {
            println!("{}: clean ({} frame(s) checked)", file.display(), r.frames);
        } else {
            flagged = true;
            println!("{}: FACES STILL DETECTABLE in {} of {} frame(s)", file.display(), r.frames_flagged, r.frames);
            for f in r.findings.iter().take(20) {
                let b = f.bbox;
                println!(
                    "  frame {} at {}: box ({:.0},{:.0})-({:.0},{:.0}) score {:.2}",
                    f.frame, f.time, b.x0, b.y0, b.x1, b.y1, f.score
                );
            }
        }
        reports.push(r);
    }
    if let Some(path) = &args.json {
        faceveil::batch::write_json_atomic(path, &reports)?;
    }
    if flagged {
        Err(Failure::Flagged)
    } else {
        Ok(())
    }
}

/// The error and its causes, each cause only where its text is not already in the message (library errors
/// already name their cause).
fn describe(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    faceveil::io::quiet_ffmpeg_log();
    let result = match &cli.command {
        Command::Redact(args) => redact(args),
        Command::Batch(args) => batch(args),
        Command::Verify(args) => verify(args),
        Command::Stream(args) => stream(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("faceveil: error: {}", describe(&e));
            ExitCode::from(2)
        }
        Err(Failure::Run(e)) => {
            eprintln!("faceveil: error: {}", describe(&e));
            ExitCode::from(1)
        }
        Err(Failure::Partial) => ExitCode::from(3),
        Err(Failure::Flagged) => ExitCode::from(4),
        Err(Failure::Damaged) => ExitCode::from(5),
    }
}
