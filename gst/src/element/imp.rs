//! How the element works.
//!
//! **Frames.** Each buffer is copied out of upstream's memory at once (so upstream's buffer pool is never held
//! for the look-ahead), padded strides read through the negotiated `VideoInfo` and its video meta, and pushed
//! into faceveil's per-frame core ([`FrameRedactor`]). A frame comes back redacted once the look-ahead has seen
//! past it (`bridge-frames` + 1 frames later: 6 up to 37 fps, 12 above, from the caps' frame rate); it goes
//! downstream in a new buffer with the original's timestamps, duration, offsets and flags. No frame is pushed
//! before its verdict, and none is dropped for QoS.
//!
//! **Events.** Serialized events (segment, tags, gap, stream-start, …) that arrive while frames are held wait
//! in one queue with the frames and leave in their order. EOS, a caps change and the DRAIN query release every
//! held frame first; FLUSH_STOP drops them (they are never shown). QoS events from downstream are not passed
//! upstream: a recorder keeps every frame.
//!
//! **Latency.** The LATENCY query adds the look-ahead (frames held × the frame duration from the caps, or the
//! buffers' own durations where the caps give no rate); a latency message is posted when that changes.
//!
//! **Failures.** The models load on NULL → READY, and again on READY → PAUSED if a property changed in READY
//! (never when the plugin is scanned); a failure there is an element error with the reason and the state change
//! fails. A frame that cannot be analysed is an element
//! error (the stream stops; the frame is never pushed) or, with `on-error=blank`, pushed flat grey.

use super::{Counts, OnError, Precision, Runtime, Shape, SmallDetector, Style};
use faceveil::detect::{load_detector, Detector, DetectorChoice, SessionOptions};
use faceveil::frames::{Frame, FrameRedactor, PixelLayout, Scan};
use faceveil::geom::Rotation;
use faceveil::{FrameRate, Options};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_video::prelude::*;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, MutexGuard};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("faceveil", gst::DebugColorFlags::empty(), Some("faceveil face redaction"))
});

/// The raw formats on both pads, and the layout each is handed to the core in.
const FORMATS: [(gst_video::VideoFormat, PixelLayout); 8] = [
    (gst_video::VideoFormat::I420, PixelLayout::I420),
    (gst_video::VideoFormat::Nv12, PixelLayout::Nv12),
    (gst_video::VideoFormat::Rgb, PixelLayout::Rgb24),
    (gst_video::VideoFormat::Bgr, PixelLayout::Bgr24),
    (gst_video::VideoFormat::Rgba, PixelLayout::Rgba),
    (gst_video::VideoFormat::Rgbx, PixelLayout::Rgba),
    (gst_video::VideoFormat::Bgra, PixelLayout::Bgra),
    (gst_video::VideoFormat::Bgrx, PixelLayout::Bgra),
];

/// The turn an `image-orientation` tag asks for on display. A mirror leaves faces upright, so the flipped
/// orientations are the rotations that make their faces upright (flip then turn 90° = turn 270°).
fn rotation_of(orientation: &str) -> Option<Rotation> {
    Some(match orientation {
        "rotate-0" | "flip-rotate-0" => Rotation::None,
        "rotate-90" | "flip-rotate-270" => Rotation::Cw90,
        "rotate-180" | "flip-rotate-180" => Rotation::Cw180,
        "rotate-270" | "flip-rotate-90" => Rotation::Cw270,
        _ => return None,
    })
}

/// The caps' frame rate, where they state one (0/1 is "variable": none).
fn rate_of(info: &gst_video::VideoInfo) -> Option<FrameRate> {
    let fps = info.fps();
    FrameRate::new(u32::try_from(fps.numer()).ok()?, u32::try_from(fps.denom()).ok()?)
}

/// The `bridge-frames` property's value: -1 where the window follows the frame rate.
fn bridge_property(bridge: Option<u32>) -> i32 {
    bridge.and_then(|b| i32::try_from(b).ok()).unwrap_or(-1)
}

fn layout_of(format: gst_video::VideoFormat) -> Option<PixelLayout> {
    FORMATS.iter().find(|(f, _)| *f == format).map(|(_, l)| *l)
}

