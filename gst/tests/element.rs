//! The `faceveil` element on real pixels: the shipped public-domain portrait over a moving pattern, through
//! gstreamer-check's Harness (counts, timestamps, EOS, flush, latency, failures) and through `gst-launch-1.0`
//! with the built plugin (`cargo build --release -p gst-faceveil` first; scripts/test.sh does).

use gst::prelude::*;
use gst_check::Harness;
use gst_video::prelude::*;
use image::RgbImage;
use std::path::{Path, PathBuf};
use std::process::Command;

const W: u32 = 640;
const H: u32 = 360;
/// Inside the portrait's face (scaled to 360×360 at x = 140), and a region far from it.
const FACE: (u32, u32, u32, u32) = (282, 62, 318, 108);
const FAR: (u32, u32, u32, u32) = (520, 250, 630, 350);
const FRAME_NS: u64 = 40_000_000;

fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gst::init().expect("GStreamer initialises");
        gstfaceveil::plugin_register_static().expect("the plugin registers");
    });
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Frame `i` of a W×H picture: the portrait over a pattern that moves every frame (so every frame is searched).
fn picture(i: u32, w: u32) -> RgbImage {
    let portrait = image::open(repo().join("assets/astronaut.png")).expect("the portrait").to_rgb8();
    let face = image::imageops::resize(&portrait, 360, 360, image::imageops::FilterType::Triangle);
    let mut img = RgbImage::from_fn(w, H, |x, y| {
        let v = ((x * 7 + y * 13 + i * 11) % 97) as u8 + 80;
        image::Rgb([v, v / 2 + 40, 255 - v])
    });
    image::imageops::overlay(&mut img, &face, 140, 0);
    img
}

fn info(format: &str, w: u32) -> gst_video::VideoInfo {
    info_sized(format, w, H)
}

fn info_sized(format: &str, w: u32, h: u32) -> gst_video::VideoInfo {
    info_at(format, w, h, 25)
}

fn info_at(format: &str, w: u32, h: u32, fps: i32) -> gst_video::VideoInfo {
    init();
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", format)
        .field("width", w as i32)
        .field("height", h as i32)
        .field("framerate", gst::Fraction::new(fps, 1))
        .build();
    gst_video::VideoInfo::from_caps(&caps).expect("valid caps")
}

/// An RGB buffer laid out as `info` says (rows padded to its stride).
fn buffer(img: &RgbImage, info: &gst_video::VideoInfo, i: u64) -> gst::Buffer {
    let mut buffer = gst::Buffer::with_size(info.size()).unwrap();
    {
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(i * FRAME_NS));
        b.set_duration(gst::ClockTime::from_nseconds(FRAME_NS));
        let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(b, info).unwrap();
        let stride = frame.plane_stride()[0] as usize;
        let row = img.width() as usize * 3;
        let plane = frame.plane_data_mut(0).unwrap();
        for (y, line) in img.as_raw().chunks_exact(row).enumerate() {
            plane[y * stride..y * stride + row].copy_from_slice(line);
        }
    }
    buffer
}

fn rgb_of(buffer: &gst::Buffer, info: &gst_video::VideoInfo) -> RgbImage {
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), info).unwrap();
    let stride = frame.plane_stride()[0] as usize;
    let row = info.width() as usize * 3;
    let plane = frame.plane_data(0).unwrap();
    let data = (0..info.height() as usize).flat_map(|y| plane[y * stride..y * stride + row].to_vec()).collect();
    RgbImage::from_raw(info.width(), info.height(), data).unwrap()
}

/// Share of the original's fine detail left in a region (`<hp_o, hp_r> / <hp_o, hp_o>`, hp = grey minus its
/// 5×5 box mean): about 1 untouched, about 0 destroyed.
fn detail_kept(orig: &RgbImage, red: &RgbImage, r: (u32, u32, u32, u32)) -> f64 {
    let grey = |img: &RgbImage, x: u32, y: u32| {
        let p = img.get_pixel(x, y);
        0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64
    };
    let hp = |img: &RgbImage, x: u32, y: u32| {
        let mean: f64 = (0..25).map(|k| grey(img, x + k % 5 - 2, y + k / 5 - 2)).sum::<f64>() / 25.0;
        grey(img, x, y) - mean
    };
    let (mut oo, mut or) = (0.0, 0.0);
    for y in r.1..r.3 {
        for x in r.0..r.2 {
            let (a, b) = (hp(orig, x, y), hp(red, x, y));
            oo += a * a;
            or += a * b;
        }
    }
    if oo > 0.0 {
        or / oo
    } else {
        0.0
    }
}

