//! Video through FFmpeg: demux → decode → detect → (temporal fill) → redact → encode → mux, as three stage
//! threads joined by bounded channels. Audio and subtitle packets go straight from the demuxer to the muxer
//! on their own unbounded path (the video path lags them by the look-ahead; a small bound there deadlocks,
//! and the lag itself bounds what that path holds).
//!
//! Frames are redacted in their decoded pixel format (planar YUV), with integer timestamps in the input
//! stream's time base throughout. Nothing is written to the final output name here: the caller passes a
//! temporary path and renames it only when this returns `Ok`.

use crate::config::{AudioMode, OnDetectorError, Options};
use crate::detect::{detect_in_frame, rotate_upright, Analyser, DetectSettings, Detection, Detector};
use crate::geom::{BBox, Rotation};
use crate::redact::{redact_channel, ChannelLayout};
use crate::track::TrackFill;
use crate::{Error, Result};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use ff::format::Pixel;
use ff::Rescale;
use ff::{codec, decoder, encoder, format, frame, media, picture, software, Packet, Rational};
use ffmpeg_next as ff;
use image::RgbImage;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

/// Frames queued between two stages. Memory is bounded by this × 2 + the temporal window, in frames.
const QUEUE: usize = 4;
/// Mask growth on frames analysed with reduced effort in a live run that fell behind.
const DEGRADED_MASK_GROWTH: f32 = 1.25;
/// Longest side of the whole-frame detection pass when a live run is far behind.
const DEGRADED_DETECT_SIDE: u32 = 640;
/// Corrupt packets in a row after which the input is given up as unreadable.
const MAX_CONSECUTIVE_ERRORS: u64 = 500;

/// Pixel formats redacted in place and accepted by libx264. Anything else is converted to yuv420p.
const IN_PLACE: &[Pixel] =
    &[Pixel::YUV420P, Pixel::YUVJ420P, Pixel::YUV422P, Pixel::YUVJ422P, Pixel::YUV444P, Pixel::YUVJ444P];

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

/// FFmpeg demuxers that turn text into pictures (ANSI art and the like): not footage.
const TEXT_DEMUXERS: &[&str] = &["tty", "bin", "xbin", "adf", "idf"];

fn is_text_demuxer(ictx: &format::context::Input) -> bool {
    ictx.format().name().split(',').any(|n| TEXT_DEMUXERS.contains(&n))
}

/// True when FFmpeg can open `path` and finds a video stream in it (text rendered as video does not count).
pub(crate) fn has_video_stream(path: &Path) -> bool {
    init().is_ok()
        && format::input(path)
            .map(|ictx| !is_text_demuxer(&ictx) && ictx.streams().best(media::Type::Video).is_some())
            .unwrap_or(false)
}

/// An opened input with its best video stream and a decoder for it.
pub(crate) struct OpenedVideo {
    ictx: format::context::Input,
    index: usize,
    time_base: Rational,
    /// The stream's display matrix, as stored.
    display_matrix: Option<Vec<u8>>,
    rotation: Rotation,
    decoder: decoder::Video,
}

/// Opens `path`, refuses text and oversized pictures, and prepares a frame-threaded decoder for the best
/// video stream, with `threads` frame threads (0: FFmpeg's choice).
fn open_video(path: &Path, threads: usize) -> Result<OpenedVideo> {
    init()?;
    let ictx = format::input(path).map_err(|e| Error::bad_input(path, format!("cannot read as media: {e}")))?;
    select_video(path, ictx, threads)
}

/// Opens any FFmpeg input (a URL, `pipe:0`, a device) with protocol options and, where probing cannot
/// tell (a v4l2 device, raw video), a named input format; `interrupt` is polled while FFmpeg waits for data
/// and aborts the wait when it returns true.
pub(crate) fn open_url(
    url: &str,
    label: &Path,
    input_format: Option<&str>,
    options: &[(&str, String)],
    interrupt: impl FnMut() -> bool + Send + 'static,
) -> Result<OpenedVideo> {
    init()?;
    ff::format::network::init();
    let bad = |reason: String| Error::bad_input(label, reason);
    let format_ptr = match input_format {
        Some(name) => {
            let c = std::ffi::CString::new(name).map_err(|_| bad(format!("invalid input format {name:?}")))?;
            // SAFETY: a NUL-terminated name; FFmpeg returns a pointer to a static format description or null.
            let f = unsafe { ff::ffi::av_find_input_format(c.as_ptr()) };
            if f.is_null() {
                return Err(Error::Config(format!("FFmpeg has no input format {name:?}")));
            }
            f
        }
        None => std::ptr::null(),
    };
    let c_url = std::ffi::CString::new(url).map_err(|_| bad("input name holds a NUL byte".into()))?;
    let mut dict = ff::Dictionary::new();
    for (k, v) in options {
        dict.set(k, v);
    }
    // SAFETY: the steps of ffmpeg-next's `input_with_interrupt_and_dictionary`, with an input format added:
    // the context is allocated here, owns the interrupt callback through its guard, and is freed by FFmpeg
    // when opening fails, or by `avformat_close_input` when reading the stream info fails.
    let ictx = unsafe {
        let mut ps = ff::ffi::avformat_alloc_context();
        if ps.is_null() {
            return Err(bad("out of memory".into()));
        }
        let interrupt = ff::util::interrupt::new(Box::new(interrupt));
        (*ps).interrupt_callback = interrupt.interrupt;
        let mut opts = dict.disown();
        let res = ff::ffi::avformat_open_input(&mut ps, c_url.as_ptr(), format_ptr as _, &mut opts);
        drop(ff::Dictionary::own(opts));
        if res < 0 {
            return Err(bad(format!("cannot open as media: {}", ff::Error::from(res))));
        }
        let res = ff::ffi::avformat_find_stream_info(ps, std::ptr::null_mut());
        if res < 0 {
            ff::ffi::avformat_close_input(&mut ps);
            return Err(bad(format!("cannot read stream information: {}", ff::Error::from(res))));
        }
        format::context::Input::wrap_with_interrupt(ps, interrupt.guard)
    };
    select_video(label, ictx, 0)
}

/// Picks the best video stream of an opened input and prepares a frame-threaded decoder for it (`threads`: 0
/// for FFmpeg's choice).
fn select_video(path: &Path, ictx: format::context::Input, threads: usize) -> Result<OpenedVideo> {
    let bad = |reason: String| Error::bad_input(path, reason);
    if is_text_demuxer(&ictx) {
        return Err(bad("a text file, not video".into()));
    }
    let ist = ictx.streams().best(media::Type::Video).ok_or_else(|| bad("no video stream".into()))?;
    let (index, time_base) = (ist.index(), ist.time_base());
    let display_matrix: Option<Vec<u8>> = ist
        .side_data()
        .find(|sd| sd.kind() == codec::packet::side_data::Type::DisplayMatrix)
        .map(|sd| sd.data().to_vec());
    let rotation = display_matrix.as_deref().map(rotation_of).unwrap_or_default();
    let mut dec_ctx =
        codec::context::Context::from_parameters(ist.parameters()).map_err(|e| bad(format!("video stream: {e}")))?;
    dec_ctx.set_threading(ff::threading::Config {
        count: threads,
        ..ff::threading::Config::kind(ff::threading::Type::Frame)
    });
    let decoder = dec_ctx
        .decoder()
        .video()
        .map_err(|e| bad(format!("no decoder for video codec {}: {e}", codec_name(&ist.parameters()))))?;
    crate::config::check_picture_size(decoder.width(), decoder.height())
        .map_err(|r| bad(format!("video stream: {r}")))?;
    Ok(OpenedVideo { ictx, index, time_base, display_matrix, rotation, decoder })
}

