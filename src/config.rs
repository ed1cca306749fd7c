//! Settings of a whole run, validated up front.

use crate::detect::DetectSettings;
use crate::media::MediaKind;
use crate::redact::RedactSettings;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// What happens to audio streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AudioMode {
    /// Copy every audio stream unchanged; an audio stream the output container cannot hold is an error.
    #[default]
    Copy,
    /// Leave audio out.
    Drop,
}

/// Largest picture side faceveil accepts, in pixels.
pub const MAX_SIDE: u32 = 16384;
/// Largest picture area faceveil accepts (8192 × 8192): bounds the memory one frame can take.
pub const MAX_PIXELS: u64 = 8192 * 8192;

/// Refuses pictures outside the documented limits, with a message stating them.
pub fn check_picture_size(w: u32, h: u32) -> std::result::Result<(), String> {
    if w == 0 || h == 0 {
        return Err(format!("picture size {w}x{h} is empty"));
    }
    if w > MAX_SIDE || h > MAX_SIDE || w as u64 * h as u64 > MAX_PIXELS {
        return Err(format!(
            "picture size {w}x{h} exceeds the supported maximum (sides <= {MAX_SIDE}, area <= 8192x8192 = {} megapixels)",
            MAX_PIXELS / 1_000_000
        ));
    }
    Ok(())
}

/// What happens when the detector cannot analyse a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OnDetectorError {
    /// Stop with an error; no output is written.
    #[default]
    Fail,
    /// Replace the whole frame with flat grey, note it in the report, and go on.
    RedactFrame,
}

/// Video encoder settings (libx264).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodeSettings {
    /// x264 constant rate factor, 0 (lossless) to 51; 18 is visually lossless.
    pub crf: u8,
    /// x264 preset: `faster` by default ([`DEFAULT_PRESET`]), with less motion refinement than x264's own
    /// ([`subme`](Self::subme)).
    pub preset: String,
    /// x264 rate-control look-ahead, in frames, at most (the preset's own value where it is smaller). Every
    /// frame of look-ahead holds a picture and its analysis in the encoder: at 1080p, x264's `medium` (40
    /// frames) takes about 200 MB more than 10 frames.
    #[serde(default = "default_lookahead")]
    pub lookahead: u32,
    /// Threads of the video decoder and of the x264 encoder, each, for files (0: one per four cores, at least
    /// one). Every frame thread holds pictures of its own: at 1080p on 2 cores, FFmpeg's defaults (3 decoder
    /// and 3 encoder threads) take about 75 MB more than one each, and gain nothing while detection has the
    /// cores. Live streams keep FFmpeg's defaults (their encoder threads work on slices of one picture).
    #[serde(default)]
    pub threads: u32,
}

fn default_lookahead() -> u32 {
    10
}

/// The x264 preset of files. Redacted video costs the encoder more than the camera's own picture (masks that
/// move and change shape with every frame): at `medium` x264 took about a third of a hand-held 720p50 run's
/// CPU time. `faster` encodes the same redacted frames with 42 % less CPU on that clip and on a fixed-camera
/// crowd, 16–17 % less on the generated 720p and 1080p clips, for 0.06–0.19 dB of luma PSNR at the same CRF
/// (0.2–0.8 dB over the three planes) and files 1 % smaller to 4 % larger (docs/performance.md, 2026-12-06,
/// seventeenth stop). `fast` gave larger files than either. faceveil's `faster` refines motion less than
/// x264's own ([`EncodeSettings::subme`]).
pub const DEFAULT_PRESET: &str = "faster";

/// x264's subpixel motion refinement (`subme`) at [`DEFAULT_PRESET`] (x264's own `faster`: 4). Redacted video
/// costs x264 most in motion refinement (masks that move and change shape with every frame); at 2 the encoder
/// takes 14–24 % less CPU on faceveil's own frames of five clips (hand-held 720p50 and 720p25, a fixed-camera
/// crowd, the generated 720p clip, a street clip) for 0.01–0.23 dB of luma PSNR at the same CRF, in files from
/// 1.2 % smaller to 0.6 % larger; whole runs of the hand-held 720p50 clip 13–16 % faster (docs/performance.md,
/// 2026-12-07, twenty-fifth stop). It is `veryfast`'s refinement without its other cuts (one reference
/// frame, no trellis), which cost more quality and larger files for no more time saved.
pub const FASTER_SUBME: u8 = 2;