fn harness(props: &[(&str, &dyn ToValue)]) -> Harness {
    init();
    let mut builder = gst::ElementFactory::make("faceveil");
    for (name, value) in props {
        builder = builder.property(name, value.to_value());
    }
    let element = builder.build().expect("the element is made");
    Harness::with_element(&element, Some("sink"), Some("src"))
}

fn pull_all(h: &mut Harness) -> Vec<gst::Buffer> {
    std::iter::from_fn(|| h.try_pull()).collect()
}

fn stat(h: &Harness, field: &str) -> u64 {
    let element = h.element().unwrap();
    element.property::<gst::Structure>("stats").get::<u64>(field).unwrap()
}

#[test]
fn every_frame_comes_out_redacted_with_its_timestamps_after_the_look_ahead_and_eos() {
    // 642 px of RGB: rows padded to 1928 bytes.
    let info = info("RGB", W + 2);
    let mut h = harness(&[]);
    h.set_src_caps(info.to_caps().unwrap());
    let n = 12u64;
    let delay = 6u64; // bridge-frames 5 + 1
    let mut out = Vec::new();
    let originals: Vec<RgbImage> = (0..n as u32).map(|i| picture(i, W + 2)).collect();
    for (i, img) in originals.iter().enumerate() {
        assert_eq!(h.push(buffer(img, &info, i as u64)), Ok(gst::FlowSuccess::Ok));
        out.extend(pull_all(&mut h));
        // Held for the look-ahead, never longer.
        assert_eq!(out.len() as u64, (i as u64 + 1).saturating_sub(delay), "after frame {i}");
    }
    assert!(h.push_event(gst::event::Eos::new()));
    out.extend(pull_all(&mut h));
    assert_eq!(out.len() as u64, n, "EOS releases every held frame");
    for (i, (b, orig)) in out.iter().zip(&originals).enumerate() {
        assert_eq!(b.pts(), Some(gst::ClockTime::from_nseconds(i as u64 * FRAME_NS)));
        assert_eq!(b.duration(), Some(gst::ClockTime::from_nseconds(FRAME_NS)));
        let red = rgb_of(b, &info);
        let kept = detail_kept(orig, &red, FACE);
        assert!(kept < 0.3, "frame {i}: the face keeps {kept:.2} of its detail");
        assert!(detail_kept(orig, &red, FAR) > 0.95, "frame {i}: the background changed");
    }
    // EOS went out after the last frame, and the counts say what happened.
    let mut saw_eos = false;
    while let Some(e) = h.try_pull_event() {
        saw_eos |= e.type_() == gst::EventType::Eos;
    }
    assert!(saw_eos);
    assert_eq!((stat(&h, "frames-in"), stat(&h, "frames-out")), (n, n));
    assert!(stat(&h, "frames-redacted") >= n - 1);
}

#[test]
fn a_flush_drops_held_frames_and_the_stream_goes_on() {
    let info = info("RGB", W);
    let mut h = harness(&[]);
    h.set_src_caps(info.to_caps().unwrap());
    for i in 0..4 {
        assert_eq!(h.push(buffer(&picture(i, W), &info, i as u64)), Ok(gst::FlowSuccess::Ok));
    }
    assert!(h.try_pull().is_none());
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    assert!(h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new())));
    assert_eq!(stat(&h, "frames-dropped-by-flush"), 4);
    for i in 10..12 {
        assert_eq!(h.push(buffer(&picture(i, W), &info, i as u64)), Ok(gst::FlowSuccess::Ok));
    }
    assert!(h.push_event(gst::event::Eos::new()));
    let out = pull_all(&mut h);
    let pts: Vec<_> = out.iter().map(|b| b.pts()).collect();
    assert_eq!(pts, (10..12).map(|i| Some(gst::ClockTime::from_nseconds(i * FRAME_NS))).collect::<Vec<_>>());
}