/// The codec's FFmpeg name, or its four-character tag when FFmpeg does not know it.
fn codec_name(par: &codec::Parameters) -> String {
    match par.id() {
        codec::Id::None => {
            // SAFETY: the parameters belong to a live stream; codec_tag is a plain integer.
            let tag = unsafe { (*par.as_ptr()).codec_tag }.to_le_bytes();
            let shown: String = tag.iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '?' }).collect();
            format!("unknown to FFmpeg (tag '{shown}')")
        }
        id => id.name().to_string(),
    }
}

/// Reads the frames of a video one by one as upright RGB at full resolution (single-threaded; for checking
/// outputs, not for the redaction pipeline).
pub(crate) struct FrameReader {
    path: PathBuf,
    ictx: format::context::Input,
    decoder: decoder::Video,
    scaler: software::scaling::Context,
    index: usize,
    time_base: (i32, i32),
    rotation: Rotation,
    eof: bool,
    count: u64,
    /// Packets (or the end-of-stream flush) the decoder refused: frames the reader could not return.
    send_errors: u64,
}

impl FrameReader {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let OpenedVideo { ictx, index, time_base: tb, rotation, decoder, .. } = open_video(path, 0)?;
        let bad = |reason: String| Error::bad_input(path, reason);
        let (w, h) = (decoder.width(), decoder.height());
        let scaler = software::scaling::Context::get(
            decoder.format(),
            w,
            h,
            Pixel::RGB24,
            w,
            h,
            software::scaling::Flags::BILINEAR,
        )
        .map_err(|e| bad(format!("scaler: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            ictx,
            decoder,
            scaler,
            index,
            time_base: (tb.numerator(), tb.denominator()),
            rotation,
            eof: false,
            count: 0,
            send_errors: 0,
        })
    }

    pub(crate) fn time_base(&self) -> (i32, i32) {
        self.time_base
    }

    /// Packets the decoder refused so far: when not 0, frames of the file were not returned.
    pub(crate) fn send_errors(&self) -> u64 {
        self.send_errors
    }

    /// The next frame: its pts and upright RGB picture; `None` at the end.
    pub(crate) fn next_frame(&mut self) -> Result<Option<(i64, RgbImage)>> {
        loop {
            let mut f = frame::Video::empty();
            if self.decoder.receive_frame(&mut f).is_ok() {
                let mut rgb = frame::Video::empty();
                self.scaler.run(&f, &mut rgb).map_err(|e| Error::bad_input(&self.path, format!("scaler: {e}")))?;
                self.count += 1;
                return Ok(Some((f.timestamp().unwrap_or(0), rotate_upright(packed_rgb(&rgb)?, self.rotation))));
            }
            if self.eof {
                return Ok(None);
            }
            let mut packet = Packet::empty();
            match packet.read(&mut self.ictx) {
                Ok(()) => {
                    if packet.stream() == self.index {
                        // A packet the decoder refuses loses frames: counted, so that a check over fewer frames
                        // than the file holds is not reported clean (see `send_errors`).
                        if self.decoder.send_packet(&packet).is_err() {
                            self.send_errors += 1;
                        }
                    }
                }
                Err(ff::Error::Eof) => {
                    self.eof = true;
                    if self.decoder.send_eof().is_err() {
                        self.send_errors += 1;
                    }
                }
                Err(ff::Error::InvalidData) => {}
                Err(e) => return Err(Error::bad_input(&self.path, format!("read error: {e}"))),
            }
        }
    }
}

struct Decoded {
    frame: frame::Video,
    index: u64,
    /// When its data was read from the input (for live latency).
    read_at: Instant,
}

struct Analysed {
    frame: frame::Video,
    index: u64,
    read_at: Instant,
    boxes: Vec<BBox>,
    /// The detector failed on this frame: it is written as flat grey, never as decoded.
    blank: bool,
}

#[derive(Default)]
pub(crate) struct DecodeStats {
    pub(crate) frames: u64,
    /// The input broke off with this error (a file: the run fails; a live stream: what was read is kept).
    pub(crate) input_error: Option<String>,
    /// The input was ended early by the stop flag.
    pub(crate) stopped: bool,
    /// Last frame's timestamp minus the first's (stream time base).
    pub(crate) media_span: i64,
    /// When the first frame's data was read.
    pub(crate) first_read: Option<Instant>,
    first_pts: Option<i64>,
    decode_errors: u64,
    /// Video packets the demuxer marked as damaged.
    corrupt_packets: u64,
    /// Frames the decoder returned with errors concealed (damaged data in the input).
    damaged_frames: u64,
    /// Gaps in the frame timestamps longer than 1.5 frame durations: estimated frames lost to damage.
    frames_missing: u64,
    converted_from: Option<Pixel>,
}

#[derive(Default)]
pub(crate) struct DetectStats {
    /// Frames analysed with reduced effort because a live run fell behind (see [`Pacer`]).
    pub(crate) frames_degraded: u64,
    pub(crate) tracks: u64,
    pub(crate) frames_blanked: u64,
    pub(crate) frames_with_faces: u64,
    pub(crate) detections: u64,
    pub(crate) max_faces: u64,
    /// Detector passes run, and passes answered from an unchanged region (see [`Analyser`]).
    pub(crate) passes_run: u64,
    pub(crate) passes_reused: u64,
}

/// Redacts the video `input` into `tmp` (a path whose extension names the container), filling in the
/// video fields of `report`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn redact_video(
    input: &Path,
    tmp: &Path,
    options: &Options,
    detector: &mut dyn Detector,
    report: &mut crate::report::Report,
    review: Option<&mut crate::review::ReviewCollector>,
    progress: Option<&(dyn Fn(u64, Option<u64>) + Sync)>,
    time_limit: Option<Duration>,
    cancel: Option<std::sync::Arc<AtomicBool>>,
) -> Result<()> {
    let opened = open_video(input, options.encode.codec_threads())?;
    let werr = |reason: String| Error::Encode { path: tmp.to_path_buf(), reason };
    let octx = format::output(tmp).map_err(|e| werr(format!("cannot create output container: {e}")))?;
    let (engine, layout) = plan(input, &opened, &octx, options, false)?;
    let mut sink = FileSink::open(tmp, octx, &layout)?;
    let watch = (time_limit.is_some() || cancel.is_some()).then(|| {
        let stop = cancel.clone().unwrap_or_else(|| std::sync::Arc::new(AtomicBool::new(false)));
        let w = Watch::new(stop, Duration::MAX);
        match time_limit {
            Some(limit) => w.until(limit),
            None => w,
        }
    });
    let run = Run { input, options, live: None, watch: watch.as_ref(), review, progress };
    let outcome = run_stages(run, opened, engine, &mut sink, detector)?;
    if outcome.decode.stopped {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Interrupted { path: input.to_path_buf() });
        }
        let seconds = time_limit.map(|d| d.as_secs()).unwrap_or_default();
        return Err(Error::TimeLimit { path: input.to_path_buf(), seconds });
    }
    outcome.fill_report(report);
    if let Some(e) = &outcome.decode.input_error {
        return Err(Error::bad_input(input, format!("read error: {e}")));
    }
    if outcome.written != outcome.decode.frames {
        return Err(werr(format!("{} frames decoded but {} written", outcome.decode.frames, outcome.written)));
    }
    Ok(())
}