/// The x264 preset of `faceveil stream` (with x264's zero-latency tuning), unless given. A live run that
/// cannot keep up covers whatever it did not search with a mosaic, so encoder time saved is picture kept:
/// on 2 cores x264 at `veryfast` took about 30 % of a 720p50 run at the lowest effort. `superfast` codes the
/// same redacted frames with 38 % less encoder CPU there (32–46 % on a full-effort hand-held 720p25 run, a
/// fixed-camera crowd and a street clip) and, at the same CRF, at equal or higher quality (luma PSNR −2.4 to
/// +1.5 dB, above 52 dB where it falls) in files 9–33 % larger (docs/performance.md, 2026-12-06, twenty-first
/// stop). `--preset veryfast` keeps the smaller files where the machine has the time.
pub const LIVE_PRESET: &str = "superfast";

impl Default for EncodeSettings {
    fn default() -> Self {
        Self { crf: 18, preset: DEFAULT_PRESET.into(), lookahead: default_lookahead(), threads: 0 }
    }
}

const PRESETS: &[&str] =
    &["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"];

impl EncodeSettings {
    /// The `rc-lookahead` x264 gets: the preset's own look-ahead, capped at [`lookahead`](Self::lookahead).
    pub fn rc_lookahead(&self) -> u32 {
        let preset_default = match self.preset.as_str() {
            "ultrafast" | "superfast" => 0,
            "veryfast" => 10,
            "faster" => 20,
            "fast" => 30,
            "medium" => 40,
            "slow" => 50,
            _ => 60,
        };
        self.lookahead.min(preset_default)
    }

    /// The `subme` x264 gets in place of its preset's own: [`FASTER_SUBME`] at `faster`, the default; the
    /// preset's own (`None`) at every other preset.
    pub fn subme(&self) -> Option<u8> {
        (self.preset == DEFAULT_PRESET).then_some(FASTER_SUBME)
    }

    /// The decoder's and the encoder's thread count: [`threads`](Self::threads), or one per four cores.
    pub fn codec_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get() / 4).max(1),
            n => n as usize,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.threads > 64 {
            return Err(Error::Config(format!("invalid codec threads {} (expected <= 64)", self.threads)));
        }
        if self.lookahead > 250 {
            return Err(Error::Config(format!("invalid look-ahead {} (expected <= 250)", self.lookahead)));
        }
        if self.crf > 51 {
            return Err(Error::Config(format!("invalid crf {} (expected >= 0, <= 51)", self.crf)));
        }
        if !PRESETS.contains(&self.preset.as_str()) {
            return Err(Error::Config(format!(
                "invalid preset {:?} (expected one of {})",
                self.preset,
                PRESETS.join(", ")
            )));
        }
        Ok(())
    }
}

/// Everything that decides what a run does to a file's content: detection, redaction, bridging, streams
/// kept, encoding. Serialised into reports, and a batch's resume key (an output made with options that differ
/// in what its kind of media depends on, [`Options::affecting`], is redone). How a run goes (replacing
/// outputs, progress, limits) is in [`Extras`](crate::Extras).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Options {
    pub detect: DetectSettings,
    pub redact: RedactSettings,
    /// Frames before and after each detection that are also redacted (bridges detector misses). `None`: from
    /// the stream's frame rate ([`Options::schedule`]): 5 up to 37 frames a second, 11 above.
    pub bridge_frames: Option<u32>,
    /// Video: the small-face tiles are spread over this many consecutive frames (1: every tile every frame).
    /// Temporal bridging covers the frames in between, so it is at most `bridge_frames` + 1. `None`: from the
    /// frame rate (6 up to 37 frames a second, 12 above), and never past the bridging window.
    pub tile_period: Option<u32>,
    /// Video: frames a track is carried past its last detection. `None`: twice `bridge_frames` where that is
    /// given, else 10 (twice the base rate's window: [`Options::schedule`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coast_frames: Option<u32>,
    /// Video: measure the camera's shift between frames and bridge in scene coordinates, covering both where a
    /// lost head stood and where its velocity takes it ([`crate::track::motion`]). For hand-held and body-worn
    /// cameras: smaller files and about as many leaks on the hand-held benches, but off by default because the
    /// judge finds one leaked face-frame more on two of the five clips (docs/performance.md, 2026-12-05
    /// fourteenth stop).
    #[serde(default)]
    pub follow_camera: bool,
    pub audio: AudioMode,
    /// Fail closed: stop, or blank the frame the detector could not analyse. Never write it unredacted.
    pub on_detector_error: OnDetectorError,
    /// Keep container and stream metadata (titles, dates, locations, device names) and chapters. Off by default.
    pub keep_metadata: bool,
    pub encode: EncodeSettings,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            detect: DetectSettings::default(),
            redact: RedactSettings::default(),
            // From the frame rate (Options::schedule).
            bridge_frames: None,
            tile_period: None,
            coast_frames: None,
            follow_camera: false,
            audio: AudioMode::Copy,
            on_detector_error: OnDetectorError::Fail,
            keep_metadata: false,
            encode: EncodeSettings::default(),
        }
    }
}