#[test]
fn a_drain_query_and_a_caps_change_release_every_held_frame_first() {
    let info = info("RGB", W);
    let mut h = harness(&[]);
    h.set_src_caps(info.to_caps().unwrap());
    for i in 0..3 {
        h.push(buffer(&picture(i, W), &info, i as u64)).unwrap();
    }
    assert!(h.try_pull().is_none());
    let mut drain = gst::query::Drain::new();
    assert!(h.srcpad().unwrap().peer_query(&mut drain));
    assert_eq!(pull_all(&mut h).len(), 3, "DRAIN releases every held frame");

    for i in 3..5 {
        h.push(buffer(&picture(i, W), &info, i as u64)).unwrap();
    }
    // New caps (another size): the two held frames leave first, in the old caps' layout.
    let wide = self::info("RGB", W + 2);
    h.set_src_caps(wide.to_caps().unwrap());
    let out = pull_all(&mut h);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|b| b.size() == info.size()));
    h.push(buffer(&picture(5, W + 2), &wide, 5)).unwrap();
    h.push_event(gst::event::Eos::new());
    let out = pull_all(&mut h);
    assert_eq!((out.len(), out[0].size()), (1, wide.size()));
}

/// Frames stored turned a quarter to the left (a phone held sideways), shown upright by an
/// `image-orientation=rotate-90` tag: with the tag the face is searched upright and covered in every frame.
fn sideways(tag: Option<&str>) -> Vec<f64> {
    sideways_with(tag, &[])
}

fn sideways_with(tag: Option<&str>, props: &[(&str, &dyn ToValue)]) -> Vec<f64> {
    let info = self::info_sized("RGB", H, W);
    let mut h = harness(props);
    h.set_src_caps(info.to_caps().unwrap());
    if let Some(orientation) = tag {
        let mut tags = gst::TagList::new();
        tags.get_mut().unwrap().add::<gst::tags::ImageOrientation>(&orientation, gst::TagMergeMode::Replace);
        assert!(h.push_event(gst::event::Tag::new(tags)));
    }
    let originals: Vec<RgbImage> = (0..8).map(|i| image::imageops::rotate270(&picture(i, W))).collect();
    for (i, img) in originals.iter().enumerate() {
        h.push(buffer(img, &info, i as u64)).unwrap();
    }
    h.push_event(gst::event::Eos::new());
    let out = pull_all(&mut h);
    assert_eq!(out.len(), originals.len());
    // The face region, turned as the frames are stored.
    let face = (FACE.1, W - FACE.2, FACE.3, W - FACE.0);
    out.iter().zip(&originals).map(|(b, o)| detail_kept(o, &rgb_of(b, &info), face)).collect()
}

#[test]
fn an_image_orientation_tag_turns_the_search_upright() {
    // Masks found in the upright picture land on the stored pixels (a wrong turn would miss the face).
    let kept = sideways(Some("rotate-90"));
    assert!(kept.iter().all(|&k| k < 0.3), "with the tag: {kept:?}");
    // A mirrored orientation that needs the same turn.
    let kept = sideways(Some("flip-rotate-270"));
    assert!(kept.iter().all(|&k| k < 0.3), "flipped: {kept:?}");
}

#[test]
fn the_turned_search_runs_on_a_sideways_stream_without_a_tag_and_every_frame_comes_out_redacted() {
    init();
    let element = gst::ElementFactory::make("faceveil").build().unwrap();
    assert!(!element.property::<bool>("turned"), "off by default");
    element.set_property("turned", true);
    assert!(element.property::<bool>("turned"));
    // The turned passes (one turn on every full whole-frame pass) run beside the upright search.
    let kept = sideways_with(None, &[("turned", &true)]);
    assert!(kept.iter().all(|&k| k < 0.3), "turned: {kept:?}");
}

#[test]
fn the_latency_query_adds_the_look_ahead() {
    for (bridge, frames) in [(5i32, 6u64), (2, 3)] {
        let mut h = harness(&[("bridge-frames", &bridge)]);
        h.set_src_caps(info("RGB", W).to_caps().unwrap());
        h.set_upstream_latency(gst::ClockTime::from_mseconds(10));
        let latency = h.query_latency();
        assert_eq!(latency, Some(gst::ClockTime::from_nseconds(10_000_000 + frames * FRAME_NS)), "bridge {bridge}");
    }
}