/// What the stages need besides the input: the open encoder and what was decided about the picture.
pub(crate) struct Engine {
    pub(crate) encoder: encoder::Video,
    pub(crate) enc_tb: Rational,
    pub(crate) work_format: Pixel,
    pub(crate) warnings: Vec<String>,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) rotation: Rotation,
    pub(crate) total_estimate: Option<u64>,
    /// Per input stream: copied to the output.
    pub(crate) copied: Vec<bool>,
}

/// The output's streams, enough to start any number of outputs (one file, or one segment after another).
pub(crate) struct Layout {
    pub(crate) video_params: codec::Parameters,
    pub(crate) enc_tb: Rational,
    pub(crate) frame_rate: Rational,
    pub(crate) display_matrix: Option<Vec<u8>>,
    pub(crate) video_metadata: ff::Dictionary<'static>,
    pub(crate) global_metadata: ff::Dictionary<'static>,
    pub(crate) copies: Vec<CopySpec>,
    pub(crate) n_inputs: usize,
}

/// A stream copied unchanged (audio, subtitles).
pub(crate) struct CopySpec {
    pub(crate) input: usize,
    pub(crate) params: codec::Parameters,
    pub(crate) time_base: Rational,
    pub(crate) metadata: ff::Dictionary<'static>,
}

