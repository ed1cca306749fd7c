//! Video through FFmpeg: demux → decode → detect → (temporal fill) → redact → encode → mux, as three stage
//! threads joined by bounded channels. Audio and subtitle packets go straight from the demuxer to the muxer
//! on their own unbounded path (the video path lags them by the look-ahead; a small bound there deadlocks,
//! and the lag itself bounds what that path holds).
//!
//! Frames are redacted in their decoded pixel format (planar YUV), with integer timestamps in the input
//! stream's time base throughout. Nothing is written to the final output name here: the caller passes a
//! temporary path and renames it only when this returns `Ok`.

use crate::config::{AudioMode, OnDetectorError, Options};
use crate::detect::{detect_in_frame, detect_multiscale, rotate_upright, tiles, Detection, Detector};
use crate::geom::{BBox, Rotation};
use crate::redact::{redact_channel, ChannelLayout};
use crate::track::TrackFill;
use crate::{Error, Result};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use ff::format::Pixel;
use ff::{codec, decoder, encoder, format, frame, media, picture, software, Packet, Rational};
use ffmpeg_next as ff;
use image::RgbImage;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// Frames queued between two stages. Memory is bounded by this × 2 + the temporal window, in frames.
const QUEUE: usize = 8;
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
        ff::util::log::set_level(ff::util::log::Level::Fatal);
    });
    result
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
struct OpenedVideo {
    ictx: format::context::Input,
    index: usize,
    time_base: Rational,
    /// The stream's display matrix, as stored.
    display_matrix: Option<Vec<u8>>,
    rotation: Rotation,
    decoder: decoder::Video,
}

/// Opens `path`, refuses text and oversized pictures, and prepares a frame-threaded decoder for the best
/// video stream.
fn open_video(path: &Path) -> Result<OpenedVideo> {
    init()?;
    let bad = |reason: String| Error::bad_input(path, reason);
    let ictx = format::input(path).map_err(|e| bad(format!("cannot read as media: {e}")))?;
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
    dec_ctx.set_threading(ff::threading::Config::kind(ff::threading::Type::Frame));
    let decoder = dec_ctx
        .decoder()
        .video()
        .map_err(|e| bad(format!("no decoder for video codec {}: {e}", codec_name(&ist.parameters()))))?;
    crate::config::check_picture_size(decoder.width(), decoder.height())
        .map_err(|r| bad(format!("video stream: {r}")))?;
    drop(ist);
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
}

