//! Command-line arguments and their mapping to the library's settings (the only place that knows both).

use clap::{Parser, Subcommand, ValueEnum};
use faceveil::batch::{BatchSettings, Shard};
use faceveil::detect::{load_detector, Detector, DetectorChoice, Precision, Runtime, SessionOptions, SmallDetector};
use faceveil::live::LiveSettings;
use faceveil::{AudioMode, DetectSettings, EncodeSettings, OnDetectorError, Options, RedactSettings, Shape, Style};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "faceveil", version, about = "Remove faces from video and photos, without identifying anyone")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
    /// Review a redacted video in the browser on this machine (127.0.0.1, random port and token): step
    /// through it, see `verify`'s findings, draw boxes over what was missed and save them as an edit file for
    /// `redact --edits`. Ctrl-C ends it.
    Review(ReviewArgs),
    /// Account for a batch run in shards: read every shard's summary in OUTPUT and the input tree, and list
    /// each input file once with its state, files no shard listed, files two shards listed, and shards that
    /// never reported. Writes OUTPUT/faceveil-accounting.json and .csv. Exit code 0 when every media file was
    /// done exactly once, 3 when not, 1 on an error.
    Summary(SummaryArgs),
}

#[derive(clap::Args)]
pub(crate) struct SummaryArgs {
    /// The batch output folder (where the shards' faceveil-summary-shard-K-of-N.json are).
    pub(crate) output: PathBuf,
    /// Shards the run was split into (default: as the summaries say); needed to name shards that never wrote
    /// a summary when no summary of that run exists yet.
    #[arg(long)]
    pub(crate) shards: Option<u32>,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum StyleArg {
    Blur,
    Pixelate,
    Fill,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum PrecisionArg {
    Auto,
    Fp32,
    Int8,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum RuntimeArg {
    Cpu,
    Openvino,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum LowLightArg {
    Auto,
    Off,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ShapeArg {
    Ellipse,
    Box,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum AudioArg {
    Copy,
    Drop,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum OnErrorArg {
    Fail,
    RedactFrame,
}

#[derive(clap::Args)]
pub(crate) struct RedactArgs {
    /// Input video (anything FFmpeg reads) or image (jpg, png, webp, tif, bmp).
    pub(crate) input: PathBuf,
    /// Output file; its extension picks the container (mp4, mkv, mov, avi, ts) or image format (jpg, png, webp,
    /// tif, bmp).
    #[arg(short, long)]
    pub(crate) output: PathBuf,
    /// Write a JSON report (counts, parameters, hashes; no face data) to this file.
    #[arg(long)]
    pub(crate) report: Option<PathBuf>,
    /// Replace OUTPUT if it exists.
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// Write a review sheet: a PNG contact sheet of redacted frames (the most redacted and evenly spaced
    /// ones) with time codes and face counts.
    #[arg(long)]
    pub(crate) review_sheet: Option<PathBuf>,
    /// Give up on a video not finished within this many seconds (exit 1, no output).
    #[arg(long)]
    pub(crate) time_limit: Option<u64>,
    /// Apply a reviewer's edit file (JSON): regions to add on key frames (interpolated), frame ranges to
    /// redact whole, regions to keep unredacted. Its SHA-256 goes into the report.
    #[arg(long)]
    pub(crate) edits: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) settings: SettingsArgs,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum ProgressArg {
    /// One line per file on standard error.
    Human,
    /// JSON lines on standard error, for schedulers and log collectors.
    Json,
    None,
}

#[derive(clap::Args)]
pub(crate) struct BatchArgs {
    /// Folder to redact (walked recursively; links are not followed; media recognised by content).
    pub(crate) input_dir: PathBuf,
    /// Output folder: mirrors the input tree, with a `.faceveil.json` report beside every output and
    /// `faceveil-summary[-shard-K-of-N].{json,csv}` at the top. Rerunning skips complete outputs.
    #[arg(short, long)]
    pub(crate) output: PathBuf,
    /// Files processed at once (default: half the cores, at least 1); threads are split among them.
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Process only shard K of N (0 <= K < N). Default: from JOB_COMPLETION_INDEX + FACEVEIL_SHARD_COUNT
    /// (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT (Slurm array), else all files.
    #[arg(long)]
    pub(crate) shard: Option<String>,
    /// Stop starting new files after the first failure.
    #[arg(long)]
    pub(crate) fail_fast: bool,
    #[arg(long, value_enum, default_value = "human")]
    pub(crate) progress: ProgressArg,
    /// Same as `--progress none`.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// Write still images as lossless PNG (default: keep each image's format).
    #[arg(long)]
    pub(crate) images_as_png: bool,
    /// Write a review sheet (contact sheet of redacted frames with time codes) beside every output, as
    /// `<output>.review.png`.
    #[arg(long)]
    pub(crate) review_sheets: bool,
    /// Give up on a file not finished within this many seconds (it is reported failed, with no output),
    /// so one pathological recording cannot hold up a shard.
    #[arg(long)]
    pub(crate) time_limit: Option<u64>,
    /// Let reviewers' edit files (`<input>.faceveil-edits.json` beside an input, applied automatically) keep
    /// regions unredacted; without it a file whose edits keep regions fails.
    #[arg(long)]
    pub(crate) allow_keep_regions: bool,
    #[command(flatten)]
    pub(crate) settings: SettingsArgs,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum RealtimeArg {
    /// On for anything but a regular file.
    Auto,
    On,
    Off,
}

#[derive(clap::Args)]
pub(crate) struct StreamArgs {
    /// Input: an FFmpeg URL or path (`udp://127.0.0.1:5000`, `rtsp://camera/stream`, `/dev/video0`, a file
    /// being recorded), or `-` for standard input.
    pub(crate) input: String,
    /// Segment files: a pattern where `{n}` is the segment number and strftime fields the segment's start
    /// in UTC (`cam1-%Y%m%d-%H%M%S.mp4`, `seg-{n}.ts`); or `-` for MPEG-TS on standard output.
    #[arg(short, long)]
    pub(crate) output: String,
    /// Segment length in seconds (segments start on the first frame at or after each boundary).
    #[arg(long, default_value_t = 60)]
    pub(crate) segment_time: u32,
    /// Seconds without any data after which the input counts as stalled and the run ends.
    #[arg(long, default_value_t = 10)]
    pub(crate) stall_timeout: u64,
    /// Read a file that is still being written; it ends when it has not grown for --stall-timeout.
    #[arg(long)]
    pub(crate) follow: bool,
    /// Pace detection against the wall clock: when the machine falls behind, search for small faces less often
    /// and then detect every other frame (bridged by tracking), with enlarged masks and whatever changed between
    /// small-face searches covered whole (more redaction, never less); `off` keeps full detection and falls
    /// behind the input instead.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) realtime: RealtimeArg,
    /// For measuring: hold detection at this effort level (0 full … 3 lowest) whatever the lag, to see and judge
    /// what a machine too slow for its camera writes. Needs a paced run (--realtime on, or a live source).
    #[arg(long, value_name = "LEVEL")]
    pub(crate) hold_effort: Option<u8>,
    /// Write the run's report (counts, segments, real-time factor, latency) as JSON here.
    #[arg(long)]
    pub(crate) report: Option<PathBuf>,
    /// FFmpeg input format where probing cannot tell: `v4l2` for a camera device (`/dev/video0`), or
    /// `mpegts`, `h264`, … for a headerless pipe.
    #[arg(long, short = 'f')]
    pub(crate) input_format: Option<String>,
    /// FFmpeg demuxer or protocol option for the input, KEY=VALUE, repeatable: `video_size=1280x720`,
    /// `framerate=25`, `pixel_format=yuv420p` for v4l2 or raw video; `rtsp_transport=tcp` for RTSP.
    #[arg(long = "input-option", value_name = "KEY=VALUE")]
    pub(crate) input_options: Vec<String>,
    #[command(flatten)]
    pub(crate) settings: SettingsArgs,
}

#[derive(clap::Args)]
pub(crate) struct VerifyArgs {
    /// Files to check (videos or images).
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
    /// Detector score above which a face counts as still detectable. Redacted heads can still look like a
    /// head to the detector (hair above a blurred oval), so findings are for a reviewer to look at.
    #[arg(long, default_value_t = 0.5)]
    pub(crate) threshold: f32,
    /// Write all findings as JSON to this file.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// The unredacted original (one FILE only): report a detection only where the output still carries the
    /// original's fine detail, so redacted heads that merely look like heads are not reported.
    #[arg(long)]
    pub(crate) orig: Option<PathBuf>,
    /// Detector model (default: the shipped CenterFace).
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// Also look for faces on their side or upside down (the picture turned a quarter, a half and three
    /// quarters; boxes scoring 0.7 or more), as `redact --turned` searches: about four times the time.
    #[arg(long)]
    pub(crate) turned: bool,
}

#[derive(clap::Args)]
pub(crate) struct SettingsArgs {
    /// Detector score threshold (0..1); lower finds more faces.
    #[arg(long, default_value_t = DetectSettings::default().threshold)]
    pub(crate) threshold: f32,
    #[arg(long, value_enum, default_value = "blur")]
    pub(crate) style: StyleArg,
    #[arg(long, value_enum, default_value = "ellipse")]
    pub(crate) shape: ShapeArg,
    /// Review only: outline the faces instead of redacting them. The output is NOT redacted; its report says
    /// `not_for_release`.
    #[arg(long)]
    pub(crate) overlay: bool,
    /// Enlarge each face box by this factor before redacting (1..4).
    #[arg(long, default_value_t = RedactSettings::default().mask_scale)]
    pub(crate) mask_scale: f32,
    /// Copy audio streams unchanged, or drop them.
    #[arg(long, value_enum, default_value = "copy")]
    pub(crate) audio: AudioArg,
    /// When the detector cannot analyse a frame: stop with no output (fail), or blank that whole frame.
    #[arg(long, value_enum, default_value = "fail")]
    pub(crate) on_detector_error: OnErrorArg,
    /// Keep container and stream metadata and chapters (stripped by default: they can hold locations, device names
    /// and names of people).
    #[arg(long)]
    pub(crate) keep_metadata: bool,
    /// Video from a moving camera (hand-held, body-worn): measure the camera's shift between frames so that
    /// bridged boxes move with the scene, not along the last shake (smaller files; see the README before use).
    #[arg(long)]
    pub(crate) follow_camera: bool,
    /// x264 constant rate factor (0..51); 18 is visually lossless.
    #[arg(long, default_value_t = EncodeSettings::default().crf)]
    pub(crate) crf: u8,
    /// x264 preset [default: faster; superfast for `stream`]. faceveil's `faster` refines motion less than
    /// x264's own (subme 2 instead of 4: 14–24 % less encoder CPU on redacted video for 0.01–0.23 dB); every
    /// other preset is x264's own.
    #[arg(long)]
    pub(crate) preset: Option<String>,
    /// x264 rate-control look-ahead in frames, at most (memory: about 5 MB per frame at 1080p).
    #[arg(long, default_value_t = EncodeSettings::default().lookahead)]
    pub(crate) lookahead: u32,
    /// Threads of the video decoder and of the encoder, each, for files (0: one per four cores, at least one;
    /// every encoder thread holds pictures of its own: about 30 MB each at 1080p).
    #[arg(long, default_value_t = EncodeSettings::default().threads)]
    pub(crate) codec_threads: u32,
    /// Frames before and after every detection that are redacted too (bridges detector misses) [default: from
    /// the frame rate: 5 up to 37 fps, 11 above; at least the tile period - 1].
    #[arg(long)]
    pub(crate) bridge_frames: Option<u32>,
    /// Small faces: also scan overlapping tiles of the frame scaled up by this factor (0: off).
    #[arg(long, default_value_t = DetectSettings::default().tile_scale)]
    pub(crate) tile_scale: f32,
    /// Video: spread the small-face tiles over this many frames (1: all tiles every frame) [default: from the
    /// frame rate: 6 up to 37 fps, 12 above; at most the bridge frames + 1].
    #[arg(long)]
    pub(crate) tile_period: Option<u32>,
    /// Longest side of the picture given to the detector, in pixels.
    #[arg(long, default_value_t = DetectSettings::default().max_side)]
    pub(crate) det_size: u32,
    /// Detector model (default: the shipped CenterFace of the chosen precision, found beside the binary or in
    /// the repository).
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// Detector precision: the shipped CenterFace as published (fp32, the default for everything), its 8-bit
    /// quantisation (int8, about 1.5x faster on CPUs, but it loses dark and tiny faces: see models/README.md),
    /// or auto: fp32 for still images, int8 for video.
    #[arg(long, value_enum, default_value = "fp32")]
    pub(crate) precision: PrecisionArg,
    /// Low light: contrast-equalise dark pictures (median brightness under 80 of 255) for the detector
    /// (auto), or never (off). Output pixels are not changed by it.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) low_light: LowLightArg,
    /// Threads for the detector (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub(crate) threads: usize,
    /// Inference runtime: cpu (ONNX Runtime's CPU provider, full precision), or openvino (OpenVINO with bf16:
    /// faster on CPUs with AMX only, and it loses some faces the default finds; install it with
    /// `FACEVEIL_OPENVINO=1 bash scripts/setup.sh`).
    #[arg(long, value_enum, default_value = "cpu")]
    pub(crate) runtime: RuntimeArg,
    /// Run the detector on the GPU through ONNX Runtime's CUDA provider (needs the `cuda` build).
    #[arg(long)]
    pub(crate) cuda: bool,
    /// The model that searches small faces (the magnified tiles and focus crops): yunet (built for small faces,
    /// a fraction of CenterFace's cost; CenterFace still searches the whole frame, and dark pictures and
    /// photos with both), or centerface (one model everywhere).
    #[arg(long, value_enum, default_value = "yunet")]
    pub(crate) small_detector: SmallDetectorArg,
    /// YuNet's score threshold (0..1), where it searches.
    #[arg(long, default_value_t = DetectSettings::default().small_threshold)]
    pub(crate) small_threshold: f32,
    /// Small-face model file (default: the shipped YuNet, found beside the binary or in the repository).
    #[arg(long)]
    pub(crate) small_model: Option<PathBuf>,
    /// Also search for faces turned on their side or upside down (people lying down, a camera mounted
    /// sideways or upside down without a rotation flag): photos are searched whole in each quarter turn
    /// (about 3x the time), video frames whole at full detector size, one turn at a time, as often as the full
    /// whole-frame pass (every third frame at 25 fps). Off by default: it adds some over-redaction.
    #[arg(long)]
    pub(crate) turned: bool,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum SmallDetectorArg {
    Yunet,
    Centerface,
}

impl SettingsArgs {
    pub(crate) fn options(&self) -> Options {
        let defaults = DetectSettings::default();
        Options {
            detect: DetectSettings {
                threshold: self.threshold,
                max_side: self.det_size,
                min_side: defaults.min_side.min(self.det_size),
                tile_scale: self.tile_scale,
                low_light: matches!(self.low_light, LowLightArg::Auto),
                small_detector: match self.small_detector {
                    SmallDetectorArg::Yunet => SmallDetector::YuNet,
                    SmallDetectorArg::Centerface => SmallDetector::CenterFace,
                },
                small_threshold: self.small_threshold,
                turned: self.turned,
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
            coast_frames: None,
            follow_camera: self.follow_camera,
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
        }
    }

    /// The detector this run uses (`threads`: for the detector, 0 for one per core).
    pub(crate) fn load_detector(&self, options: &Options, threads: usize) -> faceveil::Result<Box<dyn Detector>> {
        let choice = DetectorChoice {
            model: self.model.clone(),
            small_model: self.small_model.clone(),
            precision: match self.precision {
                PrecisionArg::Auto => Precision::Auto,
                PrecisionArg::Fp32 => Precision::Fp32,
                PrecisionArg::Int8 => Precision::Int8,
            },
            session: SessionOptions {
                intra_threads: threads,
                runtime_library: None,
                cuda: self.cuda,
                runtime: match self.runtime {
                    RuntimeArg::Cpu => Runtime::Cpu,
                    RuntimeArg::Openvino => Runtime::OpenVino,
                },
            },
        };
        load_detector(&choice, &options.detect)
    }
}

impl StreamArgs {
    /// How the input is read; `--realtime auto` paces anything but a regular file (or a followed one).
    pub(crate) fn live_settings(&self) -> faceveil::Result<LiveSettings> {
        let is_file = std::fs::metadata(&self.input).map(|m| m.is_file()).unwrap_or(false);
        let input_options = self
            .input_options
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                _ => Err(faceveil::Error::Config(format!("--input-option {kv:?}: expected KEY=VALUE"))),
            })
            .collect::<faceveil::Result<_>>()?;
        let live = LiveSettings {
            stall_timeout: std::time::Duration::from_secs(self.stall_timeout),
            follow: self.follow,
            realtime: match self.realtime {
                RealtimeArg::Auto => !is_file || self.follow,
                RealtimeArg::On => true,
                RealtimeArg::Off => false,
            },
            hold_effort: self.hold_effort,
            input_format: self.input_format.clone(),
            input_options,
        };
        live.validate()?;
        Ok(live)
    }

    /// The stream's options: live video has to leave the encoder as fast as it arrives, so the preset is
    /// [`LIVE_PRESET`](faceveil::config::LIVE_PRESET) unless given.
    pub(crate) fn options(&self) -> Options {
        let mut options = self.settings.options();
        if self.settings.preset.is_none() {
            options.encode.preset = faceveil::config::LIVE_PRESET.into();
        }
        options
    }
}

impl BatchArgs {
    /// How the batch runs: shard from the flag or the scheduler's environment, jobs (default half the cores).
    pub(crate) fn batch_settings(&self, cancel: Arc<AtomicBool>) -> faceveil::Result<BatchSettings> {
        let shard = match &self.shard {
            Some(s) => Some(Shard::parse(s)?),
            None => Shard::from_env(|k| std::env::var(k).ok())?,
        };
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let jobs = self.jobs.unwrap_or((cores / 2).max(1));
        if jobs == 0 {
            return Err(faceveil::Error::Config("invalid jobs 0 (expected >= 1)".into()));
        }
        Ok(BatchSettings {
            jobs,
            shard,
            fail_fast: self.fail_fast,
            images_as_png: self.images_as_png,
            review_sheets: self.review_sheets,
            time_limit: self.time_limit.map(std::time::Duration::from_secs),
            cancel: Some(cancel),
            allow_keep_regions: self.allow_keep_regions,
        })
    }
}

#[derive(clap::Args)]
pub(crate) struct ReviewArgs {
    /// The redacted video to review.
    pub(crate) output: PathBuf,
    /// The unredacted original: shown on the page on request (never written anywhere), and used by the
    /// verify pass to report only detections that still carry the original's detail.
    #[arg(long)]
    pub(crate) orig: Option<PathBuf>,
    /// The edit file the page saves (and loads if it exists) [default: OUTPUT.faceveil-edits.json].
    #[arg(long)]
    pub(crate) edits: Option<PathBuf>,
    /// Skip the verify pass (no findings marked).
    #[arg(long)]
    pub(crate) no_verify: bool,
}