/// Decides, before the stages start, the encoder and which streams are copied or dropped. `container` is the
/// output (or the first segment) this is for: it decides which streams can be carried and whether the
/// encoder needs global headers. `live` tunes the encoder for low latency.
pub(crate) fn plan(
    input: &Path,
    opened: &OpenedVideo,
    container: &format::context::Output,
    options: &Options,
    live: bool,
) -> Result<(Engine, Layout)> {
    {
        let OpenedVideo { ictx, index: video_index, time_base: in_tb, display_matrix, rotation, decoder } = opened;
        let werr = |reason: String| Error::Encode { path: PathBuf::new(), reason };
        let ist = ictx.stream(*video_index).ok_or_else(|| Error::bad_input(input, "video stream vanished"))?;
        let total_estimate = match ist.frames() {
            n if n > 0 => Some(n as u64),
            _ => None,
        };
        let frame_rate = [ist.avg_frame_rate(), ist.rate()]
            .into_iter()
            .find(|r| r.numerator() > 0 && r.denominator() > 0)
            .unwrap_or(Rational(25, 1));
        let (width, height) = (decoder.width(), decoder.height());
        let work_format = work_format(decoder.format(), width, height);
        let global_header = container.format().flags().contains(format::Flags::GLOBAL_HEADER);
        let x264 = encoder::find_by_name("libx264").ok_or_else(|| werr("FFmpeg has no libx264 encoder".into()))?;
        let mut enc = codec::context::Context::new_with_codec(x264)
            .encoder()
            .video()
            .map_err(|e| werr(format!("libx264: {e}")))?;
        enc.set_width(width);
        enc.set_height(height);
        enc.set_format(work_format);
        enc.set_aspect_ratio(decoder.aspect_ratio());
        enc.set_time_base(*in_tb);
        enc.set_frame_rate(Some(frame_rate));
        if global_header {
            enc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        // SAFETY: both pointers are valid, open codec contexts owned here; only plain enum fields are copied.
        unsafe {
            let (d, e) = (decoder.as_ptr(), enc.as_mut_ptr());
            (*e).color_range = (*d).color_range;
            (*e).color_primaries = (*d).color_primaries;
            (*e).color_trc = (*d).color_trc;
            (*e).colorspace = (*d).colorspace;
            (*e).chroma_sample_location = (*d).chroma_sample_location;
        }
        let mut opts = ff::Dictionary::new();
        opts.set("crf", &options.encode.crf.to_string());
        opts.set("preset", &options.encode.preset);
        // A frame marked as a keyframe becomes an IDR picture: segments start with one.
        opts.set("forced-idr", "1");
        if live {
            // No frame reordering or rate-control look-ahead: each frame leaves the encoder at once.
            opts.set("tune", "zerolatency");
        } else {
            // Bounded encoder memory: x264 holds a picture per frame of rate-control look-ahead, and pictures
            // per frame thread.
            opts.set("rc-lookahead", &options.encode.rc_lookahead().to_string());
            opts.set("threads", &options.encode.codec_threads().to_string());
        }
        let encoder = enc.open_as_with(x264, opts).map_err(|e| werr(format!("cannot open libx264: {e}")))?;

        let mut copies = Vec::new();
        let mut warnings = Vec::new();
        for st in ictx.streams() {
            if st.index() == *video_index {
                continue;
            }
            let medium = st.parameters().medium();
            let codec_id = st.parameters().id();
            match medium {
                media::Type::Audio if options.audio == AudioMode::Drop => continue,
                media::Type::Audio | media::Type::Subtitle => {
                    // SAFETY: the output format pointer is valid for the life of `container`.
                    let supported = unsafe {
                        ff::ffi::avformat_query_codec(
                            container.format().as_ptr(),
                            codec_id.into(),
                            ff::ffi::FF_COMPLIANCE_NORMAL,
                        )
                    };
                    if supported == 0 {
                        let what = format!("{medium:?} stream {} ({codec_id:?})", st.index()).to_lowercase();
                        if medium == media::Type::Audio {
                            return Err(Error::StreamNotCarried {
                                path: input.to_path_buf(),
                                reason: format!(
                                    "{what} cannot be stored in the output container; choose another output format or pass --audio drop"
                                ),
                            });
                        }
                        warnings.push(format!("{what} dropped: the output container cannot hold it"));
                        continue;
                    }
                    copies.push(CopySpec {
                        input: st.index(),
                        params: st.parameters(),
                        time_base: st.time_base(),
                        metadata: stream_metadata(&st.metadata(), options.keep_metadata),
                    });
                }
                media::Type::Video => warnings.push(format!(
                    "extra video stream {} dropped: faceveil redacts one video stream per file",
                    st.index()
                )),
                _ => warnings.push(format!("{medium:?} stream {} dropped", st.index()).to_lowercase()),
            }
        }
        let mut copied = vec![false; ictx.nb_streams() as usize];
        for c in &copies {
            copied[c.input] = true;
        }
        let layout = Layout {
            video_params: codec::Parameters::from(&encoder),
            enc_tb: *in_tb,
            frame_rate,
            display_matrix: display_matrix.clone(),
            video_metadata: stream_metadata(&ist.metadata(), options.keep_metadata),
            global_metadata: if options.keep_metadata { ictx.metadata().to_owned() } else { ff::Dictionary::new() },
            copies,
            n_inputs: ictx.nb_streams() as usize,
        };
        let engine = Engine {
            encoder,
            enc_tb: *in_tb,
            work_format,
            warnings,
            width,
            height,
            rotation: *rotation,
            total_estimate,
            copied,
        };
        Ok((engine, layout))
    }
}

impl Layout {
    /// Adds the planned streams to `octx` and writes its header. Returns, per input stream, the output
    /// stream it goes to, and the output streams' time bases.
    pub(crate) fn start_output(&self, octx: &mut format::context::Output, path: &Path) -> Result<OutputStreams> {
        let werr = |reason: String| Error::Encode { path: path.to_path_buf(), reason };
        let mut ost = octx
            .add_stream(encoder::find(codec::Id::None))
            .map_err(|e| werr(format!("cannot add video stream: {e}")))?;
        let video = ost.index();
        ost.set_parameters(self.video_params.clone());
        ost.set_time_base(self.enc_tb);
        ost.set_avg_frame_rate(self.frame_rate);
        if let Some(dm) = &self.display_matrix {
            copy_side_data(&mut ost, dm);
        }
        ost.set_metadata(self.video_metadata.clone());
        let mut map = vec![None; self.n_inputs];
        for c in &self.copies {
            let mut ost =
                octx.add_stream(encoder::find(codec::Id::None)).map_err(|e| werr(format!("cannot add stream: {e}")))?;
            ost.set_parameters(c.params.clone());
            // SAFETY: the parameters belong to the stream just added; codec_tag 0 lets the muxer choose.
            unsafe {
                (*ost.parameters().as_mut_ptr()).codec_tag = 0;
            }
            ost.set_time_base(c.time_base);
            ost.set_metadata(c.metadata.clone());
            if let Some(slot) = map.get_mut(c.input) {
                *slot = Some((ost.index(), c.time_base));
            }
        }
        octx.set_metadata(self.global_metadata.clone());
        octx.write_header().map_err(|e| werr(format!("cannot write container header: {e}")))?;
        let tbs: Vec<Rational> = octx.streams().map(|s| s.time_base()).collect();
        Ok(OutputStreams {
            video,
            video_tb: tbs[video],
            map: map.into_iter().map(|m| m.map(|(o, itb)| (o, itb, tbs[o]))).collect(),
        })
    }
}

/// Where a started output's streams are: the video stream and, per input stream, (output index, input time
/// base, output time base) for the copied ones.
pub(crate) struct OutputStreams {
    pub(crate) video: usize,
    pub(crate) video_tb: Rational,
    pub(crate) map: Vec<Option<(usize, Rational, Rational)>>,
}

/// Where encoded packets go: one file, or a series of segments.
pub(crate) trait Sink {
    /// Asked for every frame before it is encoded (pts in the encoder's time base): true makes it a keyframe,
    /// where a new segment can start.
    fn wants_keyframe(&mut self, _pts: i64) -> bool {
        false
    }
    /// An encoded video packet (time base of the encoder).
    fn write_video(&mut self, pkt: Packet) -> Result<()>;
    /// A packet of a copied stream, with its input stream index and input time base.
    fn write_copy(&mut self, pkt: Packet) -> Result<()>;
    /// End of the run: the output is completed.
    fn finish(&mut self) -> Result<()>;
}

/// One output file (the caller's temporary path, or a pipe).
pub(crate) struct FileSink {
    path: PathBuf,
    octx: format::context::Output,
    streams: OutputStreams,
    enc_tb: Rational,
}

impl FileSink {
    pub(crate) fn open(path: &Path, mut octx: format::context::Output, layout: &Layout) -> Result<Self> {
        let streams = layout.start_output(&mut octx, path)?;
        Ok(Self { path: path.to_path_buf(), octx, streams, enc_tb: layout.enc_tb })
    }
}

impl Sink for FileSink {
    fn write_video(&mut self, mut pkt: Packet) -> Result<()> {
        pkt.set_stream(self.streams.video);
        pkt.rescale_ts(self.enc_tb, self.streams.video_tb);
        pkt.write_interleaved(&mut self.octx)
            .map_err(|e| Error::Encode { path: self.path.clone(), reason: format!("cannot write video packet: {e}") })
    }

    fn write_copy(&mut self, pkt: Packet) -> Result<()> {
        write_copied(&mut self.octx, &self.streams, pkt, 0, &self.path)
    }

    fn finish(&mut self) -> Result<()> {
        self.octx
            .write_trailer()
            .map_err(|e| Error::Encode { path: self.path.clone(), reason: format!("cannot finish container: {e}") })
    }
}

/// Writes a copied packet into `octx`, shifted back by `offset` (output video time base) for a segment that
/// starts later than the stream.
pub(crate) fn write_copied(
    octx: &mut format::context::Output,
    streams: &OutputStreams,
    mut pkt: Packet,
    offset: i64,
    path: &Path,
) -> Result<()> {
    let Some(Some((out, itb, otb))) = streams.map.get(pkt.stream()).copied() else { return Ok(()) };
    pkt.rescale_ts(itb, otb);
    if offset != 0 {
        let shift = offset.rescale(streams.video_tb, otb);
        pkt.set_pts(pkt.pts().map(|t| t - shift));
        pkt.set_dts(pkt.dts().map(|t| t - shift));
    }
    pkt.set_position(-1);
    pkt.set_stream(out);
    pkt.write_interleaved(octx)
        .map_err(|e| Error::Encode { path: path.to_path_buf(), reason: format!("cannot write packet: {e}") })
}

/// Settings of a run that are not redaction options.
pub(crate) struct Run<'a, 'r> {
    pub(crate) input: &'a Path,
    pub(crate) options: &'a Options,
    /// Live input: pace detection against the wall clock (see [`Pacer`]).
    pub(crate) live: Option<&'a (dyn Fn(LiveEvent) + Sync)>,
    /// A live input's stop flag and stall clock; a stop ends the input early and what was read is finished
    /// normally.
    pub(crate) watch: Option<&'a Watch>,
    pub(crate) review: Option<&'r mut crate::review::ReviewCollector>,
    pub(crate) progress: Option<&'a (dyn Fn(u64, Option<u64>) + Sync)>,
}

/// A live input's stop flag and stall clock, shared with FFmpeg's interrupt callback.
#[derive(Debug)]
pub(crate) struct Watch {
    pub(crate) stop: std::sync::Arc<AtomicBool>,
    pub(crate) stalled: AtomicBool,
    pub(crate) stall_ms: u64,
    start: Instant,
    /// Give up (as if stopped) at this time.
    deadline: Option<Instant>,
    /// Milliseconds from `start` to the last packet read.
    last_data: std::sync::atomic::AtomicU64,
}

impl Watch {
    pub(crate) fn new(stop: std::sync::Arc<AtomicBool>, stall: std::time::Duration) -> Self {
        Self {
            stop,
            stalled: AtomicBool::new(false),
            stall_ms: stall.as_millis() as u64,
            start: Instant::now(),
            deadline: None,
            last_data: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Stops the run once `limit` has passed from now.
    pub(crate) fn until(mut self, limit: Duration) -> Self {
        self.deadline = Instant::now().checked_add(limit);
        self
    }

    fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn touch(&self) {
        self.last_data.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// For FFmpeg's interrupt callback: true aborts the wait (a stop was asked for, or no data came for the
    /// stall timeout).
    pub(crate) fn should_abort(&self) -> bool {
        if self.stop_requested() {
            return true;
        }
        let idle = (self.start.elapsed().as_millis() as u64).saturating_sub(self.last_data.load(Ordering::Relaxed));
        if idle > self.stall_ms {
            self.stalled.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }
}

/// What happened in a live run, for its log.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// Detection changed its level of effort; `lag_ms` is how far behind real time the frame was.
    Degraded { frame: u64, level: u8, lag_ms: i64, what: &'static str },
    /// A frame left the encoder: its end-to-end latency (read from the input to written out).
    Latency { frame: u64, ms: f64 },
}

/// What the stages counted.
#[derive(Default)]
pub(crate) struct Outcome {
    pub(crate) decode: DecodeStats,
    pub(crate) detect: DetectStats,
    pub(crate) written: u64,
    pub(crate) redacted: u64,
    pub(crate) area: f64,
    pub(crate) warnings: Vec<String>,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) rotation: Rotation,
    pub(crate) streams_copied: u32,
    /// When the last frame was handed to the output.
    pub(crate) finished_at: Option<Instant>,
}

impl Outcome {
    fn fill_report(&self, out: &mut crate::report::Report) {
        let (dec, det) = (&self.decode, &self.detect);
        out.width = self.width;
        out.height = self.height;
        out.rotation_degrees = match self.rotation {
            Rotation::None => 0,
            Rotation::Cw90 => 90,
            Rotation::Cw180 => 180,
            Rotation::Cw270 => 270,
        };
        out.streams_copied = self.streams_copied;
        out.redacted_area_fraction = self.area;
        out.frames = dec.frames;
        out.decode_errors = dec.decode_errors;
        out.frames_written = self.written;
        out.frames_redacted = self.redacted;
        out.frames_with_faces = det.frames_with_faces;
        out.detections = det.detections;
        out.max_faces_in_frame = det.max_faces;
        out.damaged_frames = dec.damaged_frames;
        out.corrupt_packets = dec.corrupt_packets;
        out.frames_missing = dec.frames_missing;
        out.frames_blanked = det.frames_blanked;
        out.tracks = det.tracks;
        out.detector_passes = det.passes_run;
        out.detector_passes_reused = det.passes_reused;
        out.warnings = self.warnings.clone();
    }
}

/// Runs decode → detect/track → redact/encode/mux on three threads and returns what they counted. The
/// first real error wins over the "cancelled" that the other stages see as its consequence.
pub(crate) fn run_stages(
    mut run: Run<'_, '_>,
    opened: OpenedVideo,
    engine: Engine,
    sink: &mut dyn Sink,
    detector: &mut dyn Detector,
) -> Result<Outcome> {
    let OpenedVideo { ictx, index: video_index, decoder, .. } = opened;
    let Engine { encoder, enc_tb, work_format, rotation, total_estimate, copied, warnings, width, height } = engine;
    let mut out = Outcome {
        warnings,
        width,
        height,
        rotation,
        streams_copied: copied.iter().filter(|&&c| c).count() as u32,
        ..Default::default()
    };
    let (frame_tx, frame_rx) = bounded::<Decoded>(QUEUE);
    let (done_tx, done_rx) = bounded::<Analysed>(QUEUE);
    let (pkt_tx, pkt_rx) = unbounded::<Packet>();
    let (input, options) = (run.input, run.options);
    let window = options.bridge_frames as usize;
    let pacer = run.live.map(|log| Pacer::new(enc_tb, log));
    let watch = run.watch;

    let (dec_res, det_res, mux_res) = std::thread::scope(|s| {
        let dec = std::thread::Builder::new().name("faceveil-decode".into()).spawn_scoped(s, {
            let copied = &copied;
            move || decode_stage(input, ictx, decoder, video_index, work_format, copied, watch, frame_tx, pkt_tx)
        });
        let det = std::thread::Builder::new().name("faceveil-detect".into()).spawn_scoped(s, move || {
            detect_stage(input, detector, options, rotation, window, pacer, frame_rx, done_tx)
        });
        let review = run.review.take().map(|collector| Review { collector, rotation, scaler: None });
        let report_progress = |n: u64| {
            if let Some(p) = run.progress {
                p(n, total_estimate)
            }
        };
        let mux = mux_stage(sink, encoder, enc_tb, options, done_rx, pkt_rx, review, &report_progress, run.live);
        (join_stage(dec), join_stage(det), mux)
    });
    let (dec, det, (written, redacted, area, finished_at)) = match (dec_res, det_res, mux_res) {
        (Ok(d), Ok(t), Ok(m)) => (d, t, m),
        (d, t, m) => {
            let errors = [d.err(), t.err(), m.err()].into_iter().flatten();
            let mut cancelled = None;
            for e in errors {
                if matches!(e, Error::Cancelled) {
                    cancelled = Some(e);
                } else {
                    return Err(e);
                }
            }
            return Err(cancelled.unwrap_or(Error::Cancelled));
        }
    };
    if det.frames_blanked > 0 {
        out.warnings.push(format!("detector failed on {} frame(s); they were blanked", det.frames_blanked));
    }
    if det.frames_degraded > 0 {
        out.warnings.push(format!(
            "{} frame(s) analysed with reduced detection (the machine fell behind real time); their masks were enlarged",
            det.frames_degraded
        ));
    }
    if let Some(f) = dec.converted_from {
        out.warnings
            .push(format!("pixel format {f:?} converted to {work_format:?} for redaction and encoding").to_lowercase());
    }
    if dec.decode_errors > 0 {
        out.warnings.push(format!(
            "{} corrupt packets could not be decoded; their frames are not in the output",
            dec.decode_errors
        ));
    }
    if dec.damaged_frames + dec.corrupt_packets > 0 {
        out.warnings.push(format!(
            "damaged input: {} frame(s) decoded with concealed errors, {} packet(s) marked corrupt",
            dec.damaged_frames, dec.corrupt_packets
        ));
    }
    if dec.frames_missing > 0 {
        out.warnings
            .push(format!("about {} frame(s) missing from the input (gaps in its timestamps)", dec.frames_missing));
    }
    // A run stopped (interrupted, out of time) before its first frame says so, not "nothing decodable".
    if dec.frames == 0 && !dec.stopped {
        return Err(Error::bad_input(input, "no video frame could be decoded"));
    }
    out.decode = dec;
    out.detect = det;
    (out.written, out.redacted, out.area, out.finished_at) = (written, redacted, area, finished_at);
    Ok(out)
}

/// The pixel format frames are redacted and encoded in: the decoded one when libx264 takes it, else 8-bit
/// 4:2:0, or 4:4:4 where the picture has an odd size that subsampled chroma cannot encode.
fn work_format(src: Pixel, width: u32, height: u32) -> Pixel {
    let odd_w = width % 2 == 1;
    let odd_h = height % 2 == 1;
    let candidate = if IN_PLACE.contains(&src) { src } else { Pixel::YUV420P };
    let fits = match candidate {
        Pixel::YUV420P | Pixel::YUVJ420P => !odd_w && !odd_h,
        Pixel::YUV422P | Pixel::YUVJ422P => !odd_w,
        _ => true,
    };
    if fits {
        candidate
    } else if matches!(candidate, Pixel::YUVJ420P | Pixel::YUVJ422P) {
        Pixel::YUVJ444P
    } else {
        Pixel::YUV444P
    }
}

fn join_stage<T>(h: std::io::Result<std::thread::ScopedJoinHandle<'_, Result<T>>>) -> Result<T> {
    match h {
        Ok(h) => h.join().unwrap_or_else(|_| Err(Error::Internal("a pipeline thread panicked".into()))),
        Err(e) => Err(Error::io("thread", e)),
    }
}

#[allow(clippy::too_many_arguments)]
fn decode_stage(
    input: &Path,
    mut ictx: format::context::Input,
    mut decoder: decoder::Video,
    video_index: usize,
    work_format: Pixel,
    copied: &[bool],
    watch: Option<&Watch>,
    frame_tx: Sender<Decoded>,
    pkt_tx: Sender<Packet>,
) -> Result<DecodeStats> {
    let mut stats = DecodeStats::default();
    let mut converter: Option<software::scaling::Context> = None;
    let mut last_pts: Option<i64> = None;
    let mut last_duration: Option<i64> = None;
    let mut consecutive_errors = 0u64;
    let (width, height) = (decoder.width(), decoder.height());

    let mut read_at = Instant::now();
    let mut drain = |decoder: &mut decoder::Video, stats: &mut DecodeStats, read_at: Instant| -> Result<()> {
        let mut decoded = frame::Video::empty();
        while decoder.receive_frame(&mut decoded).is_ok() {
            if decoded.width() != width || decoded.height() != height {
                return Err(Error::bad_input(
                    input,
                    format!(
                        "picture size changes mid-stream ({width}x{height} to {}x{}), which faceveil does not support",
                        decoded.width(),
                        decoded.height()
                    ),
                ));
            }
            // SAFETY: `decoded` holds a valid frame just returned by the decoder; plain fields are read.
            // (The flag constant's integer type differs between FFmpeg versions, hence the cast.)
            #[allow(clippy::unnecessary_cast)]
            let concealed = unsafe {
                let f = decoded.as_ptr();
                (*f).decode_error_flags != 0 || ((*f).flags & ff::ffi::AV_FRAME_FLAG_CORRUPT as i32) != 0
            };
            if concealed {
                stats.damaged_frames += 1;
            }
            // A timestamp jump of more than 1.5 times the previous frame's own duration: frames were lost
            // (durations come from the container, so variable frame rate is not mistaken for loss).
            if let (Some(p), Some(l), Some(d)) = (decoded.timestamp(), last_pts, last_duration) {
                if d > 0 && p - l > d + d / 2 {
                    stats.frames_missing += ((p - l + d / 2) / d - 1) as u64;
                }
            }
            last_duration = Some(decoded.packet().duration).filter(|d| *d > 0);
            // Integer timestamps in the stream's time base; strictly increasing for the encoder.
            let pts = match (decoded.timestamp(), last_pts) {
                (Some(p), Some(l)) if p <= l => l + 1,
                (Some(p), _) => p,
                (None, Some(l)) => l + 1,
                (None, None) => 0,
            };
            last_pts = Some(pts);
            stats.first_read.get_or_insert(read_at);
            stats.media_span = pts - *stats.first_pts.get_or_insert(pts);
            let mut frame = if decoded.format() == work_format {
                std::mem::replace(&mut decoded, frame::Video::empty())
            } else {
                stats.converted_from.get_or_insert(decoded.format());
                let conv = match converter.as_mut() {
                    Some(c) => c,
                    None => converter.insert(
                        software::scaling::Context::get(
                            decoded.format(),
                            width,
                            height,
                            work_format,
                            width,
                            height,
                            software::scaling::Flags::BICUBIC,
                        )
                        .map_err(|e| Error::bad_input(input, format!("pixel format conversion: {e}")))?,
                    ),
                };
                let mut converted = frame::Video::empty();
                conv.run(&decoded, &mut converted)
                    .map_err(|e| Error::bad_input(input, format!("pixel format conversion: {e}")))?;
                converted
            };
            frame.set_pts(Some(pts));
            frame.set_kind(picture::Type::None);
            frame_tx.send(Decoded { frame, index: stats.frames, read_at }).map_err(|_| Error::Cancelled)?;
            stats.frames += 1;
        }
        Ok(())
    };

    let stopped = || watch.is_some_and(Watch::stop_requested);
    let mut packet = Packet::empty();
    // Time spent waiting for the input since the last video packet (not time blocked on a full pipeline): a
    // live input's video must keep coming, see below.
    let mut waiting_for_video = Duration::ZERO;
    loop {
        if stopped() {
            stats.stopped = true;
            break;
        }
        // The stall clock counts only time spent waiting for the input, not time blocked on a full pipeline.
        if let Some(w) = watch {
            w.touch();
        }
        let asked = Instant::now();
        let result = packet.read(&mut ictx);
        read_at = Instant::now();
        waiting_for_video += read_at - asked;
        match result {
            Ok(()) => {
                if let Some(w) = watch {
                    w.touch();
                }
                consecutive_errors = 0;
                if packet.is_corrupt() && packet.stream() == video_index {
                    stats.corrupt_packets += 1;
                }
            }
            Err(ff::Error::Eof) => break,
            Err(ff::Error::InvalidData) => {
                stats.decode_errors += 1;
                consecutive_errors += 1;
                if consecutive_errors > MAX_CONSECUTIVE_ERRORS {
                    return Err(Error::bad_input(input, "too many corrupt packets in a row; the file is unreadable"));
                }
                continue;
            }
            // Interrupted by the stop flag (a blocked network read), or the input broke off: what was read
            // is finished normally; the caller decides whether the error fails the run.
            Err(_) if stopped() => {
                stats.stopped = true;
                break;
            }
            Err(_) if watch.is_some_and(|w| w.stalled.load(Ordering::Relaxed)) => {
                stats.input_error = Some(format!(
                    "no data for {} s: the input stalled",
                    watch.map(|w| w.stall_ms / 1000).unwrap_or_default()
                ));
                break;
            }
            Err(e) => {
                stats.input_error = Some(e.to_string());
                break;
            }
        }
        let si = packet.stream();
        if si == video_index {
            waiting_for_video = Duration::ZERO;
            if let Err(e) = decoder.send_packet(&packet) {
                if e == (ff::Error::Other { errno: ff::error::EAGAIN }) {
                    drain(&mut decoder, &mut stats, read_at)?;
                    if decoder.send_packet(&packet).is_err() {
                        stats.decode_errors += 1;
                    }
                } else {
                    stats.decode_errors += 1;
                }
            }
            drain(&mut decoder, &mut stats, read_at)?;
        } else if let Some(w) = watch.filter(|w| waiting_for_video.as_millis() > w.stall_ms as u128) {
            // Audio (or another stream) still flows but the video stopped: that is a stall too. Without this the
            // other stream's packets would keep the stall clock going and pile up in the sink unboundedly.
            w.stalled.store(true, Ordering::Relaxed);
            stats.input_error =
                Some(format!("no video for {} s while other streams continue: the input stalled", w.stall_ms / 1000));
            break;
        } else if copied.get(si).copied().unwrap_or(false) {
            pkt_tx.send(packet).map_err(|_| Error::Cancelled)?;
        }
        packet = Packet::empty();
    }
    // End of input: flush the decoder (a truncated last packet is counted, not fatal).
    if decoder.send_eof().is_ok() {
        drain(&mut decoder, &mut stats, read_at)?;
    }
    Ok(stats)
}

#[allow(clippy::too_many_arguments)]
fn detect_stage(
    input: &Path,
    detector: &mut dyn Detector,
    options: &Options,
    rotation: Rotation,
    window: usize,
    mut pacer: Option<Pacer<'_>>,
    frame_rx: Receiver<Decoded>,
    done_tx: Sender<Analysed>,
) -> Result<DetectStats> {
    let mut stats = DetectStats::default();
    let reduced = DetectSettings {
        max_side: DEGRADED_DETECT_SIDE.min(options.detect.max_side),
        min_side: DEGRADED_DETECT_SIDE.min(options.detect.min_side),
        ..options.detect.clone()
    };
    // Tracks coast twice the look-ahead past their last detection: gaps up to three windows are covered.
    let mut fill: TrackFill<(frame::Video, u64, Instant, bool)> = TrackFill::new(window, 2 * window);
    let mut scaler: Option<(software::scaling::Context, u32, u32)> = None;
    // The scaler's output, reused from frame to frame (a fresh full-size RGB picture per frame costs its page
    // faults every time).
    let mut rgb = frame::Video::empty();
    // The picture size is fixed for the whole stream (the decode stage refuses changes), so the analyser
    // (which tiles apply, and their schedule) is made once, at the first frame.
    let mut analyser: Option<Analyser> = None;
    // Passes run outside the analyser (frames without tiles); the analyser counts its own.
    let mut untiled_passes = 0u64;
    for Decoded { frame, index, read_at } in frame_rx {
        let level = pacer.as_mut().map(|p| p.level(frame.pts().unwrap_or(0), read_at, index)).unwrap_or(0);
        let (w, h) = (frame.width(), frame.height());
        let frame_err = |e: Error| Error::Frame { path: input.to_path_buf(), frame: index, source: Box::new(e) };
        let (uw, uh) = rotation.upright_size(w, h);
        // Behind real time (level 1 and up) the small-face tiles are skipped; from level 2 the whole frame is
        // searched at a lower resolution.
        let analyser =
            analyser.get_or_insert_with(|| Analyser::new(options.detect.clone(), options.tile_period, uw, uh));
        let tiled = analyser.tile_count() > 0 && level == 0;
        let whole = if level >= 2 { &reduced } else { &options.detect };
        // Without tiles, scale straight from the decoded format to RGB at the detector's size; with tiles,
        // convert once at full resolution and let the multi-scale pass cut and scale.
        let (dw, dh) = if tiled { (uw, uh) } else { whole.input_size(uw, uh) };
        let (sw, sh) = match rotation {
            Rotation::Cw90 | Rotation::Cw270 => (dh, dw),
            _ => (dw, dh),
        };
        if scaler.as_ref().map(|(_, a, b)| (*a, *b)) != Some((sw, sh)) {
            let ctx = software::scaling::Context::get(
                frame.format(),
                w,
                h,
                Pixel::RGB24,
                sw,
                sh,
                software::scaling::Flags::AREA,
            )
            .map_err(|e| frame_err(Error::bad_input(input, format!("scaler: {e}"))))?;
            scaler = Some((ctx, sw, sh));
            rgb = frame::Video::empty();
        }
        if let Some((ctx, _, _)) = scaler.as_mut() {
            ctx.run(&frame, &mut rgb).map_err(|e| frame_err(Error::bad_input(input, format!("scaler: {e}"))))?;
        }
        let upright = rotate_upright(packed_rgb(&rgb).map_err(frame_err)?, rotation);
        let attempt: Result<Vec<Detection>> = if level >= 3 && options.bridge_frames > 0 && index % 2 == 1 {
            // Far behind real time: every other frame is left to the tracker, which bridges it from the frames
            // on both sides (their masks are enlarged below). Without bridging no frame is skipped.
            Ok(Vec::new())
        } else if tiled {
            analyser.analyse(detector, &upright).map(|found| {
                found
                    .into_iter()
                    .map(|d| Detection { bbox: rotation.box_to_stored(&d.bbox, w, h).clamped(w, h), ..d })
                    .filter(|d| d.bbox.is_valid())
                    .collect()
            })
        } else {
            untiled_passes += 1;
            detect_in_frame(detector, &upright, rotation, w, h)
        };
        let (found, blank) = match attempt {
            Ok(found) => (found, false),
            Err(_) if options.on_detector_error == OnDetectorError::RedactFrame => {
                stats.frames_blanked += 1;
                (Vec::new(), true)
            }
            Err(e) => return Err(frame_err(e)),
        };
        if !found.is_empty() {
            stats.frames_with_faces += 1;
        }
        stats.detections += found.len() as u64;
        stats.max_faces = stats.max_faces.max(found.len() as u64);
        let boxes = if level == 0 {
            found.iter().map(|d| d.bbox).collect()
        } else {
            // Reduced detection is paid for with larger masks: when in doubt, redact more.
            stats.frames_degraded += 1;
            found.iter().map(|d| d.bbox.scaled(DEGRADED_MASK_GROWTH).clamped(w, h)).collect()
        };
        if let Some(((frame, index, read_at, blank), boxes)) = fill.push((frame, index, read_at, blank), boxes) {
            done_tx.send(Analysed { frame, index, read_at, boxes, blank }).map_err(|_| Error::Cancelled)?;
        }
    }
    for ((frame, index, read_at, blank), boxes) in fill.finish() {
        done_tx.send(Analysed { frame, index, read_at, boxes, blank }).map_err(|_| Error::Cancelled)?;
    }
    stats.tracks = fill.tracks_started();
    let scheduled = analyser.map(|a| a.stats()).unwrap_or_default();
    (stats.passes_run, stats.passes_reused) = (untiled_passes + scheduled.passes_run, scheduled.passes_reused);
    Ok(stats)
}

/// Copies an RGB24 frame (rows padded to its stride) into a tightly packed image.
fn packed_rgb(f: &frame::Video) -> Result<RgbImage> {
    let (w, h) = (f.width() as usize, f.height() as usize);
    let stride = f.stride(0);
    let data = f.data(0);
    // A picture that does not fit its buffer is an error, never a black picture ("no face here").
    let unfit = || Error::Internal(format!("{w}x{h} RGB picture does not fit its buffer ({} bytes)", data.len()));
    if h > 0 && (stride < w * 3 || data.len() < (h - 1) * stride + w * 3) {
        return Err(unfit());
    }
    let mut buf = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        buf.extend_from_slice(&data[y * stride..y * stride + w * 3]);
    }
    RgbImage::from_raw(w as u32, h as u32, buf).ok_or_else(unfit)
}

/// Flat mid-grey over every plane (Y, Cb and Cr at 128).
fn blank_frame(frame: &mut frame::Video) -> Result<()> {
    // SAFETY: as in redact_frame.
    let rc = unsafe { ff::ffi::av_frame_make_writable(frame.as_mut_ptr()) };
    if rc < 0 {
        return Err(Error::Encode {
            path: PathBuf::new(),
            reason: format!("cannot make frame writable: {}", ff::Error::from(rc)),
        });
    }
    for plane in 0..frame.planes() {
        frame.data_mut(plane).fill(128);
    }
    Ok(())
}

fn redact_frame(frame: &mut frame::Video, boxes: &[BBox], options: &Options) -> Result<()> {
    // SAFETY: the frame is valid; make_writable copies its buffers if the decoder still references them, so
    // redaction never alters the decoder's reference pictures.
    let rc = unsafe { ff::ffi::av_frame_make_writable(frame.as_mut_ptr()) };
    if rc < 0 {
        return Err(Error::Encode {
            path: PathBuf::new(),
            reason: format!("cannot make frame writable: {}", ff::Error::from(rc)),
        });
    }
    let format = frame.format();
    let (sx, sy) = format.descriptor().map(|d| (d.log2_chroma_w(), d.log2_chroma_h())).unwrap_or((1, 1));
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
        redact_channel(frame.data_mut(plane), &layout, boxes, &options.redact)?;
    }
    Ok(())
}

/// Thumbnails of redacted frames for the review sheet, made in the mux thread (the scaler is not `Send`).
struct Review<'a> {
    collector: &'a mut crate::review::ReviewCollector,
    rotation: Rotation,
    scaler: Option<software::scaling::Context>,
}

impl Review<'_> {
    /// Best effort: a frame whose thumbnail cannot be made is simply not on the sheet.
    fn offer(&mut self, frame: &frame::Video, index: u64, faces: usize, tb: Rational) {
        if !self.collector.wants(index, faces) {
            return;
        }
        let (w, h) = (frame.width(), frame.height());
        let (uw, _) = self.rotation.upright_size(w, h);
        let scale = crate::review::THUMB_WIDTH as f64 / uw.max(1) as f64;
        let (tw, th) = (((w as f64 * scale).round() as u32).max(1), ((h as f64 * scale).round() as u32).max(1));
        if self.scaler.is_none() {
            self.scaler = software::scaling::Context::get(
                frame.format(),
                w,
                h,
                Pixel::RGB24,
                tw,
                th,
                software::scaling::Flags::AREA,
            )
            .ok();
        }
        let Some(scaler) = self.scaler.as_mut() else { return };
        let mut rgb = frame::Video::empty();
        if scaler.run(frame, &mut rgb).is_err() {
            return;
        }
        // A thumbnail that cannot be made is left off the sheet (the sheet only shows redacted pixels).
        let Ok(picture) = packed_rgb(&rgb) else { return };
        let thumb = rotate_upright(picture, self.rotation);
        let time = crate::verify::time_code(frame.pts().unwrap_or(0), (tb.numerator(), tb.denominator()));
        self.collector.offer(index, time, faces, &thumb);
    }
}

