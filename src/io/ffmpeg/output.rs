//! The output side: what the encoder and the copied streams will be ([`plan`]), how an output container is
//! started, and where encoded packets go ([`Sink`]: one file here, segments in [`super::segments`]).

use super::input::OpenedVideo;
use crate::config::{AudioMode, FrameRate, Options};
use crate::geom::Rotation;
use crate::{Error, Result};
use ff::format::Pixel;
use ff::{codec, encoder, format, media, Packet, Rational, Rescale};
use ffmpeg_next as ff;
use std::path::{Path, PathBuf};

/// Pixel formats redacted in place and accepted by libx264. Anything else is converted to yuv420p.
const IN_PLACE: &[Pixel] =
    &[Pixel::YUV420P, Pixel::YUVJ420P, Pixel::YUV422P, Pixel::YUVJ422P, Pixel::YUV444P, Pixel::YUVJ444P];

/// The containers to suggest when an output's extension names none that can hold the video faceveil writes.
pub(crate) const VIDEO_EXTENSIONS: &str = ".mp4, .mkv, .mov, .avi or .ts";

/// Refuses, before any work, a video output whose name picks no container, or one that says it cannot hold
/// H.264 (`.webm`). Containers that cannot say (`.gif`, `.mxf`) fail at their header, still before any frame.
pub(crate) fn check_video_container(output: &Path) -> Result<()> {
    let refuse = |why: String| Error::UnsupportedOutput {
        path: output.to_path_buf(),
        reason: format!("{why}; use {VIDEO_EXTENSIONS}"),
    };
    let format = guessed_muxer(output).ok_or_else(|| refuse("the output name holds a NUL byte".into()))?;
    let ext = output.extension().map(|e| e.to_string_lossy().into_owned());
    if format.is_null() {
        return Err(refuse(match ext {
            Some(e) => format!("no video container is known by the extension .{e}"),
            None => "the output name has no extension to pick the container by".into(),
        }));
    }
    // SAFETY: `format` is a valid, static output format.
    let holds = unsafe {
        ff::ffi::avformat_query_codec(format, ff::ffi::AVCodecID::AV_CODEC_ID_H264, ff::ffi::FF_COMPLIANCE_NORMAL)
    };
    // 0: it cannot; a negative answer is "not known" (MPEG-TS has no list, and holds H.264): tried.
    if holds == 0 {
        // SAFETY: as above; `name` of an output format is a static C string.
        let short = unsafe { std::ffi::CStr::from_ptr((*format).name) }.to_string_lossy().into_owned();
        return Err(refuse(format!("the {short} format cannot hold the H.264 video faceveil writes")));
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
    /// The rotation the encoder's pictures are turned by (the input's, where the output container cannot carry
    /// its flag): the decoded, analysed and redacted frames stay as stored.
    pub(crate) turn_pixels: Option<Rotation>,
    pub(crate) total_estimate: Option<u64>,
    /// The video stream's frame rate, where the container states one: the core's schedule follows it.
    pub(crate) rate: Option<FrameRate>,
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
    pub(crate) video_disposition: ff::format::stream::Disposition,
    pub(crate) global_metadata: ff::Dictionary<'static>,
    pub(crate) copies: Vec<CopySpec>,
    /// The input's chapters, written into the output (files with `keep_metadata` only).
    pub(crate) chapters: Vec<ChapterSpec>,
    pub(crate) n_inputs: usize,
}

/// One chapter of the input: its id, times and metadata (its title among them).
pub(crate) struct ChapterSpec {
    id: i64,
    time_base: Rational,
    start: i64,
    end: i64,
    metadata: ff::Dictionary<'static>,
}

/// A stream copied unchanged (audio, subtitles).
pub(crate) struct CopySpec {
    pub(crate) input: usize,
    pub(crate) params: codec::Parameters,
    pub(crate) time_base: Rational,
    pub(crate) metadata: ff::Dictionary<'static>,
    /// Its disposition flags (default, forced, the audio description or hearing-impaired track, …).
    pub(crate) disposition: ff::format::stream::Disposition,
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
        let found = [ist.avg_frame_rate(), ist.rate()].into_iter().find(|r| r.numerator() > 0 && r.denominator() > 0);
        let frame_rate = found.unwrap_or(Rational(25, 1));
        let rate = found.and_then(|r| FrameRate::new(r.numerator().try_into().ok()?, r.denominator().try_into().ok()?));
        let (width, height) = (decoder.width(), decoder.height());
        // Interlaced input stays interlaced: coded as fields, its field order flagged (each frame's own order goes
        // to x264 with the frame).
        // SAFETY: the stream's parameters are valid while the input is open; a plain enum field is read.
        let field_order = unsafe { (*ist.parameters().as_ptr()).field_order };
        let interlaced = !matches!(
            field_order,
            ff::ffi::AVFieldOrder::AV_FIELD_UNKNOWN | ff::ffi::AVFieldOrder::AV_FIELD_PROGRESSIVE
        );
        let mut warnings = Vec::new();
        // A rotation flag the output container cannot carry: the picture is turned in its pixels instead, so that
        // it is shown as the input is (what FFmpeg does when it re-encodes).
        let turn_pixels = (*rotation != Rotation::None && !carries_rotation(container)).then_some(*rotation);
        if let Some(turn) = turn_pixels {
            let muxer = container.format().name().to_string();
            if interlaced {
                return Err(Error::StreamNotCarried {
                    path: input.to_path_buf(),
                    reason: format!(
                        "its interlaced video is flagged to be shown turned {}° clockwise, which the {muxer} container cannot \
                         carry, and turning interlaced pictures would mix their fields; write .mp4 or .mov",
                        turn.degrees()
                    ),
                });
            }
            warnings.push(format!(
                "picture turned {}° clockwise in its pixels: the {muxer} container cannot carry the input's rotation flag (.mp4 \
                 and .mov can)",
                turn.degrees()
            ));
        }
        let quarter = matches!(turn_pixels, Some(Rotation::Cw90 | Rotation::Cw270));
        let work_format = work_format(decoder.format(), width, height, quarter);
        let (out_width, out_height) = turn_pixels.map_or((width, height), |t| t.upright_size(width, height));
        let aspect = match decoder.aspect_ratio() {
            r if quarter && r.numerator() > 0 && r.denominator() > 0 => Rational(r.denominator(), r.numerator()),
            r => r,
        };
        let global_header = container.format().flags().contains(format::Flags::GLOBAL_HEADER);
        let x264 = encoder::find_by_name("libx264").ok_or_else(|| werr("FFmpeg has no libx264 encoder".into()))?;
        let mut enc = codec::context::Context::new_with_codec(x264)
            .encoder()
            .video()
            .map_err(|e| werr(format!("libx264: {e}")))?;
        enc.set_width(out_width);
        enc.set_height(out_height);
        enc.set_format(work_format);
        enc.set_aspect_ratio(aspect);
        enc.set_time_base(*in_tb);
        enc.set_frame_rate(Some(frame_rate));
        let mut flags = codec::Flags::empty();
        if global_header {
            flags |= codec::Flags::GLOBAL_HEADER;
        }
        if interlaced {
            flags |= codec::Flags::INTERLACED_DCT | codec::Flags::INTERLACED_ME;
        }
        enc.set_flags(flags);
        // SAFETY: both pointers are valid, open codec contexts owned here; only plain enum fields are copied.
        unsafe {
            let (d, e) = (decoder.as_ptr(), enc.as_mut_ptr());
            (*e).color_range = (*d).color_range;
            (*e).color_primaries = (*d).color_primaries;
            (*e).color_trc = (*d).color_trc;
            (*e).colorspace = (*d).colorspace;
            (*e).chroma_sample_location = (*d).chroma_sample_location;
            if interlaced {
                (*e).field_order = field_order;
            }
        }
        let mut opts = ff::Dictionary::new();
        opts.set("crf", &options.encode.crf.to_string());
        opts.set("preset", &options.encode.preset);
        // A frame marked as a keyframe becomes an IDR picture: segments start with one.
        opts.set("forced-idr", "1");
        let mut params: Vec<String> = options.encode.subme().map(|n| format!("subme={n}")).into_iter().collect();
        if live {
            // No frame reordering or rate-control look-ahead: each frame leaves the encoder at once.
            opts.set("tune", "zerolatency");
        } else {
            // Bounded encoder memory: x264 holds a picture per frame of rate-control look-ahead, and pictures
            // per frame thread.
            opts.set("rc-lookahead", &options.encode.rc_lookahead().to_string());
            opts.set("threads", &options.encode.codec_threads().to_string());
            params.extend(x264_cpu_without_avx512().map(|flags| format!("asm={flags}")));
        }
        if !params.is_empty() {
            opts.set("x264-params", &params.join(":"));
        }
        let encoder = enc.open_as_with(x264, opts).map_err(|e| werr(format!("cannot open libx264: {e}")))?;

        let mut copies = Vec::new();
        // The camera's start timecode is timing, not a description of anyone: kept whatever `keep_metadata`
        // says (a segment of a live run would carry the stream's start, not its own: files only).
        let timecode = if live { None } else { start_timecode(ictx, &ist) };
        // Chapters (a council meeting's agenda items, say) are metadata: their titles can name people. Kept with
        // the rest of it when asked, never in live segments; dropped with a word otherwise.
        let mut chapters: Vec<ChapterSpec> = ictx
            .chapters()
            .map(|c| ChapterSpec {
                id: c.id(),
                time_base: c.time_base(),
                start: c.start(),
                end: c.end(),
                metadata: c.metadata().to_owned(),
            })
            .collect();
        let has_chapters = !chapters.is_empty();
        if has_chapters && (live || !options.keep_metadata) {
            let why = if live {
                "live segments do not carry chapters"
            } else {
                "their titles are metadata (--keep-metadata keeps them)"
            };
            warnings.push(format!("{} chapter(s) dropped: {why}", chapters.len()));
            chapters.clear();
        }
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
                        disposition: st.disposition(),
                    });
                }
                media::Type::Video => warnings.push(format!(
                    "extra video stream {} dropped: faceveil redacts one video stream per file",
                    st.index()
                )),
                // A timecode track (MOV's tmcd): its one value is the video stream's timecode, which the muxer
                // writes again (a tmcd track in MOV and MP4, a tag in Matroska).
                media::Type::Data
                    if timecode.is_some()
                        && st.metadata().get("timecode") == timecode.as_deref()
                        && stores_timecode(container) => {}
                // MP4's chapter track (QuickTime text): the chapters themselves are kept or dropped above.
                // SAFETY: the stream's parameters are valid while the input is open; a plain field is read.
                media::Type::Data if has_chapters && unsafe { (*st.parameters().as_ptr()).codec_tag } == TEXT_TAG => {}
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
            display_matrix: display_matrix.clone().filter(|_| turn_pixels.is_none()),
            video_disposition: ist.disposition(),
            video_metadata: {
                let mut m = stream_metadata(&ist.metadata(), options.keep_metadata);
                if let Some(tc) = &timecode {
                    m.set("timecode", tc);
                }
                m
            },
            global_metadata: if options.keep_metadata { ictx.metadata().to_owned() } else { ff::Dictionary::new() },
            copies,
            chapters,
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
            turn_pixels,
            total_estimate,
            rate,
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
        set_disposition(&mut ost, self.video_disposition);
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
            set_disposition(&mut ost, c.disposition);
            if let Some(slot) = map.get_mut(c.input) {
                *slot = Some((ost.index(), c.time_base));
            }
        }
        for c in &self.chapters {
            let title = c.metadata.get("title").unwrap_or_default().to_string();
            let mut chapter = octx
                .add_chapter(c.id, c.time_base, c.start, c.end, title)
                .map_err(|e| werr(format!("cannot add chapter {}: {e}", c.id)))?;
            for (key, value) in c.metadata.iter() {
                chapter.set_metadata(key, value);
            }
        }
        octx.set_metadata(self.global_metadata.clone());
        // A bit-exact container: without it Matroska writes a random segment UID (and every container the
        // library's version), so the same input and options would not give the same bytes (README: promises).
        let mut options = ff::Dictionary::new();
        options.set("fflags", "+bitexact");
        // What the muxer did not take comes back (the flag is the only option given).
        let name = octx.format().name().to_string();
        let refused = octx
            .write_header_with(options)
            .map_err(|e| {
                let hint = format!("the {name} format may not hold the streams; use {VIDEO_EXTENSIONS}");
                werr(format!("cannot write container header: {e} ({hint})"))
            })?
            .iter()
            .next()
            .is_some();
        if refused {
            return Err(werr("the container did not take the bit-exact flag".into()));
        }
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
    /// What the user should be told about how the output was written (taken once, after the run).
    fn take_warnings(&mut self) -> Vec<String> {
        Vec::new()
    }
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