/// Rows of each plane, tightly packed: (bytes per row, rows).
fn planes(layout: PixelLayout, width: u32, height: u32) -> Vec<(usize, usize)> {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    match layout {
        PixelLayout::Rgb24 | PixelLayout::Bgr24 => vec![(w * 3, h)],
        PixelLayout::Rgba | PixelLayout::Bgra => vec![(w * 4, h)],
        PixelLayout::I420 => vec![(w, h), (cw, ch), (cw, ch)],
        PixelLayout::Nv12 => vec![(w, h), (2 * cw, ch)],
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Settings {
    threshold: f32,
    small_threshold: f32,
    small_detector: SmallDetector,
    style: Style,
    shape: Shape,
    mask_scale: f32,
    /// `None` (the property's -1): from the caps' frame rate.
    bridge_frames: Option<u32>,
    tile_scale: f32,
    precision: Precision,
    runtime: Runtime,
    low_light: bool,
    follow_camera: bool,
    turned: bool,
    model: Option<String>,
    small_model: Option<String>,
    on_error: OnError,
    threads: u32,
}

impl Default for Settings {
    fn default() -> Self {
        let o = Options::default();
        Self {
            threshold: o.detect.threshold,
            small_threshold: o.detect.small_threshold,
            small_detector: SmallDetector::YuNet,
            style: Style::Blur,
            shape: Shape::Ellipse,
            mask_scale: o.redact.mask_scale,
            bridge_frames: o.bridge_frames,
            tile_scale: o.detect.tile_scale,
            precision: Precision::Fp32,
            runtime: Runtime::Cpu,
            low_light: o.detect.low_light,
            follow_camera: o.follow_camera,
            turned: o.detect.turned,
            model: None,
            small_model: None,
            on_error: OnError::Error,
            threads: 0,
        }
    }
}

impl Settings {
    fn options(&self) -> Options {
        let mut o = Options::default();
        o.detect.threshold = self.threshold;
        o.detect.small_threshold = self.small_threshold;
        o.detect.small_detector = match self.small_detector {
            SmallDetector::YuNet => faceveil::detect::SmallDetector::YuNet,
            SmallDetector::CenterFace => faceveil::detect::SmallDetector::CenterFace,
        };
        o.detect.tile_scale = self.tile_scale;
        o.detect.low_light = self.low_light;
        o.redact.style = match self.style {
            Style::Blur => faceveil::redact::Style::Blur,
            Style::Pixelate => faceveil::redact::Style::Pixelate,
            Style::Fill => faceveil::redact::Style::Fill,
        };
        o.redact.shape = match self.shape {
            Shape::Ellipse => faceveil::redact::Shape::Ellipse,
            Shape::Box => faceveil::redact::Shape::Box,
        };
        o.redact.mask_scale = self.mask_scale;
        // The tile period follows the window at the caps' frame rate (Options::schedule): each tile is
        // searched at least once per look-ahead.
        o.bridge_frames = self.bridge_frames;
        o.follow_camera = self.follow_camera;
        o.detect.turned = self.turned;
        o.on_detector_error = match self.on_error {
            OnError::Error => faceveil::OnDetectorError::Fail,
            OnError::Blank => faceveil::OnDetectorError::RedactFrame,
        };
        o
    }

    fn choice(&self) -> DetectorChoice {
        DetectorChoice {
            model: self.model.as_ref().map(PathBuf::from),
            small_model: self.small_model.as_ref().map(PathBuf::from),
            precision: match self.precision {
                Precision::Fp32 => faceveil::detect::Precision::Fp32,
                Precision::Int8 => faceveil::detect::Precision::Int8,
            },
            session: SessionOptions {
                intra_threads: self.threads as usize,
                runtime: match self.runtime {
                    Runtime::Cpu => faceveil::detect::Runtime::Cpu,
                    Runtime::OpenVino => faceveil::detect::Runtime::OpenVino,
                },
                ..SessionOptions::default()
            },
        }
    }
}

/// What a held frame's buffer carried besides its pixels.
#[derive(Debug, Clone, Copy)]
struct BufferTimes {
    pts: Option<gst::ClockTime>,
    dts: Option<gst::ClockTime>,
    duration: Option<gst::ClockTime>,
    offset: u64,
    offset_end: u64,
    flags: gst::BufferFlags,
}

impl BufferTimes {
    fn of(b: &gst::BufferRef) -> Self {
        Self {
            pts: b.pts(),
            dts: b.dts(),
            duration: b.duration(),
            offset: b.offset(),
            offset_end: b.offset_end(),
            flags: b.flags(),
        }
    }

    fn apply(&self, b: &mut gst::BufferRef) {
        b.set_pts(self.pts);
        b.set_dts(self.dts);
        b.set_duration(self.duration);
        b.set_offset(self.offset);
        b.set_offset_end(self.offset_end);
        b.set_flags(self.flags);
    }
}

/// In the order they arrived: held frames (their pixels are in the core) and the events between them.
enum Pending {
    Frame(BufferTimes),
    Event(gst::Event),
}

/// What goes downstream, in order.
enum Out {
    Buffer(gst::Buffer),
    Event(gst::Event),
}

#[derive(Default)]
struct State {
    redactor: Option<FrameRedactor<Box<dyn Detector>>>,
    /// The settings the redactor was made with.
    loaded_with: Option<Settings>,
    /// Negotiated caps and the core's layout for them.
    format: Option<(gst_video::VideoInfo, PixelLayout)>,
    pending: VecDeque<Pending>,
    /// The core's timestamps: a frame counter (upstream's may be missing or repeat).
    next_seq: i64,
    /// The latency last answered or announced.
    latency: Option<gst::ClockTime>,
    /// The last buffer's duration, where the caps give no frame rate.
    last_duration: Option<gst::ClockTime>,
    frames_out: u64,
    dropped_by_flush: u64,
    /// From the stream's `image-orientation` tag: faces are searched upright.
    rotation: Rotation,
}

impl State {
    fn holds_frames(&self) -> bool {
        self.pending.iter().any(|p| matches!(p, Pending::Frame(_)))
    }
}

pub struct Faceveil {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Faceveil {
    fn counts(&self) -> Counts {
        let st = lock(&self.state);
        let stats = st.redactor.as_ref().map(|r| r.stats()).unwrap_or_default();
        Counts {
            frames_in: stats.frames,
            frames_out: st.frames_out,
            frames_with_faces: stats.frames_with_faces,
            detections: stats.detections,
            frames_redacted: stats.frames_redacted,
            frames_degraded: stats.frames_degraded,
            frames_blanked: stats.frames_blanked,
            frames_camera_moved: stats.frames_camera_moved,
            frames_dropped_by_flush: st.dropped_by_flush,
        }
    }

    /// The look-ahead as time: frames held × frame duration.
    fn own_latency(&self, st: &State) -> gst::ClockTime {
        let held = match &st.redactor {
            Some(r) => r.delay_frames() as u64,
            None => {
                let rate = st.format.as_ref().and_then(|(info, _)| rate_of(info));
                u64::from(lock(&self.settings).options().schedule(rate).bridge_frames) + 1
            }
        };
        let frame = st
            .format
            .as_ref()
            .and_then(|(info, _)| {
                let fps = info.fps();
                (fps.numer() > 0 && fps.denom() > 0)
                    .then(|| gst::ClockTime::SECOND.mul_div_ceil(fps.denom() as u64, fps.numer() as u64))
                    .flatten()
            })
            .or(st.last_duration)
            .unwrap_or(gst::ClockTime::ZERO);
        gst::ClockTime::from_nseconds(frame.nseconds().saturating_mul(held))
    }

    /// Posts a latency message when the look-ahead's duration changed since it was last answered.
    fn announce_latency(&self) {
        let changed = {
            let mut st = lock(&self.state);
            let now = self.own_latency(&st);
            let changed = st.latency.is_some_and(|l| l != now);
            st.latency = Some(now);
            changed
        };
        if changed {
            let obj = self.obj();
            let _ = obj.post_message(gst::message::Latency::builder().src(&*obj).build());
        }
    }

    /// Copies a buffer's pixels out (tightly packed, strides and offsets from the caps and video meta).
    fn copy_in(buffer: &gst::BufferRef, info: &gst_video::VideoInfo, layout: PixelLayout) -> Result<Vec<u8>, String> {
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, info).map_err(|e| {
            format!("the buffer does not hold a {}x{} {:?} frame: {e}", info.width(), info.height(), info.format())
        })?;
        let mut data = Vec::with_capacity(layout.frame_len(info.width(), info.height()));
        for (i, (row, rows)) in planes(layout, info.width(), info.height()).into_iter().enumerate() {
            let stride = usize::try_from(frame.plane_stride()[i]).map_err(|_| "negative stride".to_string())?;
            let plane = frame.plane_data(i as u32).map_err(|e| format!("plane {i}: {e}"))?;
            for y in 0..rows {
                let bytes = plane.get(y * stride..y * stride + row).ok_or_else(|| format!("plane {i} is short"))?;
                data.extend_from_slice(bytes);
            }
        }
        Ok(data)
    }

    /// A new buffer (the negotiated layout, its own memory) with a redacted frame's pixels and its times.
    fn buffer_out(frame: &Frame, times: &BufferTimes, info: &gst_video::VideoInfo) -> Result<gst::Buffer, String> {
        let mut buffer = gst::Buffer::with_size(info.size()).map_err(|e| format!("no memory for a frame: {e}"))?;
        {
            let b = buffer.get_mut().ok_or("a new buffer is not writable")?;
            times.apply(b);
            let mut out = gst_video::VideoFrameRef::from_buffer_ref_writable(b, info)
                .map_err(|e| format!("cannot map the output frame: {e}"))?;
            let mut src = frame.data.as_slice();
            for (i, (row, rows)) in planes(frame.layout, frame.width, frame.height).into_iter().enumerate() {
                let stride = usize::try_from(out.plane_stride()[i]).map_err(|_| "negative stride".to_string())?;
                let plane = out.plane_data_mut(i as u32).map_err(|e| format!("plane {i}: {e}"))?;
                for y in 0..rows {
                    let (line, rest) = src.split_at(row);
                    plane
                        .get_mut(y * stride..y * stride + row)
                        .ok_or_else(|| format!("output plane {i} is short"))?
                        .copy_from_slice(line);
                    src = rest;
                }
            }
        }
        Ok(buffer)
    }

    /// Every frame the core has released, with the events queued before each, and the events queued after the
    /// last of them.
    fn collect(st: &mut State) -> Result<Vec<Out>, String> {
        let mut out = Vec::new();
        let info = st.format.as_ref().map(|(i, _)| i.clone());
        while let Some(frame) = st.redactor.as_mut().and_then(|r| r.pull()) {
            let info = info.as_ref().ok_or("a frame came back without caps")?;
            loop {
                match st.pending.pop_front() {
                    Some(Pending::Event(e)) => out.push(Out::Event(e)),
                    Some(Pending::Frame(times)) => {
                        out.push(Out::Buffer(Self::buffer_out(&frame, &times, info)?));
                        st.frames_out += 1;
                        break;
                    }
                    None => return Err("a frame came back that was never queued".into()),
                }
            }
        }
        // Events whose frame before them is out follow it at once.
        while let Some(Pending::Event(_)) = st.pending.front() {
            if let Some(Pending::Event(e)) = st.pending.pop_front() {
                out.push(Out::Event(e));
            }
        }
        Ok(out)
    }

    /// Releases every held frame (EOS, caps change, DRAIN).
    fn drain(st: &mut State) -> Result<Vec<Out>, String> {
        if let Some(r) = st.redactor.as_mut() {
            r.flush().map_err(|e| e.to_string())?;
        }
        Self::collect(st)
    }

    fn push_out(&self, outs: Vec<Out>) -> Result<gst::FlowSuccess, gst::FlowError> {
        for o in outs {
            match o {
                Out::Buffer(b) => {
                    self.srcpad.push(b)?;
                }
                Out::Event(e) => {
                    self.srcpad.push_event(e);
                }
            }
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn fail(&self, what: &str, why: &str) -> gst::FlowError {
        gst::element_imp_error!(self, gst::StreamError::Failed, ("faceveil: {}: {}", what, why));
        gst::FlowError::Error
    }

    fn sink_chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let outs = {
            let mut st = lock(&self.state);
            let Some((info, layout)) = st.format.clone() else { return Err(gst::FlowError::NotNegotiated) };
            if buffer.duration().is_some() {
                st.last_duration = buffer.duration();
            }
            let seq = st.next_seq;
            let data = Self::copy_in(&buffer, &info, layout).map_err(|e| self.fail(&format!("frame {seq}"), &e))?;
            let frame = Frame::new(layout, info.width(), info.height(), seq, data)
                .map_err(|e| self.fail(&format!("frame {seq}"), &e.to_string()))?;
            let Some(redactor) = st.redactor.as_mut() else {
                return Err(self.fail("no detector", "the element was not brought to READY"));
            };
            redactor.set_scan(scan_of(&info, buffer.flags()));
            // On a failure the frame is dropped by the core, never released unredacted.
            redactor
                .push(frame)
                .map_err(|e| self.fail(&format!("frame {seq} could not be analysed"), &e.to_string()))?;
            st.next_seq += 1;
            st.pending.push_back(Pending::Frame(BufferTimes::of(&buffer)));
            drop(buffer);
            Self::collect(&mut st).map_err(|e| self.fail("releasing frames", &e))?
        };
        self.push_out(outs)
    }

    fn drain_and_push(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        let outs = {
            let mut st = lock(&self.state);
            Self::drain(&mut st).map_err(|e| self.fail("releasing the held frames", &e))?
        };
        self.push_out(outs)
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        gst::log!(CAT, obj = pad, "event {:?}", event.type_());
        match event.view() {
            gst::EventView::Caps(c) => {
                let caps = c.caps_owned();
                let Ok(info) = gst_video::VideoInfo::from_caps(&caps) else { return false };
                let Some(layout) = layout_of(info.format()) else { return false };
                // Frames of the old caps leave first, with the old caps.
                if self.drain_and_push().is_err() {
                    return false;
                }
                {
                    let mut st = lock(&self.state);
                    // An interlaced stream's frames wait a frame longer (their second field needs the next
                    // frame's faces): the latency says so from the start. Each buffer's own order is set with it.
                    if let (Scan::Interlaced { .. }, Some(r)) = (
                        scan_of(
                            &info,
                            gst::BufferFlags::from_bits_truncate(gst_video::VideoBufferFlags::INTERLACED.bits()),
                        ),
                        st.redactor.as_mut(),
                    ) {
                        r.set_scan(Scan::Interlaced { top_first: true });
                    }
                    // The held frames left above: the new rate's schedule starts with the next frame.
                    let rate = rate_of(&info);
                    if let Some(Err(e)) = st.redactor.as_mut().map(|r| r.set_frame_rate(rate)) {
                        drop(st);
                        let _ = self.fail("frame rate", &e.to_string());
                        return false;
                    }
                    st.format = Some((info, layout));
                }
                self.announce_latency();
                self.srcpad.push_event(event)
            }
            gst::EventView::Eos(_) => {
                let drained = self.drain_and_push();
                let obj = self.obj();
                let _ = obj.post_message(
                    gst::message::Element::builder(self.counts().to_structure("faceveil")).src(&*obj).build(),
                );
                drained.is_ok() && self.srcpad.push_event(event)
            }
            gst::EventView::FlushStop(_) => {
                {
                    let mut st = lock(&self.state);
                    let dropped = st.redactor.as_mut().map_or(0, |r| r.discard());
                    st.dropped_by_flush += dropped as u64;
                    st.pending.clear();
                }
                self.srcpad.push_event(event)
            }
            gst::EventView::Tag(t) => {
                let orientation = t.tag().get::<gst::tags::ImageOrientation>().map(|v| v.get().to_string());
                match orientation.as_deref().map(rotation_of) {
                    Some(Some(rotation)) => self.set_rotation(rotation) && self.serialized(event),
                    Some(None) => {
                        gst::warning!(CAT, imp = self, "unknown image-orientation {orientation:?}: searched as stored");
                        self.serialized(event)
                    }
                    None => self.serialized(event),
                }
            }
            // A new stream starts unturned until its tags say otherwise.
            gst::EventView::StreamStart(_) => self.set_rotation(Rotation::None) && self.serialized(event),
            _ if event.is_serialized() => self.serialized(event),
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    /// A serialized event: after the frames held before it, or at once when none is held.
    fn serialized(&self, event: gst::Event) -> bool {
        let mut st = lock(&self.state);
        if st.holds_frames() {
            st.pending.push_back(Pending::Event(event));
            true
        } else {
            drop(st);
            self.srcpad.push_event(event)
        }
    }

    /// Turns the search for the frames that follow; frames held under another turn are released first.
    fn set_rotation(&self, rotation: Rotation) -> bool {
        if lock(&self.state).rotation == rotation {
            return true;
        }
        if self.drain_and_push().is_err() {
            return false;
        }
        let mut st = lock(&self.state);
        st.rotation = rotation;
        match st.redactor.as_mut().map(|r| r.set_rotation(rotation)) {
            Some(Err(e)) => {
                drop(st);
                let _ = self.fail("rotation", &e.to_string());
                false
            }
            _ => true,
        }
    }

    fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Drain(_) = query.view_mut() {
            if self.drain_and_push().is_err() {
                return false;
            }
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }

    fn src_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        if let gst::EventView::Qos(_) = event.view() {
            // A recorder keeps every frame: upstream is not asked to drop any.
            return true;
        }
        gst::Pad::event_default(pad, Some(&*self.obj()), event)
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(q) = query.view_mut() {
            let mut upstream = gst::query::Latency::new();
            if !self.sinkpad.peer_query(&mut upstream) {
                return false;
            }
            let (live, min, max) = upstream.result();
            let ours = {
                let mut st = lock(&self.state);
                let l = self.own_latency(&st);
                st.latency = Some(l);
                l
            };
            q.set(live, min + ours, max.map(|m| m + ours));
            return true;
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }

    /// Loads the models and makes the core: on NULL → READY, and again on READY → PAUSED where a property was
    /// changed in READY.
    fn load(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let options = settings.options();
        options
            .validate()
            .map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ("faceveil: invalid settings: {}", e)))?;
        let detector = load_detector(&settings.choice(), &options.detect)
            .map_err(|e| gst::error_msg!(gst::LibraryError::Init, ("faceveil could not load its detector: {}", e)))?;
        let redactor = FrameRedactor::new(detector, options)
            .map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ("faceveil: {}", e)))?;
        let mut st = lock(&self.state);
        *st = State { redactor: Some(redactor), loaded_with: Some(settings), ..State::default() };
        Ok(())
    }
}

#[glib::object_subclass]
impl ObjectSubclass for Faceveil {
    const NAME: &'static str = "GstFaceveil";
    type Type = super::Faceveil;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sink = klass.pad_template("sink").expect("the sink template is registered below");
        let sinkpad = gst::Pad::builder_from_template(&sink)
            .chain_function(|_pad, parent, buffer| {
                Faceveil::catch_panic_pad_function(parent, || Err(gst::FlowError::Error), |imp| imp.sink_chain(buffer))
            })
            .event_function(|pad, parent, event| {
                Faceveil::catch_panic_pad_function(parent, || false, |imp| imp.sink_event(pad, event))
            })
            .query_function(|pad, parent, query| {
                Faceveil::catch_panic_pad_function(parent, || false, |imp| imp.sink_query(pad, query))
            })
            .flags(gst::PadFlags::PROXY_CAPS)
            .build();
        let src = klass.pad_template("src").expect("the src template is registered below");
        let srcpad = gst::Pad::builder_from_template(&src)
            .event_function(|pad, parent, event| {
                Faceveil::catch_panic_pad_function(parent, || false, |imp| imp.src_event(pad, event))
            })
            .query_function(|pad, parent, query| {
                Faceveil::catch_panic_pad_function(parent, || false, |imp| imp.src_query(pad, query))
            })
            .flags(gst::PadFlags::PROXY_CAPS)
            .build();
        Self { sinkpad, srcpad, settings: Mutex::new(Settings::default()), state: Mutex::new(State::default()) }
    }
}