#[allow(clippy::too_many_arguments)]
fn mux_stage(
    sink: &mut dyn Sink,
    mut encoder: encoder::Video,
    enc_tb: Rational,
    options: &Options,
    done_rx: Receiver<Analysed>,
    pkt_rx: Receiver<Packet>,
    mut review: Option<Review<'_>>,
    progress: &dyn Fn(u64),
    live: Option<&(dyn Fn(LiveEvent) + Sync)>,
) -> Result<(u64, u64, f64, Option<Instant>)> {
    let mut area_sum = 0f64;
    let werr = |reason: String| Error::Encode { path: PathBuf::new(), reason };
    let (mut written, mut redacted) = (0u64, 0u64);
    // Frames inside the encoder, for live latency: (pts, frame index, read at).
    let mut in_encoder: VecDeque<(i64, u64, Instant)> = VecDeque::new();
    let write_encoded = |encoder: &mut encoder::Video,
                         sink: &mut dyn Sink,
                         in_encoder: &mut VecDeque<(i64, u64, Instant)>|
     -> Result<()> {
        let mut pkt = Packet::empty();
        loop {
            // "Needs more input" and "flushed" end the loop; any other error is the encoder failing, and the
            // run fails rather than end with frames missing.
            match encoder.receive_packet(&mut pkt) {
                Ok(()) => {}
                Err(ff::Error::Eof) => break,
                Err(e) if e == (ff::Error::Other { errno: ff::error::EAGAIN }) => break,
                Err(e) => return Err(werr(format!("encoder failed: {e}"))),
            }
            let pts = pkt.pts().unwrap_or(i64::MIN);
            sink.write_video(std::mem::replace(&mut pkt, Packet::empty()))?;
            if let Some(log) = live {
                while in_encoder.front().is_some_and(|(p, _, _)| *p <= pts) {
                    if let Some((_, frame, read_at)) = in_encoder.pop_front() {
                        log(LiveEvent::Latency { frame, ms: read_at.elapsed().as_secs_f64() * 1000.0 });
                    }
                }
            }
        }
        Ok(())
    };
    let (mut video_open, mut pkts_open) = (true, true);
    let never = crossbeam_channel::never::<Packet>();
    while video_open || pkts_open {
        crossbeam_channel::select! {
            recv(done_rx) -> msg => match msg {
                Ok(Analysed { mut frame, index, read_at, boxes, blank }) => {
                    let frame_err = |e: Error| Error::Frame { path: PathBuf::new(), frame: index, source: Box::new(e) };
                    if blank {
                        blank_frame(&mut frame).map_err(frame_err)?;
                        redacted += 1;
                        area_sum += 1.0;
                    } else if !boxes.is_empty() {
                        redact_frame(&mut frame, &boxes, options).map_err(frame_err)?;
                        redacted += 1;
                        area_sum += crate::redact::mask_area_fraction(&boxes, &options.redact, frame.width(), frame.height());
                    }
                    if let Some(r) = review.as_mut() {
                        r.offer(&frame, index, boxes.len(), enc_tb);
                    }
                    let pts = frame.pts().unwrap_or(0);
                    if sink.wants_keyframe(pts) {
                        frame.set_kind(picture::Type::I);
                    }
                    encoder.send_frame(&frame).map_err(|e| werr(format!("encoder rejected frame {index}: {e}")))?;
                    if live.is_some() {
                        in_encoder.push_back((pts, index, read_at));
                    }
                    written += 1;
                    progress(written);
                    write_encoded(&mut encoder, sink, &mut in_encoder)?;
                }
                Err(_) => { video_open = false; }
            },
            recv(if pkts_open { &pkt_rx } else { &never }) -> msg => match msg {
                Ok(pkt) => sink.write_copy(pkt)?,
                Err(_) => { pkts_open = false; }
            },
        }
    }
    encoder.send_eof().map_err(|e| werr(format!("encoder flush: {e}")))?;
    write_encoded(&mut encoder, sink, &mut in_encoder)?;
    sink.finish()?;
    let finished_at = Instant::now();
    Ok((written, redacted, if written > 0 { area_sum / written as f64 } else { 0.0 }, Some(finished_at)))
}