#[test]
fn a_50_fps_stream_is_held_for_the_same_time_as_25_fps_and_every_frame_comes_out_redacted() {
    let info = info_at("RGB", W, H, 50);
    let half = FRAME_NS / 2;
    let mut h = harness(&[]);
    assert_eq!(h.element().unwrap().property::<i32>("bridge-frames"), -1, "the window follows the rate");
    h.set_src_caps(info.to_caps().unwrap());
    h.set_upstream_latency(gst::ClockTime::ZERO);
    // 11 frames bridged + the newest, 20 ms each: the 240 ms of 25 fps.
    assert_eq!(h.query_latency(), Some(gst::ClockTime::from_nseconds(12 * half)));
    let n = 30u64;
    let originals: Vec<RgbImage> = (0..n as u32).map(|i| picture(i, W)).collect();
    let mut out = Vec::new();
    for (i, img) in originals.iter().enumerate() {
        let mut b = buffer(img, &info, 0);
        let b_mut = b.make_mut();
        b_mut.set_pts(gst::ClockTime::from_nseconds(i as u64 * half));
        b_mut.set_duration(gst::ClockTime::from_nseconds(half));
        assert_eq!(h.push(b), Ok(gst::FlowSuccess::Ok));
        out.extend(pull_all(&mut h));
        assert_eq!(out.len() as u64, (i as u64 + 1).saturating_sub(12), "after frame {i}");
    }
    assert!(h.push_event(gst::event::Eos::new()));
    out.extend(pull_all(&mut h));
    assert_eq!(out.len() as u64, n);
    for (i, (b, orig)) in out.iter().zip(&originals).enumerate() {
        assert_eq!(b.pts(), Some(gst::ClockTime::from_nseconds(i as u64 * half)));
        let kept = detail_kept(orig, &rgb_of(b, &info), FACE);
        assert!(kept < 0.3, "frame {i}: the face keeps {kept:.2} of its detail");
    }
    // A given window is kept whatever the rate.
    let mut h = harness(&[("bridge-frames", &2i32)]);
    h.set_src_caps(info.to_caps().unwrap());
    h.set_upstream_latency(gst::ClockTime::ZERO);
    assert_eq!(h.query_latency(), Some(gst::ClockTime::from_nseconds(3 * half)));
}

#[test]
fn an_interlaced_stream_waits_a_frame_longer_and_every_frame_comes_out_redacted() {
    init();
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", "RGB")
        .field("width", W as i32)
        .field("height", H as i32)
        .field("framerate", gst::Fraction::new(25, 1))
        .field("interlace-mode", "interleaved")
        .field("field-order", "top-field-first")
        .build();
    let info = gst_video::VideoInfo::from_caps(&caps).expect("valid caps");
    let mut h = harness(&[]);
    h.set_src_caps(caps);
    h.set_upstream_latency(gst::ClockTime::from_mseconds(10));
    assert_eq!(h.query_latency(), Some(gst::ClockTime::from_nseconds(10_000_000 + 7 * FRAME_NS)));
    let pictures: Vec<RgbImage> = (0..4).map(|i| picture(i, W)).collect();
    for (i, p) in pictures.iter().enumerate() {
        assert_eq!(h.push(buffer(p, &info, i as u64)), Ok(gst::FlowSuccess::Ok));
    }
    assert!(h.push_event(gst::event::Eos::new()));
    let out = pull_all(&mut h);
    assert_eq!(out.len(), 4);
    for (i, b) in out.iter().enumerate() {
        assert_eq!(b.pts(), Some(gst::ClockTime::from_nseconds(i as u64 * FRAME_NS)));
        let kept = detail_kept(&pictures[i], &rgb_of(b, &info), FACE);
        assert!(kept < 0.3, "frame {i} keeps {kept:.2} of the face");
    }
}