impl ObjectImpl for Faceveil {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        let _ = obj.add_pad(&self.sinkpad);
        let _ = obj.add_pad(&self.srcpad);
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let d = Settings::default();
            vec![
                glib::ParamSpecFloat::builder("threshold")
                    .nick("Threshold")
                    .blurb("Minimum CenterFace score for a face (lower finds more faces and more false ones)")
                    .minimum(0.01)
                    .maximum(0.99)
                    .default_value(d.threshold)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecFloat::builder("small-threshold")
                    .nick("Small-face threshold")
                    .blurb("Minimum YuNet score where YuNet searches the small faces")
                    .minimum(0.01)
                    .maximum(0.99)
                    .default_value(d.small_threshold)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("small-detector", d.small_detector)
                    .nick("Small-face detector")
                    .blurb("The model that searches small-face tiles and focus crops")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("style", d.style)
                    .nick("Style")
                    .blurb("How faces are destroyed (no outline: the element's output is redacted footage)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("shape", d.shape)
                    .nick("Shape")
                    .blurb("Mask shape")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecFloat::builder("mask-scale")
                    .nick("Mask scale")
                    .blurb("Each face's region is enlarged by this factor before redaction")
                    .minimum(1.0)
                    .maximum(4.0)
                    .default_value(d.mask_scale)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder("bridge-frames")
                    .nick("Bridge frames")
                    .blurb("Frames before and after each detection also redacted (bridges misses); the element holds this many frames + 1. -1: from the caps' frame rate (5 up to 37 fps, 11 above)")
                    .minimum(-1)
                    .maximum(250)
                    .default_value(bridge_property(d.bridge_frames))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecFloat::builder("tile-scale")
                    .nick("Tile scale")
                    .blurb("Small faces: tiles of the frame searched magnified by this factor (0 turns tiles off)")
                    .minimum(0.0)
                    .maximum(4.0)
                    .default_value(d.tile_scale)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("precision", d.precision)
                    .nick("Precision")
                    .blurb("CenterFace's precision")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("runtime", d.runtime)
                    .nick("Runtime")
                    .blurb("ONNX Runtime build and provider")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("low-light")
                    .nick("Low light")
                    .blurb("Equalise the contrast of dark detector inputs (the detector's copy only)")
                    .default_value(d.low_light)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("follow-camera")
                    .nick("Follow the camera")
                    .blurb("A moving camera (hand-held, body-worn): measure its shift between frames so that bridged boxes move with the scene")
                    .default_value(d.follow_camera)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("turned")
                    .nick("Turned faces")
                    .blurb("Also search the frame turned a quarter, a half and three quarters, for faces on their side or upside down (people lying down, a camera mounted sideways); adds some over-redaction")
                    .default_value(d.turned)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("model")
                    .nick("CenterFace model")
                    .blurb("Path of a shipped CenterFace model (checked by SHA-256); default: found as the CLI finds it")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("small-model")
                    .nick("YuNet model")
                    .blurb("Path of the shipped YuNet model (checked by SHA-256); default: found as the CLI finds it")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("on-error", d.on_error)
                    .nick("On error")
                    .blurb("A frame that cannot be analysed: post an error and stop, or push it flat grey")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("threads")
                    .nick("Threads")
                    .blurb("Threads inside one inference (0: one per core)")
                    .maximum(256)
                    .default_value(d.threads)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("Counts so far: frames in and out, frames with faces, detections, redacted, degraded, blanked, dropped by a flush (no boxes)")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        if self.obj().current_state() > gst::State::Ready {
            gst::warning!(
                CAT,
                imp = self,
                "{} changed while running: it takes effect from READY -> PAUSED",
                pspec.name()
            );
        }
        let mut s = lock(&self.settings);
        // GObject has checked each value's type against its ParamSpec.
        match pspec.name() {
            "threshold" => s.threshold = value.get().unwrap_or(s.threshold),
            "small-threshold" => s.small_threshold = value.get().unwrap_or(s.small_threshold),
            "small-detector" => s.small_detector = value.get().unwrap_or(s.small_detector),
            "style" => s.style = value.get().unwrap_or(s.style),
            "shape" => s.shape = value.get().unwrap_or(s.shape),
            "mask-scale" => s.mask_scale = value.get().unwrap_or(s.mask_scale),
            "bridge-frames" => s.bridge_frames = value.get::<i32>().map_or(s.bridge_frames, |b| u32::try_from(b).ok()),
            "tile-scale" => s.tile_scale = value.get().unwrap_or(s.tile_scale),
            "precision" => s.precision = value.get().unwrap_or(s.precision),
            "runtime" => s.runtime = value.get().unwrap_or(s.runtime),
            "low-light" => s.low_light = value.get().unwrap_or(s.low_light),
            "follow-camera" => s.follow_camera = value.get().unwrap_or(s.follow_camera),
            "turned" => s.turned = value.get().unwrap_or(s.turned),
            "model" => s.model = value.get().unwrap_or(None),
            "small-model" => s.small_model = value.get().unwrap_or(None),
            "on-error" => s.on_error = value.get().unwrap_or(s.on_error),
            "threads" => s.threads = value.get().unwrap_or(s.threads),
            other => gst::warning!(CAT, imp = self, "no writable property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "stats" {
            return self.counts().to_structure("faceveil").to_value();
        }
        let s = lock(&self.settings);
        match pspec.name() {
            "threshold" => s.threshold.to_value(),
            "small-threshold" => s.small_threshold.to_value(),
            "small-detector" => s.small_detector.to_value(),
            "style" => s.style.to_value(),
            "shape" => s.shape.to_value(),
            "mask-scale" => s.mask_scale.to_value(),
            "bridge-frames" => bridge_property(s.bridge_frames).to_value(),
            "tile-scale" => s.tile_scale.to_value(),
            "precision" => s.precision.to_value(),
            "runtime" => s.runtime.to_value(),
            "low-light" => s.low_light.to_value(),
            "follow-camera" => s.follow_camera.to_value(),
            "turned" => s.turned.to_value(),
            "model" => s.model.to_value(),
            "small-model" => s.small_model.to_value(),
            "on-error" => s.on_error.to_value(),
            "threads" => s.threads.to_value(),
            _ => pspec.default_value().clone(),
        }
    }
}

impl GstObjectImpl for Faceveil {}

impl ElementImpl for Faceveil {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "faceveil face redaction",
                "Filter/Effect/Video",
                "Destroys every face in raw video (blur, pixelate or fill) without identifying anyone: CenterFace and \
                 YuNet find them, misses are bridged by motion tracking over a look-ahead of bridge-frames + 1 frames \
                 (added to the latency), and a frame that cannot be analysed is never pushed as it came",
                "faceveil developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new().format_list(FORMATS.iter().map(|(f, _)| *f)).build();
            [("src", gst::PadDirection::Src), ("sink", gst::PadDirection::Sink)]
                .into_iter()
                .filter_map(|(name, dir)| gst::PadTemplate::new(name, dir, gst::PadPresence::Always, &caps).ok())
                .collect()
        });
        TEMPLATES.as_ref()
    }

    fn change_state(&self, transition: gst::StateChange) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        let stale = || lock(&self.state).loaded_with.as_ref() != Some(&*lock(&self.settings));
        if transition == gst::StateChange::NullToReady || (transition == gst::StateChange::ReadyToPaused && stale()) {
            if let Err(e) = self.load() {
                self.post_error_message(e);
                return Err(gst::StateChangeError);
            }
        }
        let result = self.parent_change_state(transition)?;
        match transition {
            gst::StateChange::PausedToReady => {
                let mut st = lock(&self.state);
                if let Some(r) = st.redactor.as_mut() {
                    r.discard();
                    let _ = r.set_rotation(Rotation::None);
                }
                st.pending.clear();
                st.format = None;
                st.rotation = Rotation::None;
            }
            gst::StateChange::ReadyToNull => {
                *lock(&self.state) = State::default();
            }
            _ => {}
        }
        Ok(result)
    }
}

