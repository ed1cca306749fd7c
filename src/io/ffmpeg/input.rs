//! Opening inputs (a file, a URL, a pipe, a device), choosing the video stream and its decoder, and a simple
//! frame-by-frame reader for checking outputs.

use super::clock::Clock;
use super::picture::UprightRgb;
use super::{init, rotation_of};
use crate::geom::Rotation;
use crate::{Error, Result};
use ff::{codec, decoder, format, frame, media, Packet, Rational};
use ffmpeg_next as ff;
use image::RgbImage;
use std::path::{Path, PathBuf};

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
    pub(crate) ictx: format::context::Input,
    pub(crate) index: usize,
    pub(crate) time_base: Rational,
    /// The stream's display matrix, as stored.
    pub(crate) display_matrix: Option<Vec<u8>>,
    pub(crate) rotation: Rotation,
    pub(crate) decoder: decoder::Video,
}

/// Opens `path`, refuses text and oversized pictures, and prepares a frame-threaded decoder for the best
/// video stream, with `threads` frame threads (0: FFmpeg's choice).
pub(crate) fn open_video(path: &Path, threads: usize) -> Result<OpenedVideo> {
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
    rgb: UprightRgb,
    index: usize,
    time_base: (i32, i32),
    eof: bool,
    count: u64,
    /// Packets (or the end-of-stream flush) the decoder refused: frames the reader could not return.
    send_errors: u64,
    /// Clock restarts mended as the decode stage mends them: a frame has the time it has in a run.
    clock: Clock,
}

impl FrameReader {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let OpenedVideo { ictx, index, time_base: tb, rotation, decoder, .. } = open_video(path, 0)?;
        Ok(Self {
            clock: Clock::of(&ictx),
            path: path.to_path_buf(),
            // Every frame at the stream's first size, as a run scales them (a size that changes mid-stream).
            rgb: UprightRgb::scaled(rotation, decoder.width(), decoder.height()),
            ictx,
            decoder,
            index,
            time_base: (tb.numerator(), tb.denominator()),
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

    /// Moves to the last keyframe at or before `pts` (the stream's time base): the next frames decoded start
    /// there. The caller tells frames apart by their timestamps. Clock restarts are mended afresh from there:
    /// before the input's first restart the frames have the times they had; after one they may not, which the
    /// caller sees.
    pub(crate) fn seek_before(&mut self, pts: i64) -> Result<()> {
        // SAFETY: the context is open; av_seek_frame takes the stream index and a timestamp in its time base.
        let res = unsafe {
            ff::ffi::av_seek_frame(self.ictx.as_mut_ptr(), self.index as i32, pts, ff::ffi::AVSEEK_FLAG_BACKWARD)
        };
        if res < 0 {
            return Err(Error::bad_input(&self.path, format!("cannot seek: {}", ff::Error::from(res))));
        }
        self.decoder.flush();
        self.clock.forget();
        self.eof = false;
        Ok(())
    }

    /// The next frame: its pts (with clock restarts mended; `None` when it has none) and upright RGB picture;
    /// `None` at the end. The decode stage makes timestamps strictly increasing too ([`increasing`]): a
    /// caller that needs a frame's time in a run does the same.
    ///
    /// [`increasing`]: super::clock::increasing
    pub(crate) fn next_frame(&mut self) -> Result<Option<(Option<i64>, RgbImage)>> {
        loop {
            let mut f = frame::Video::empty();
            if self.decoder.receive_frame(&mut f).is_ok() {
                let picture = self.rgb.convert(&f).map_err(|e| Error::bad_input(&self.path, e.to_string()))?;
                self.count += 1;
                return Ok(Some((f.timestamp(), picture)));
            }
            if self.eof {
                return Ok(None);
            }
            let mut packet = Packet::empty();
            match packet.read(&mut self.ictx) {
                Ok(()) => {
                    // Every stream's packets, as the decode stage does: a restart may show first in the sound.
                    self.clock.mend(&mut packet);
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