/// A video stream's frame rate: `num` frames every `den` seconds (FFmpeg's and GStreamer's fraction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRate {
    pub num: u32,
    pub den: u32,
}

impl FrameRate {
    /// `None` where either part is 0 (a rate not stated, or FFmpeg's and GStreamer's "variable").
    pub fn new(num: u32, den: u32) -> Option<Self> {
        (num > 0 && den > 0).then_some(Self { num, den })
    }

    /// How many times [`BASE_RATE`] this rate is, rounded (29.97 is 1, 50 and 59.94 are 2), at least 1 and at
    /// most [`MAX_RATE_FACTOR`].
    pub fn factor(self) -> u32 {
        let (num, den) = (u64::from(self.num), u64::from(self.den));
        let base = u64::from(BASE_RATE) * den;
        ((2 * num + base) / (2 * base)).clamp(1, u64::from(MAX_RATE_FACTOR)) as u32
    }
}

impl std::fmt::Display for FrameRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.den {
            1 => write!(f, "{}", self.num),
            d => write!(f, "{}/{d}", self.num),
        }
    }
}

/// The frame rate the default schedule was measured at (25 fps, PAL cameras and most CCTV): streams up to
/// 37 frames a second run on it as they are.
pub const BASE_RATE: u32 = 25;
/// The schedule is stretched at most this many times: it was judged at 50 fps (docs/performance.md,
/// 2026-12-06 nineteenth stop); a faster camera gets the 50 fps schedule, which searches it more often for
/// its time.
pub const MAX_RATE_FACTOR: u32 = 2;
/// At the base rate, measured on hand-held clips of small faces (benches/handheld.sh, issue 14): tiles every
/// 6th frame with focus passes on known faces leak fewer face-frames than every 3rd without them, at 0.6× the
/// cost; bridging 5 frames each side.
const BASE_TILE_PERIOD: u32 = 6;
const BASE_BRIDGE_FRAMES: u32 = 5;

/// How a video stream is searched and bridged in frames, at its frame rate ([`Options::schedule`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Frames before and after each detection that are also redacted; the core holds this many + 1.
    pub bridge_frames: u32,
    /// The small-face tiles are spread over this many consecutive frames.
    pub tile_period: u32,
    /// A track is carried this many frames past its last detection.
    pub coast_frames: u32,
}

/// Memory the frames of one run may hold at once (the look-ahead, the stage queues, x264's look-ahead), in
/// bytes: 8 GiB. A run whose settings would need more for its picture size is refused before it starts, with
/// the figure, instead of being killed by the system part-way.
pub const WINDOW_BUDGET: u64 = 8 << 30;
/// x264 keeps about this many bytes per picture pixel for each frame of its rate-control look-ahead (30
/// frames at 1080p measured about 200 MB), in tenths.
const X264_TENTHS_PER_PIXEL: u64 = 32;
/// The per-frame core keeps two upright RGB copies of the newest frame (3 bytes a pixel each).
const CORE_RGB_BYTES_PER_PIXEL: u64 = 6;