/// Frame `i` of a hand-held camera: a W×H window, shaking by up to ±8 px across and ±6 px down, over a still
/// scene (the portrait over a fixed, non-repeating pattern of 6-px blocks); and where the face's region lies in it.
fn shaken(i: u32) -> (RgbImage, (u32, u32, u32, u32)) {
    const SHAKE: [(i32, i32); 8] = [(0, 0), (8, -5), (-7, 6), (5, 3), (-8, -6), (2, 5), (7, -2), (-4, 4)];
    let (dx, dy) = SHAKE[i as usize % SHAKE.len()];
    let (ox, oy) = ((16 + dx) as u32, (16 + dy) as u32);
    let portrait = image::open(repo().join("assets/astronaut.png")).expect("the portrait").to_rgb8();
    let face = image::imageops::resize(&portrait, 360, 360, image::imageops::FilterType::Triangle);
    let mut scene = RgbImage::from_fn(W + 32, H + 32, |x, y| {
        let h = (x / 6).wrapping_mul(73_856_093) ^ (y / 6).wrapping_mul(19_349_663);
        let v = (h.wrapping_mul(2_654_435_761) >> 24) as u8;
        image::Rgb([v, v / 2 + 60, 255 - v])
    });
    image::imageops::overlay(&mut scene, &face, 156, 16);
    let view = image::imageops::crop_imm(&scene, ox, oy, W, H).to_image();
    let (x0, y0, x1, y1) = FACE;
    (view, (x0 + 16 - ox, y0 + 16 - oy, x1 + 16 - ox, y1 + 16 - oy))
}

#[test]
fn follow_camera_measures_a_shaking_camera_and_every_frame_comes_out_redacted() {
    let info = info("RGB", W);
    for follow in [false, true] {
        let mut h = harness(&[("follow-camera", &follow)]);
        h.set_src_caps(info.to_caps().unwrap());
        let n = 16u32;
        let frames: Vec<_> = (0..n).map(shaken).collect();
        let mut out = Vec::new();
        for (i, (img, _)) in frames.iter().enumerate() {
            assert_eq!(h.push(buffer(img, &info, i as u64)), Ok(gst::FlowSuccess::Ok));
            out.extend(pull_all(&mut h));
        }
        assert!(h.push_event(gst::event::Eos::new()));
        out.extend(pull_all(&mut h));
        assert_eq!(out.len(), n as usize);
        for (i, (b, (orig, face))) in out.iter().zip(&frames).enumerate() {
            let kept = detail_kept(orig, &rgb_of(b, &info), *face);
            assert!(kept < 0.3, "follow-camera {follow}, frame {i}: the face keeps {kept:.2} of its detail");
        }
        let moved = stat(&h, "frames-camera-moved");
        if follow {
            assert!(moved >= u64::from(n) / 2, "the shake was measured on {moved} of {n} frames");
        } else {
            assert_eq!(moved, 0, "nothing is measured unless asked for");
        }
    }
}

#[test]
fn a_property_changed_in_ready_takes_effect_on_the_way_to_paused() {
    init();
    let element = gst::ElementFactory::make("faceveil").build().unwrap();
    element.set_state(gst::State::Ready).unwrap();
    // The models loaded with 5 bridge frames; 2 are asked for before the stream starts.
    element.set_property("bridge-frames", 2i32);
    let mut h = Harness::with_element(&element, Some("sink"), Some("src"));
    let info = info("RGB", W);
    h.set_src_caps(info.to_caps().unwrap());
    h.set_upstream_latency(gst::ClockTime::ZERO);
    assert_eq!(h.query_latency(), Some(gst::ClockTime::from_nseconds(3 * FRAME_NS)));
    // And frames are held for 3, not 6.
    for i in 0..4 {
        h.push(buffer(&picture(i, W), &info, i as u64)).unwrap();
    }
    assert_eq!(pull_all(&mut h).len(), 1);
}

#[test]
fn serialized_events_keep_their_place_between_frames() {
    let info = info("RGB", W);
    let mut h = harness(&[("bridge-frames", &1i32)]);
    h.set_src_caps(info.to_caps().unwrap());
    // Drop what the harness sent before the first frame.
    while h.try_pull_event().is_some() {}
    h.push(buffer(&picture(0, W), &info, 0)).unwrap();
    let tags = gst::TagList::new();
    assert!(h.push_event(gst::event::Tag::new(tags)));
    // The tag waits behind frame 0, which is still held.
    assert!(h.try_pull_event().is_none(), "an event overtook a held frame");
    h.push(buffer(&picture(1, W), &info, 1)).unwrap();
    assert!(h.try_pull_event().is_none(), "an event overtook a held frame");
    h.push(buffer(&picture(2, W), &info, 2)).unwrap();
    // Frame 0 is out, then the tag at once.
    assert_eq!(h.buffers_received(), 1);
    let event = h.try_pull_event().expect("the tag follows frame 0");
    assert_eq!(event.type_(), gst::EventType::Tag);
}