/// Whether a buffer of a stream with `info` holds two fields (interleaved caps, or a "mixed" stream's buffer
/// flagged interlaced), and which comes first (the caps' field order, else the buffer's flag).
fn scan_of(info: &gst_video::VideoInfo, flags: gst::BufferFlags) -> Scan {
    let own = gst_video::VideoBufferFlags::from_bits_truncate(flags.bits());
    let interlaced = match info.interlace_mode() {
        gst_video::VideoInterlaceMode::Interleaved => true,
        gst_video::VideoInterlaceMode::Mixed => own.contains(gst_video::VideoBufferFlags::INTERLACED),
        // Progressive, and one field a buffer (each a picture of its own).
        _ => false,
    };
    let top_first = match info.field_order() {
        gst_video::VideoFieldOrder::TopFieldFirst => true,
        gst_video::VideoFieldOrder::BottomFieldFirst => false,
        _ => own.contains(gst_video::VideoBufferFlags::TFF),
    };
    match interlaced {
        true => Scan::Interlaced { top_first },
        false => Scan::Progressive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orientations_turn_faces_upright() {
        assert_eq!(rotation_of("rotate-90"), Some(Rotation::Cw90));
        assert_eq!(rotation_of("rotate-270"), Some(Rotation::Cw270));
        assert_eq!(rotation_of("flip-rotate-90"), Some(Rotation::Cw270));
        assert_eq!(rotation_of("flip-rotate-0"), Some(Rotation::None));
        assert_eq!(rotation_of("sideways"), None);
    }

    #[test]
    fn planes_hold_a_tight_frame() {
        for (_, layout) in FORMATS {
            let bytes: usize = planes(layout, 641, 361).iter().map(|(row, rows)| row * rows).sum();
            assert_eq!(bytes, layout.frame_len(641, 361), "{layout:?}");
        }
    }
}