impl Options {
    /// The schedule of a video stream of `rate` (`None`: unknown, taken as the base rate). The bridging window
    /// and the tile period not given are stretched with the rate: a 50 fps camera is searched and bridged over
    /// the same time as a 25 fps one (tiles every 12th frame, 11 frames bridged), so each frame costs about
    /// half as much. Tracks then coast twice the base rate's window (10 frames), not the same time: a
    /// coasting box grows and drifts by a share per frame, and twice the window at 50 fps covered a quarter
    /// more of the picture for no fewer leaks (docs/performance.md, 2026-12-06). A window given is coasted
    /// twice, as always: given values run as they did before the rate counted. A tile period not given never
    /// passes the window; a window not given always covers a tile period that was.
    pub fn schedule(&self, rate: Option<FrameRate>) -> Schedule {
        let k = rate.map_or(1, FrameRate::factor);
        let bridge_frames = self.bridge_frames.unwrap_or_else(|| {
            ((BASE_BRIDGE_FRAMES + 1) * k - 1).max(self.tile_period.map_or(0, |p| p.saturating_sub(1)))
        });
        let tile_period =
            self.tile_period.unwrap_or_else(|| (BASE_TILE_PERIOD * k).min(bridge_frames.saturating_add(1)));
        // Twice the window (gaps of up to three windows are covered): the window given, or the base rate's.
        let coast_frames =
            self.coast_frames.unwrap_or_else(|| self.bridge_frames.unwrap_or(BASE_BRIDGE_FRAMES).saturating_mul(2));
        Schedule { bridge_frames, tile_period, coast_frames }
    }

    /// These options with the bridging window and tile period of a stream of `rate` filled in: what a report
    /// records, and what a batch compares (a report made at another rate's schedule differs).
    pub fn at_rate(&self, rate: Option<FrameRate>) -> Options {
        let Schedule { bridge_frames, tile_period, coast_frames } = self.schedule(rate);
        Options {
            bridge_frames: Some(bridge_frames),
            tile_period: Some(tile_period),
            // Recorded only where it departs from twice the window (a report of 25 fps reads as before).
            coast_frames: (coast_frames != bridge_frames.saturating_mul(2)).then_some(coast_frames),
            ..self.clone()
        }
    }

    /// Bytes the frames of a run hold at once for `w × h` frames of `frame_bytes` bytes each at frame `rate`:
    /// the core's look-ahead (the schedule's `bridge_frames` + 2 frames) and `queued` frames in stage queues,
    /// the core's RGB copies, and, when `encoding`, x264's rate-control look-ahead.
    pub fn window_bytes(
        &self,
        rate: Option<FrameRate>,
        w: u32,
        h: u32,
        frame_bytes: u64,
        queued: u64,
        encoding: bool,
    ) -> u64 {
        let pixels = u64::from(w) * u64::from(h);
        let bridge = self.schedule(rate).bridge_frames;
        let held = (u64::from(bridge) + 2 + queued).saturating_mul(frame_bytes);
        let x264 =
            if encoding { u64::from(self.encode.rc_lookahead()) * pixels * X264_TENTHS_PER_PIXEL / 10 } else { 0 };
        held.saturating_add(x264).saturating_add(pixels * CORE_RGB_BYTES_PER_PIXEL)
    }

    /// Refuses settings whose frames would not fit in [`WINDOW_BUDGET`] at this picture size (see
    /// [`window_bytes`](Self::window_bytes)), naming what they would need.
    pub fn check_window(
        &self,
        rate: Option<FrameRate>,
        w: u32,
        h: u32,
        frame_bytes: u64,
        queued: u64,
        encoding: bool,
    ) -> Result<()> {
        let need = self.window_bytes(rate, w, h, frame_bytes, queued, encoding);
        if need <= WINDOW_BUDGET {
            return Ok(());
        }
        let gb = |b: u64| b as f64 / 1e9;
        let lookahead =
            if encoding { format!(" and look-ahead {}", self.encode.rc_lookahead()) } else { String::new() };
        Err(Error::Config(format!(
            "bridge frames {}{lookahead} at {w}x{h} would hold about {:.1} GB of frames at once, more than the {:.1} GB \
             a run may take: lower --bridge-frames{}",
            self.schedule(rate).bridge_frames,
            gb(need),
            gb(WINDOW_BUDGET),
            if encoding { " or --lookahead" } else { "" }
        )))
    }