impl FrameReader {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let OpenedVideo { ictx, index, time_base: tb, rotation, decoder, .. } = open_video(path)?;
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
        })
    }

    pub(crate) fn time_base(&self) -> (i32, i32) {
        self.time_base
    }

    /// The next frame: its pts and upright RGB picture; `None` at the end.
    pub(crate) fn next_frame(&mut self) -> Result<Option<(i64, RgbImage)>> {
        loop {
            let mut f = frame::Video::empty();
            if self.decoder.receive_frame(&mut f).is_ok() {
                let mut rgb = frame::Video::empty();
                self.scaler.run(&f, &mut rgb).map_err(|e| Error::bad_input(&self.path, format!("scaler: {e}")))?;
                self.count += 1;
                return Ok(Some((f.timestamp().unwrap_or(0), rotate_upright(packed_rgb(&rgb), self.rotation))));
            }
            if self.eof {
                return Ok(None);
            }
            let mut packet = Packet::empty();
            match packet.read(&mut self.ictx) {
                Ok(()) => {
                    if packet.stream() == self.index {
                        let _ = self.decoder.send_packet(&packet);
                    }
                }
                Err(ff::Error::Eof) => {
                    self.eof = true;
                    let _ = self.decoder.send_eof();
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
}

struct Analysed {
    frame: frame::Video,
    index: u64,
    boxes: Vec<BBox>,
    /// The detector failed on this frame: it is written as flat grey, never as decoded.
    blank: bool,
}

#[derive(Default)]
struct DecodeStats {
    frames: u64,
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
struct DetectStats {
    tracks: u64,
    frames_blanked: u64,
    frames_with_faces: u64,
    detections: u64,
    max_faces: u64,
}

/// Redacts the video `input` into `tmp` (a path whose extension names the container), filling in the
/// video fields of `report`.
pub(crate) fn redact_video(
    input: &Path,
    tmp: &Path,
    options: &Options,
    detector: &mut dyn Detector,
    report: &mut crate::report::Report,
    review: Option<&mut crate::review::ReviewCollector>,
    progress: Option<&(dyn Fn(u64, Option<u64>) + Sync)>,
) -> Result<()> {
    let OpenedVideo { ictx, index: video_index, time_base: in_tb, display_matrix, rotation, decoder } =
        open_video(input)?;
    let ist = ictx.stream(video_index).ok_or_else(|| Error::bad_input(input, "video stream vanished"))?;
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

    let out = report;
    out.width = width;
    out.height = height;
    out.rotation_degrees = match rotation {
        Rotation::None => 0,
        Rotation::Cw90 => 90,
        Rotation::Cw180 => 180,
        Rotation::Cw270 => 270,
    };

    // ---- output container and streams ----
    let werr = |reason: String| Error::Encode { path: tmp.to_path_buf(), reason };
    let mut octx = format::output(tmp).map_err(|e| werr(format!("cannot create output container: {e}")))?;
    let global_header = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);
    let x264 = encoder::find_by_name("libx264").ok_or_else(|| werr("FFmpeg has no libx264 encoder".into()))?;

    // stream_map[input index] = output index for copied streams
    let mut stream_map: Vec<Option<usize>> = vec![None; ictx.nb_streams() as usize];
    let mut copied: Vec<(usize, Rational)> = Vec::new(); // (input index, input time base)
    let video_out;
    let encoder;
    {
        let mut ost = octx.add_stream(x264).map_err(|e| werr(format!("cannot add video stream: {e}")))?;
        video_out = ost.index();
        let mut enc = codec::context::Context::new_with_codec(x264)
            .encoder()
            .video()
            .map_err(|e| werr(format!("libx264: {e}")))?;
        enc.set_width(width);
        enc.set_height(height);
        enc.set_format(work_format);
        enc.set_aspect_ratio(decoder.aspect_ratio());
        enc.set_time_base(in_tb);
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
        let opened = enc.open_as_with(x264, opts).map_err(|e| werr(format!("cannot open libx264: {e}")))?;
        ost.set_parameters(&opened);
        ost.set_time_base(in_tb);
        ost.set_avg_frame_rate(frame_rate);
        if let Some(dm) = &display_matrix {
            copy_side_data(&mut ost, dm);
        }
        ost.set_metadata(stream_metadata(&ist.metadata(), options.keep_metadata));
        encoder = opened;
    }
    for st in ictx.streams() {
        if st.index() == video_index {
            continue;
        }
        let medium = st.parameters().medium();
        let codec_id = st.parameters().id();
        match medium {
            media::Type::Audio if options.audio == AudioMode::Drop => continue,
            media::Type::Audio | media::Type::Subtitle => {
                // SAFETY: the output format pointer is valid for the life of octx.
                let supported = unsafe {
                    ff::ffi::avformat_query_codec(
                        octx.format().as_ptr(),
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
                    out.warnings.push(format!("{what} dropped: the output container cannot hold it"));
                    continue;
                }
                let mut ost = octx
                    .add_stream(encoder::find(codec::Id::None))
                    .map_err(|e| werr(format!("cannot add stream: {e}")))?;
                ost.set_parameters(st.parameters());
                // SAFETY: the parameters belong to the stream just added; codec_tag 0 lets the muxer choose.
                unsafe {
                    (*ost.parameters().as_mut_ptr()).codec_tag = 0;
                }
                ost.set_time_base(st.time_base());
                ost.set_metadata(stream_metadata(&st.metadata(), options.keep_metadata));
                stream_map[st.index()] = Some(ost.index());
                copied.push((st.index(), st.time_base()));
                out.streams_copied += 1;
            }
            media::Type::Video => out
                .warnings
                .push(format!("extra video stream {} dropped: faceveil redacts one video stream per file", st.index())),
            _ => out.warnings.push(format!("{medium:?} stream {} dropped", st.index()).to_lowercase()),
        }
    }
    if options.keep_metadata {
        octx.set_metadata(ictx.metadata().to_owned());
    }
    octx.write_header().map_err(|e| werr(format!("cannot write container header: {e}")))?;
    let out_tb: Vec<Rational> = octx.streams().map(|s| s.time_base()).collect();
    let mut copy_tb: Vec<Option<(Rational, Rational)>> = vec![None; stream_map.len()];
    for (ii, itb) in &copied {
        if let Some(oi) = stream_map[*ii] {
            copy_tb[*ii] = Some((*itb, out_tb[oi]));
        }
    }

    // ---- stages ----
    let (frame_tx, frame_rx) = bounded::<Decoded>(QUEUE);
    let (done_tx, done_rx) = bounded::<Analysed>(QUEUE);
    let (pkt_tx, pkt_rx) = unbounded::<Packet>();
    let input_path = input.to_path_buf();
    let window = options.bridge_frames as usize;

    let (dec_res, det_res, mux_res) = std::thread::scope(|s| {
        let dec = std::thread::Builder::new().name("faceveil-decode".into()).spawn_scoped(s, {
            let input_path = input_path.clone();
            move || {
                decode_stage(
                    &input_path,
                    ictx,
                    decoder,
                    video_index,
                    work_format,
                    &stream_map,
                    &copy_tb,
                    frame_tx,
                    pkt_tx,
                )
            }
        });
        let det = std::thread::Builder::new().name("faceveil-detect".into()).spawn_scoped(s, {
            let input_path = input_path.clone();
            move || detect_stage(&input_path, detector, options, rotation, window, frame_rx, done_tx)
        });
        let review = review.map(|collector| Review { collector, rotation, scaler: None });
        let report_progress = |n: u64| {
            if let Some(p) = progress {
                p(n, total_estimate)
            }
        };
        let mux = mux_stage(
            tmp,
            &mut octx,
            encoder,
            video_out,
            in_tb,
            out_tb[video_out],
            options,
            done_rx,
            pkt_rx,
            review,
            &report_progress,
        );
        (join_stage(dec), join_stage(det), mux)
    });
    // The first real cause wins over the "cancelled" that other stages saw as a consequence.
    let (dec, det, (written, redacted, area)) = match (dec_res, det_res, mux_res) {
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
    out.redacted_area_fraction = area;
    out.frames = dec.frames;
    out.decode_errors = dec.decode_errors;
    out.frames_written = written;
    out.frames_redacted = redacted;
    out.frames_with_faces = det.frames_with_faces;
    out.detections = det.detections;
    out.max_faces_in_frame = det.max_faces;
    out.damaged_frames = dec.damaged_frames;
    out.corrupt_packets = dec.corrupt_packets;
    out.frames_missing = dec.frames_missing;
    out.frames_blanked = det.frames_blanked;
    out.tracks = det.tracks;
    if det.frames_blanked > 0 {
        out.warnings.push(format!("detector failed on {} frame(s); they were blanked", det.frames_blanked));
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
    if dec.frames == 0 {
        return Err(Error::bad_input(input, "no video frame could be decoded"));
    }
    if written != dec.frames {
        return Err(Error::Encode {
            path: tmp.to_path_buf(),
            reason: format!("{} frames decoded but {written} written", dec.frames),
        });
    }
    Ok(())
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
    stream_map: &[Option<usize>],
    copy_tb: &[Option<(Rational, Rational)>],
    frame_tx: Sender<Decoded>,
    pkt_tx: Sender<Packet>,
) -> Result<DecodeStats> {
    let mut stats = DecodeStats::default();
    let mut converter: Option<software::scaling::Context> = None;
    let mut last_pts: Option<i64> = None;
    let mut last_duration: Option<i64> = None;
    let mut consecutive_errors = 0u64;
    let (width, height) = (decoder.width(), decoder.height());

    let mut drain = |decoder: &mut decoder::Video, stats: &mut DecodeStats| -> Result<()> {
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
            frame_tx.send(Decoded { frame, index: stats.frames }).map_err(|_| Error::Cancelled)?;
            stats.frames += 1;
        }
        Ok(())
    };

    let mut packet = Packet::empty();
    loop {
        match packet.read(&mut ictx) {
            Ok(()) => {
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
            Err(e) => return Err(Error::bad_input(input, format!("read error: {e}"))),
        }
        let si = packet.stream();
        if si == video_index {
            if let Err(e) = decoder.send_packet(&packet) {
                if e == (ff::Error::Other { errno: ff::error::EAGAIN }) {
                    drain(&mut decoder, &mut stats)?;
                    if decoder.send_packet(&packet).is_err() {
                        stats.decode_errors += 1;
                    }
                } else {
                    stats.decode_errors += 1;
                }
            }
            drain(&mut decoder, &mut stats)?;
        } else if let (Some(oi), Some((itb, otb))) =
            (stream_map.get(si).copied().flatten(), copy_tb.get(si).copied().flatten())
        {
            packet.rescale_ts(itb, otb);
            packet.set_position(-1);
            packet.set_stream(oi);
            pkt_tx.send(packet).map_err(|_| Error::Cancelled)?;
        }
        packet = Packet::empty();
    }
    // End of input: flush the decoder (a truncated last packet is counted, not fatal).
    if decoder.send_eof().is_ok() {
        drain(&mut decoder, &mut stats)?;
    }
    Ok(stats)
}

fn detect_stage(
    input: &Path,
    detector: &mut dyn Detector,
    options: &Options,
    rotation: Rotation,
    window: usize,
    frame_rx: Receiver<Decoded>,
    done_tx: Sender<Analysed>,
) -> Result<DetectStats> {
    let mut stats = DetectStats::default();
    // Tracks coast twice the look-ahead past their last detection: gaps up to three windows are covered.
    let mut fill: TrackFill<(frame::Video, u64, bool)> = TrackFill::new(window, 2 * window);
    let mut scaler: Option<(software::scaling::Context, u32, u32)> = None;
    // The picture size is fixed for the whole stream (the decode stage refuses changes), so whether the
    // small-face tiles apply is decided once, at the first frame.
    let mut tiled: Option<bool> = None;
    for Decoded { frame, index } in frame_rx {
        let (w, h) = (frame.width(), frame.height());
        let frame_err = |e: Error| Error::Frame { path: input.to_path_buf(), frame: index, source: Box::new(e) };
        let (uw, uh) = rotation.upright_size(w, h);
        let tiled = *tiled.get_or_insert_with(|| !tiles(uw, uh, &options.detect).is_empty());
        // Without tiles, scale straight from the decoded format to RGB at the detector's size; with tiles,
        // convert once at full resolution and let the multi-scale pass cut and scale.
        let (dw, dh) = if tiled { (uw, uh) } else { options.detect.input_size(uw, uh) };
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
        }
        let mut rgb = frame::Video::empty();
        if let Some((ctx, _, _)) = scaler.as_mut() {
            ctx.run(&frame, &mut rgb).map_err(|e| frame_err(Error::bad_input(input, format!("scaler: {e}"))))?;
        }
        let upright = rotate_upright(packed_rgb(&rgb), rotation);
        let attempt: Result<Vec<Detection>> = if tiled {
            let period = options.tile_period.max(1) as usize;
            let phase = (index % period as u64) as usize;
            detect_multiscale(detector, &upright, &options.detect, |i| i % period == phase).map(|found| {
                found
                    .into_iter()
                    .map(|d| Detection { bbox: rotation.box_to_stored(&d.bbox, w, h).clamped(w, h), ..d })
                    .filter(|d| d.bbox.is_valid())
                    .collect()
            })
        } else {
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
        let boxes = found.iter().map(|d| d.bbox).collect();
        if let Some(((frame, index, blank), boxes)) = fill.push((frame, index, blank), boxes) {
            done_tx.send(Analysed { frame, index, boxes, blank }).map_err(|_| Error::Cancelled)?;
        }
    }
    for ((frame, index, blank), boxes) in fill.finish() {
        done_tx.send(Analysed { frame, index, boxes, blank }).map_err(|_| Error::Cancelled)?;
    }
    stats.tracks = fill.tracks_started();
    Ok(stats)
}

/// Copies an RGB24 frame (rows padded to its stride) into a tightly packed image.
fn packed_rgb(f: &frame::Video) -> RgbImage {
    let (w, h) = (f.width() as usize, f.height() as usize);
    let stride = f.stride(0);
    let data = f.data(0);
    let mut buf = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        buf.extend_from_slice(&data[y * stride..y * stride + w * 3]);
    }
    RgbImage::from_raw(w as u32, h as u32, buf).unwrap_or_else(|| RgbImage::new(w as u32, h as u32))
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
        let thumb = rotate_upright(packed_rgb(&rgb), self.rotation);
        let time = crate::verify::time_code(frame.pts().unwrap_or(0), (tb.numerator(), tb.denominator()));
        self.collector.offer(index, time, faces, &thumb);
    }
}

#[allow(clippy::too_many_arguments)]
fn mux_stage(
    tmp: &Path,
    octx: &mut format::context::Output,
    mut encoder: encoder::Video,
    video_out: usize,
    enc_tb: Rational,
    out_tb: Rational,
    options: &Options,
    done_rx: Receiver<Analysed>,
    pkt_rx: Receiver<Packet>,
    mut review: Option<Review<'_>>,
    progress: &dyn Fn(u64),
) -> Result<(u64, u64, f64)> {
    let mut area_sum = 0f64;
    let werr = |reason: String| Error::Encode { path: tmp.to_path_buf(), reason };
    let (mut written, mut redacted) = (0u64, 0u64);
    let write_encoded = |encoder: &mut encoder::Video, octx: &mut format::context::Output| -> Result<()> {
        let mut pkt = Packet::empty();
        while encoder.receive_packet(&mut pkt).is_ok() {
            pkt.set_stream(video_out);
            pkt.rescale_ts(enc_tb, out_tb);
            pkt.write_interleaved(octx).map_err(|e| werr(format!("cannot write video packet: {e}")))?;
        }
        Ok(())
    };
    let (mut video_open, mut pkts_open) = (true, true);
    let never = crossbeam_channel::never::<Packet>();
    while video_open || pkts_open {
        crossbeam_channel::select! {
            recv(done_rx) -> msg => match msg {
                Ok(Analysed { mut frame, index, boxes, blank }) => {
                    if blank {
                        blank_frame(&mut frame).map_err(|e| Error::Frame {
                            path: tmp.to_path_buf(), frame: index, source: Box::new(e) })?;
                        redacted += 1;
                        area_sum += 1.0;
                    } else if !boxes.is_empty() {
                        redact_frame(&mut frame, &boxes, options).map_err(|e| Error::Frame {
                            path: tmp.to_path_buf(), frame: index, source: Box::new(e) })?;
                        redacted += 1;
                        area_sum += crate::redact::mask_area_fraction(&boxes, &options.redact, frame.width(), frame.height());
                    }
                    if let Some(r) = review.as_mut() {
                        r.offer(&frame, index, boxes.len(), enc_tb);
                    }
                    encoder.send_frame(&frame).map_err(|e| werr(format!("encoder rejected frame {index}: {e}")))?;
                    written += 1;
                    progress(written);
                    write_encoded(&mut encoder, octx)?;
                }
                Err(_) => { video_open = false; }
            },
            recv(if pkts_open { &pkt_rx } else { &never }) -> msg => match msg {
                Ok(pkt) => { pkt.write_interleaved(octx).map_err(|e| werr(format!("cannot write packet: {e}")))?; }
                Err(_) => { pkts_open = false; }
            },
        }
        if !video_open && !pkts_open {
            break;
        }
    }
    encoder.send_eof().map_err(|e| werr(format!("encoder flush: {e}")))?;
    write_encoded(&mut encoder, octx)?;
    octx.write_trailer().map_err(|e| werr(format!("cannot finish container: {e}")))?;
    Ok((written, redacted, if written > 0 { area_sum / written as f64 } else { 0.0 }))
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