/// The pixel format frames are redacted and encoded in: the decoded one when libx264 takes it, else 8-bit
/// 4:2:0, or 4:4:4 where the picture has an odd size that subsampled chroma cannot encode.
pub(crate) fn work_format(src: Pixel, width: u32, height: u32, quarter_turned: bool) -> Pixel {
    let odd_w = width % 2 == 1;
    let odd_h = height % 2 == 1;
    let candidate = if IN_PLACE.contains(&src) { src } else { Pixel::YUV420P };
    let fits = match candidate {
        Pixel::YUV420P | Pixel::YUVJ420P => !odd_w && !odd_h,
        // Turned a quarter, its chroma would be subsampled down the picture instead of across (4:4:0).
        Pixel::YUV422P | Pixel::YUVJ422P => !odd_w && !quarter_turned,
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

/// Gives `ost` the input stream's disposition flags: which track a player picks by default, and which is the
/// audio description or the hearing-impaired one.
fn set_disposition(ost: &mut format::stream::StreamMut<'_>, disposition: ff::format::stream::Disposition) {
    // SAFETY: the stream was just added to a context owned by the caller; a plain field is written.
    unsafe { (*ost.as_mut_ptr()).disposition = disposition.bits() };
}

/// The codec tag of a QuickTime text track (`text`), as MP4 and MOV store chapter titles.
const TEXT_TAG: u32 = u32::from_le_bytes(*b"text");

/// Whether `container` stores a video stream's rotation flag (its display matrix): FFmpeg's MOV/MP4 family
/// does; Matroska, MPEG-TS, AVI and FLV drop it without a word (FFmpeg 5.1).
fn carries_rotation(container: &format::context::Output) -> bool {
    muxer_carries_rotation(container.format().name())
}

/// [`carries_rotation`] for the container FFmpeg picks by `output`'s name (false where it picks none).
pub(crate) fn path_carries_rotation(output: &Path) -> bool {
    let Some(format) = guessed_muxer(output).filter(|f| !f.is_null()) else { return false };
    // SAFETY: a non-null format from `av_guess_format` is static, and so is its short name.
    muxer_carries_rotation(&unsafe { std::ffi::CStr::from_ptr((*format).name) }.to_string_lossy())
}

/// The muxer FFmpeg picks by `output`'s name (null where it picks none); `None` for a name holding a NUL byte.
fn guessed_muxer(output: &Path) -> Option<*const ff::ffi::AVOutputFormat> {
    let name = std::ffi::CString::new(output.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: `name` is a valid C string for the call; the format returned is static (or null).
    Some(unsafe { ff::ffi::av_guess_format(std::ptr::null(), name.as_ptr(), std::ptr::null()) })
}

fn muxer_carries_rotation(muxer: &str) -> bool {
    matches!(muxer, "mp4" | "mov" | "ipod" | "ismv" | "3gp" | "3g2" | "psp" | "f4v")
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

/// `X264_CPU_AVX512` of x264.h (x86).
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const X264_CPU_AVX512: u32 = 1 << 16;

/// libx264's own CPU detection less AVX-512, for its `asm` parameter; `None` where the CPU has no AVX-512 or
/// libx264's detection cannot be reached (a static build that hides it: libx264 then chooses for itself).
///
/// libx264's AVX-512 macroblock-tree code (B-frames with MB-tree, preset medium's default) reads memory it never
/// wrote, so the same frames gave another stream whenever the heap's leftover bytes differed (shown with the
/// `ffmpeg` command alone, under different `MALLOC_PERTURB_` values; with AVX2 and older code, or without
/// assembly, the same stream every time). Without it a rerun gives the same bytes whatever the allocator holds.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
fn x264_cpu_without_avx512() -> Option<u32> {
    // SAFETY: `dlsym` with a NUL-terminated name; where found, the symbol is libx264's exported
    // `uint32_t x264_cpu_detect(void)` (no arguments, no state), loaded with libavcodec.
    let detect = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"x264_cpu_detect".as_ptr()) };
    if detect.is_null() {
        return None;
    }
    // SAFETY: as above: the address is that function.
    let detect: extern "C" fn() -> u32 = unsafe { std::mem::transmute(detect) };
    let flags = detect();
    (flags & X264_CPU_AVX512 != 0).then_some(flags & !X264_CPU_AVX512)
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
fn x264_cpu_without_avx512() -> Option<u32> {
    None
}

/// The input's start timecode (`HH:MM:SS:FF`, or `;` before the frames when drop-frame): the video stream's
/// `timecode` tag, else a timecode track's (MOV's tmcd), else the file's (MXF).
fn start_timecode(ictx: &format::context::Input, video: &ff::format::stream::Stream<'_>) -> Option<String> {
    let tag = |m: ff::DictionaryRef<'_>| m.get("timecode").filter(|t| !t.is_empty()).map(str::to_owned);
    tag(video.metadata())
        .or_else(|| {
            ictx.streams().filter(|st| st.parameters().medium() == media::Type::Data).find_map(|st| tag(st.metadata()))
        })
        .or_else(|| tag(ictx.metadata()))
}

/// Whether the output container writes a video stream's `timecode` tag (MOV and MP4 as a tmcd track,
/// Matroska as a tag).
fn stores_timecode(container: &format::context::Output) -> bool {
    let format = container.format();
    format.name().split(',').any(|f| ["mov", "mp4", "matroska", "ipod", "3gp"].contains(&f))
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