#[test]
fn a_frame_that_cannot_be_analysed_stops_the_stream_and_is_never_pushed() {
    init();
    // Wider than the core analyses (16384): the frame is refused, not passed on.
    let mut h = harness(&[]);
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", "RGB")
        .field("width", 20000)
        .field("height", 2)
        .field("framerate", gst::Fraction::new(25, 1))
        .build();
    h.set_src_caps(caps.clone());
    let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
    let b = buffer(&RgbImage::new(20000, 2), &info, 0);
    assert_eq!(h.push(b), Err(gst::FlowError::Error));
    h.push_event(gst::event::Eos::new());
    assert!(h.try_pull().is_none(), "a frame that could not be analysed came out");
}

#[test]
fn a_model_that_cannot_load_is_an_element_error_not_a_crash() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("centerface.onnx");
    std::fs::write(&fake, b"not a model").unwrap();
    let pipeline =
        gst::parse::launch(&format!("videotestsrc num-buffers=3 ! faceveil model=\"{}\" ! fakesink", fake.display()))
            .unwrap();
    assert!(pipeline.set_state(gst::State::Playing).is_err());
    let bus = pipeline.bus().unwrap();
    let message =
        bus.timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error]).expect("an error");
    let gst::MessageView::Error(e) = message.view() else { unreachable!() };
    // The reason is the error's message, as gst-launch-1.0 and an appliance's log show it.
    let text = e.error().to_string();
    assert!(text.contains("could not load its detector") && text.contains("SHA-256"), "{text}");
    pipeline.set_state(gst::State::Null).unwrap();
}

/// The built plugin in the test binary's profile folder (target/<profile>/); scripts/test.sh builds it first,
/// and it is built here when the test runs alone.
fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    if !dir.join("libgstfaceveil.so").exists() {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.current_dir(repo()).args(["build", "-p", "gst-faceveil"]);
        if dir.ends_with("release") {
            cargo.arg("--release");
        }
        assert!(cargo.status().unwrap().success(), "cannot build gst-faceveil");
    }
    dir
}

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg").args(["-nostdin", "-loglevel", "error", "-y"]).args(args).output().unwrap();
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn frames_rgb(path: &Path) -> Vec<RgbImage> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout.chunks_exact((W * H * 3) as usize).map(|c| RgbImage::from_raw(W, H, c.to_vec()).unwrap()).collect()
}

fn pts_list(path: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries", "frame=pts_time", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn gst_launch_redacts_a_clip_frame_by_frame_and_keeps_every_frame() {
    let plugins = plugin_dir();
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.mp4"), dir.path().join("out.mp4"));
    let portrait = repo().join("assets/astronaut.png");
    ffmpeg(&[
        "-loop",
        "1",
        "-framerate",
        "25",
        "-i",
        portrait.to_str().unwrap(),
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=25",
        "-filter_complex",
        "[0:v]scale=360:360[f];[1:v][f]overlay=140:0:shortest=1,format=yuv420p[v]",
        "-map",
        "[v]",
        "-frames:v",
        "40",
        "-c:v",
        "libx264",
        "-qp",
        "0",
        "-preset",
        "ultrafast",
        input.to_str().unwrap(),
    ]);
    let run = Command::new("gst-launch-1.0")
        .env("GST_PLUGIN_PATH", &plugins)
        .args(["-q", "filesrc"])
        .arg(format!("location={}", input.display()))
        .args(["!", "decodebin", "!", "videoconvert", "!", "faceveil", "!", "x264enc", "speed-preset=ultrafast"])
        .args(["quantizer=0", "pass=qual", "!", "mp4mux", "!", "filesink"])
        .arg(format!("location={}", output.display()))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    let (orig, red) = (frames_rgb(&input), frames_rgb(&output));
    assert_eq!(red.len(), 40, "every frame kept");
    assert_eq!(pts_list(&output), pts_list(&input), "timestamps kept");
    for (i, (o, r)) in orig.iter().zip(&red).enumerate() {
        let kept = detail_kept(o, r, FACE);
        assert!(kept < 0.3, "frame {i}: the face keeps {kept:.2} of its detail");
    }
}