    /// These options with every setting that cannot change an output of `kind` at its default: a batch
    /// compares what each output depends on, so a rerun with another encoder preset redoes the videos and
    /// keeps the photos. A photo depends on the detector, the redaction and what a failed detector does; not
    /// on bridging, tiles in time, the camera's motion, audio, metadata (never carried into a photo) or the
    /// encoder. A video depends on all of them.
    pub fn affecting(&self, kind: MediaKind) -> Options {
        match kind {
            MediaKind::Video => self.clone(),
            MediaKind::Image => {
                // Every field named: one added later must be placed on one side or the other.
                let Options {
                    detect,
                    redact,
                    on_detector_error,
                    bridge_frames: _,
                    tile_period: _,
                    coast_frames: _,
                    follow_camera: _,
                    audio: _,
                    keep_metadata: _,
                    encode: _,
                } = self.clone();
                Options { detect, redact, on_detector_error, ..Options::default() }
            }
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.detect.validate()?;
        self.redact.validate()?;
        self.encode.validate()?;
        if let Some(p) = self.tile_period.filter(|&p| p == 0 || p > 64) {
            return Err(Error::Config(format!("invalid tile period {p} (expected >= 1, <= 64)")));
        }
        if let Some(b) = self.bridge_frames.filter(|&b| b > 250) {
            return Err(Error::Config(format!("invalid bridge frames {b} (expected <= 250)")));
        }
        if let Some(c) = self.coast_frames.filter(|&c| c > 500) {
            return Err(Error::Config(format!("invalid coast frames {c} (expected <= 500)")));
        }
        // A tile is searched every `tile_period` frames; the frames between its turns are covered only by
        // bridging, so they must lie within the bridging window of a searched frame. Only both given can
        // disagree: the one not given follows the other (Options::schedule).
        if let (Some(period), Some(bridge)) = (self.tile_period, self.bridge_frames) {
            if self.detect.tile_scale > 0.0 && period > bridge + 1 {
                return Err(Error::Config(format!(
                    "invalid tile period {period} with {bridge} bridge frames (expected <= bridge frames + 1 = {}: \
                     the frames between a tile's turns are covered only by bridging)",
                    bridge + 1
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_threads_default_to_a_quarter_of_the_cores() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(EncodeSettings::default().codec_threads(), (cores / 4).max(1));
        assert_eq!(EncodeSettings { threads: 3, ..Default::default() }.codec_threads(), 3);
        let e = EncodeSettings { threads: 65, ..Default::default() }.validate().unwrap_err().to_string();
        assert!(e.contains("codec threads 65"), "{e}");
    }

    #[test]
    fn a_photo_depends_on_detection_and_redaction_a_video_on_every_setting() {
        let base = Options::default();
        let video_only = Options {
            bridge_frames: Some(9),
            tile_period: Some(3),
            follow_camera: true,
            audio: AudioMode::Drop,
            keep_metadata: true,
            encode: EncodeSettings { crf: 23, preset: "medium".into(), lookahead: 20, threads: 2 },
            ..Options::default()
        };
        assert_eq!(video_only.affecting(MediaKind::Image), base.affecting(MediaKind::Image));
        assert_ne!(video_only.affecting(MediaKind::Video), base.affecting(MediaKind::Video));
        let mut stricter = Options::default();
        stricter.detect.threshold = 0.2;
        let failing = Options { on_detector_error: OnDetectorError::RedactFrame, ..Default::default() };
        let mut pixelated = Options::default();
        pixelated.redact.style = crate::redact::Style::Pixelate;
        for changed in [stricter, failing, pixelated] {
            for kind in [MediaKind::Image, MediaKind::Video] {
                assert_ne!(changed.affecting(kind), base.affecting(kind), "{kind:?}: {changed:?}");
            }
        }
    }

    #[test]
    fn tile_period_must_stay_within_the_bridging_window_issue_15() {
        let both =
            |bridge, period| Options { bridge_frames: Some(bridge), tile_period: Some(period), ..Default::default() };
        let e = both(0, 6).validate().unwrap_err().to_string();
        assert!(e.contains("invalid tile period 6 with 0 bridge frames"), "{e}");
        let e = both(4, 6).validate().unwrap_err().to_string();
        assert!(e.contains("invalid tile period 6 with 4 bridge frames"), "{e}");
        Options::default().validate().unwrap();
        both(0, 1).validate().unwrap();
        both(2, 3).validate().unwrap();
        let mut no_tiles = both(0, 6);
        no_tiles.detect.tile_scale = 0.0;
        no_tiles.validate().unwrap();
        // Only one given: the other follows it, at every rate.
        for rate in [None, FrameRate::new(25, 1), FrameRate::new(50, 1)] {
            let s = Options { bridge_frames: Some(2), ..Default::default() }.schedule(rate);
            assert_eq!((s.bridge_frames, s.tile_period), (2, 3), "{rate:?}");
            let s = Options { tile_period: Some(20), ..Default::default() }.schedule(rate);
            assert_eq!((s.bridge_frames, s.tile_period), (19, 20), "{rate:?}");
        }
    }

    #[test]
    fn the_schedule_keeps_its_time_at_twice_the_base_rate_and_25_fps_is_unchanged() {
        let o = Options::default();
        let at = |num, den| o.schedule(FrameRate::new(num, den));
        let base = Schedule { bridge_frames: 5, tile_period: 6, coast_frames: 10 };
        for (num, den) in [(25, 1), (24, 1), (30, 1), (30000, 1001), (37, 1), (1, 1)] {
            assert_eq!(at(num, den), base, "{num}/{den}");
        }
        assert_eq!(o.schedule(None), base);
        let fast = Schedule { bridge_frames: 11, tile_period: 12, coast_frames: 10 };
        for (num, den) in [(38, 1), (50, 1), (60000, 1001), (60, 1), (120, 1), (1000, 1)] {
            assert_eq!(at(num, den), fast, "{num}/{den}");
        }
        // Given values run as before the rate counted, at every rate: coasting twice the window given.
        let given = Options { bridge_frames: Some(3), tile_period: Some(2), ..Default::default() };
        for rate in [None, FrameRate::new(25, 1), FrameRate::new(50, 1)] {
            assert_eq!(given.schedule(rate), Schedule { bridge_frames: 3, tile_period: 2, coast_frames: 6 });
        }
        let old_defaults = Options { bridge_frames: Some(5), tile_period: Some(6), ..Default::default() };
        assert_eq!(old_defaults.schedule(FrameRate::new(50, 1)), base);
        let old_at_50 = Options { bridge_frames: Some(11), tile_period: Some(12), ..Default::default() };
        assert_eq!(old_at_50.schedule(FrameRate::new(50, 1)).coast_frames, 22);
        // A report records the schedule it ran; options resolved once resolve the same again.
        let resolved = o.at_rate(FrameRate::new(50, 1));
        assert_eq!(
            (resolved.bridge_frames, resolved.tile_period, resolved.coast_frames),
            (Some(11), Some(12), Some(10))
        );
        assert_ne!(resolved, old_at_50.at_rate(FrameRate::new(50, 1)), "another schedule, another output");
        let at_25 = o.at_rate(FrameRate::new(25, 1));
        assert_eq!((at_25.bridge_frames, at_25.tile_period, at_25.coast_frames), (Some(5), Some(6), None));
        assert_eq!(resolved.at_rate(FrameRate::new(50, 1)), resolved);
        assert_eq!(resolved.schedule(FrameRate::new(50, 1)), fast);
        assert_eq!(FrameRate::new(0, 1), None);
        assert_eq!(FrameRate::new(30000, 1001).map(|r| r.to_string()).as_deref(), Some("30000/1001"));
    }

    #[test]
    fn frame_windows_beyond_the_budget_are_refused_with_what_they_need_issue_33() {
        // The largest picture faceveil takes, 4:2:0: the defaults fit; 250 bridge frames and look-ahead do not.
        let (w, h) = (8192, 8192);
        let frame = u64::from(w) * u64::from(h) * 3 / 2;
        let defaults = Options::default();
        defaults.check_window(None, w, h, frame, 8, true).unwrap();
        // A 50 fps stream holds six frames more.
        let fifty = FrameRate::new(50, 1);
        assert_eq!(
            defaults.window_bytes(fifty, w, h, frame, 8, true) - defaults.window_bytes(None, w, h, frame, 8, true),
            6 * frame
        );
        let greedy = Options {
            bridge_frames: Some(250),
            encode: EncodeSettings { lookahead: 250, preset: "veryslow".into(), ..Default::default() },
            ..Default::default()
        };
        greedy.validate().unwrap();
        let e = greedy.check_window(fifty, w, h, frame, 8, true).unwrap_err().to_string();
        assert!(e.contains("bridge frames 250 and look-ahead 60 at 8192x8192 would hold about 39.5 GB"), "{e}");
        assert!(e.contains("8.6 GB"), "{e}");
        // At 720p the same settings fit.
        greedy.check_window(None, 1280, 720, 1280 * 720 * 3 / 2, 8, true).unwrap();
    }

    #[test]
    fn defaults_are_valid() {
        Options::default().validate().unwrap();
    }

    #[test]
    fn out_of_range_values_name_the_range() {
        let o = Options { encode: EncodeSettings { crf: 60, ..Default::default() }, ..Default::default() };
        assert!(o.validate().unwrap_err().to_string().contains("expected >= 0, <= 51"));
        let o =
            Options { encode: EncodeSettings { preset: "quick".into(), ..Default::default() }, ..Default::default() };
        assert!(o.validate().unwrap_err().to_string().contains("ultrafast"));
    }
}