/// Paces detection in a live run against the wall clock. A frame's lag is how long after its due time (the
/// first frame's arrival plus its timestamp's distance from the first) the detector gets to it. As the lag
/// passes 1, 2 and 3 seconds, effort drops a level: 1 skips the small-face tiles, 2 also searches the whole
/// frame at 640 pixels, 3 also leaves every other frame to the tracker (bridged from its neighbours). Masks
/// grow by a quarter on every such frame. Effort comes back one level at a time once the lag is under
/// 300 ms. No frame is ever passed on unanalysed and unbridged; a machine too slow even at level 3 falls
/// behind the input instead (a pipe writer waits; a network input may drop data, which is reported).
pub(crate) struct Pacer<'a> {
    tb: Rational,
    start: Option<(Instant, i64)>,
    level: u8,
    log: &'a (dyn Fn(LiveEvent) + Sync),
}

impl<'a> Pacer<'a> {
    const STEP_MS: i64 = 1000;
    const CAUGHT_UP_MS: i64 = 300;
    const MAX_LEVEL: u8 = 3;

    pub(crate) fn new(tb: Rational, log: &'a (dyn Fn(LiveEvent) + Sync)) -> Self {
        Self { tb, start: None, level: 0, log }
    }

    /// The effort level for this frame (0 full).
    fn level(&mut self, pts: i64, read_at: Instant, frame: u64) -> u8 {
        let (t0, p0) = *self.start.get_or_insert((read_at, pts));
        let media_ms = (pts - p0).rescale(self.tb, Rational(1, 1000));
        let lag = t0.elapsed().as_millis() as i64 - media_ms;
        let wanted = (lag / Self::STEP_MS).clamp(0, i64::from(Self::MAX_LEVEL)) as u8;
        let level = if wanted > self.level {
            wanted
        } else if self.level > 0 && lag < Self::CAUGHT_UP_MS {
            self.level - 1
        } else {
            self.level
        };
        if level != self.level {
            self.level = level;
            let what = match level {
                0 => "full detection restored",
                1 => "small-face tiles skipped, masks enlarged",
                2 => "whole frame searched at 640 px, no tiles, masks enlarged",
                _ => "detecting every other frame at 640 px, bridged by tracking, masks enlarged",
            };
            (self.log)(LiveEvent::Degraded { frame, level, lag_ms: lag, what });
        }
        level
    }
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

fn copy_side_data(ost: &mut format::stream::StreamMut<'_>, data: &[u8]) {
    // SAFETY: av_stream_new_side_data allocates `data.len()` bytes owned by the stream, which we fill.
    unsafe {
        let dst = ff::ffi::av_stream_new_side_data(
            ost.as_mut_ptr(),
            ff::ffi::AVPacketSideDataType::AV_PKT_DATA_DISPLAYMATRIX,
            data.len() as _,
        );
        if !dst.is_null() {
            std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len());
        }
    }
}

/// Stream metadata to carry: everything with --keep-metadata, otherwise only the language tag.
fn stream_metadata(src: &ff::DictionaryRef<'_>, keep_all: bool) -> ff::Dictionary<'static> {
    let mut d = ff::Dictionary::new();
    for (k, v) in src.iter() {
        if keep_all || k == "language" {
            d.set(k, v);
        }
    }
    d
}
