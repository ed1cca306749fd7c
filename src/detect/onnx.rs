//! What every ONNX model faceveil ships shares: reading a model file checked against the shipped SHA-256
//! values, and building its ONNX Runtime session with the chosen runtime and provider.

use super::{RuntimeInfo, SessionOptions, ShippedModel};
use crate::{Error, Result};
use ort::session::Session;
use std::path::Path;

/// Reads `model` and checks that it is one of `shipped`; returns its bytes and SHA-256.
pub(crate) fn read_one_of(model: &Path, shipped: &[ShippedModel]) -> Result<(Vec<u8>, String)> {
    let bytes = std::fs::read(model).map_err(|e| Error::io(model, e))?;
    let actual = crate::sha256_hex(&bytes);
    if !shipped.iter().any(|m| m.sha256 == actual) {
        let expected = shipped.iter().map(|m| format!("{} ({})", m.sha256, m.file)).collect::<Vec<_>>();
        return Err(Error::ModelChecksum { path: model.to_path_buf(), expected: expected.join(" or "), actual });
    }
    Ok((bytes, actual))
}

/// An ONNX Runtime session for the model `bytes` with `options`, and what runs it. `stored` is the model's
/// own arithmetic (`fp32`, `int8`), reported unless the provider changes it (OpenVINO runs bf16).
pub(crate) fn session(bytes: &[u8], options: &SessionOptions, stored: &'static str) -> Result<(Session, RuntimeInfo)> {
    let (runtime, library) = if options.cuda {
        (super::Runtime::Cpu, super::find_runtime_library(options.runtime_library.as_deref())?)
    } else {
        super::resolve_runtime(options.runtime, options.runtime_library.as_deref())?
    };
    let environment = super::init_runtime_at(&library)?;
    let ort_err = |e: ort::Error<ort::session::builder::SessionBuilder>| Error::Inference(e.to_string());
    let mut builder = Session::builder(&environment).map_err(|e| Error::Inference(e.to_string()))?;
    // Without this, ONNX Runtime's worker threads spin on the cores after each run, taking them from the
    // decoder, the encoder and the pre-processing that run beside detection.
    builder = builder.with_intra_op_spinning(false).map_err(ort_err)?;
    // Input sizes vary (whole frame, tiles): a memory pattern planned per shape only adds memory.
    builder = builder.with_memory_pattern(false).map_err(ort_err)?;
    // Working memory from the environment's one CPU arena (registered with it), not an arena per session.
    builder = builder.with_env_allocators().map_err(ort_err)?;
    if options.intra_threads > 0 {
        builder = builder.with_intra_threads(options.intra_threads).map_err(ort_err)?;
    }
    if options.cuda {
        builder = cuda_provider(builder)?;
    }
    let openvino = runtime == super::Runtime::OpenVino;
    if openvino {
        builder = openvino_provider(builder, options.intra_threads)?;
    }
    let session = builder.commit_from_memory(bytes).map_err(|e| Error::Inference(e.to_string()))?;
    let info = RuntimeInfo {
        provider: if openvino {
            "openvino"
        } else if options.cuda {
            "cuda"
        } else {
            "cpu"
        },
        precision: if openvino { "bf16" } else { stored },
        library,
    };
    Ok((session, info))
}

/// The threads one inference uses for the option `intra_threads` (0: one per core).
pub(crate) fn intra_threads(intra_threads: usize) -> usize {
    match intra_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// OpenVINO on the CPU with bf16 inference (OpenVINO runs fp32 without the hint, no faster than the CPU
/// provider). `threads` 0: one per core.
fn openvino_provider(
    builder: ort::session::builder::SessionBuilder,
    threads: usize,
) -> Result<ort::session::builder::SessionBuilder> {
    use ort::ep::ArbitrarilyConfigurableExecutionProvider;
    let threads = intra_threads(threads);
    let ep = ort::ep::OpenVINO::default()
        .with_device_type("CPU")
        .with_num_threads(threads)
        .with_arbitrary_config("load_config", r#"{"CPU":{"INFERENCE_PRECISION_HINT":"bf16"}}"#)
        .build()
        .error_on_failure();
    builder.with_execution_providers([ep]).map_err(|e| Error::Inference(format!("OpenVINO execution provider: {e}")))
}

#[cfg(feature = "cuda")]
fn cuda_provider(builder: ort::session::builder::SessionBuilder) -> Result<ort::session::builder::SessionBuilder> {
    builder
        .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
        .map_err(|e| Error::Inference(format!("CUDA execution provider: {e}")))
}

#[cfg(not(feature = "cuda"))]
fn cuda_provider(_builder: ort::session::builder::SessionBuilder) -> Result<ort::session::builder::SessionBuilder> {
    Err(Error::Config("CUDA requested, but faceveil was built without the `cuda` feature".into()))
}

/// Channel order of a model's input planes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channels {
    Rgb,
    Bgr,
}

/// Planar model inputs not in use, for any model's next inference to take. Every model of every detector
/// in the process draws from here: the models of a run take turns on one thread, so one buffer serves them
/// all (a buffer per model kept one largest input each: 12 MiB for a 1024 × 1024 tile), and an embedder
/// calling from many threads in turn keeps as many buffers as inferences ever ran at once, not one per thread.
static SPARE_INPUTS: std::sync::Mutex<Vec<Vec<f32>>> = std::sync::Mutex::new(Vec::new());

/// How a picture given to a model stands to low light (see [`lowlight`](super::lowlight)).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Light<'a> {
    /// Equalised first if it is dark (the model's low-light setting on).
    Decide,
    /// Run as it is (the setting off, or the caller found the picture not dark).
    AsIs,
    /// Run this, the caller's equalised copy of the (dark) picture, instead.
    Equalised(&'a image::RgbImage),
}

impl Light<'_> {
    /// What a model with the low-light setting `on` runs for a picture whose caller made `equalised` (`Some`:
    /// the equalised copy of a dark picture; `None`: the picture is not dark).
    pub(crate) fn given(on: bool, equalised: Option<&image::RgbImage>) -> Light<'_> {
        match equalised {
            Some(copy) if on => Light::Equalised(copy),
            _ => Light::AsIs,
        }
    }

    /// A model's own decision, with its low-light setting `on`.
    pub(crate) fn own(on: bool) -> Light<'static> {
        if on {
            Light::Decide
        } else {
            Light::AsIs
        }
    }
}

/// One inference of a face model: `img` (or what `light` puts in its place: its contrast-equalised copy when
/// it is dark, see [`Light`]) as planar f32 0–255 in `channels` order, each side padded with black to the
/// model's 32-pixel grid, in a spare input buffer ([`SPARE_INPUTS`]), given to `session` as its input `name`.
/// Returns the outputs and the padded input size `(pw, ph)`. An empty picture, or an equalised copy of
/// another size, is an error (fail closed).
pub(crate) fn infer<'s>(
    session: &'s mut Session,
    name: &str,
    img: &image::RgbImage,
    light: Light<'_>,
    channels: Channels,
) -> Result<(ort::session::SessionOutputs<'s>, usize, usize)> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err(Error::DetectorOutput("empty picture".into()));
    }
    let (pw, ph) = (w.div_ceil(32) * 32, h.div_ceil(32) * 32);
    let equalised;
    let img = match light {
        Light::Decide if super::lowlight::is_dark(img) => {
            let mut copy = img.clone();
            super::lowlight::equalise(&mut copy);
            equalised = copy;
            &equalised
        }
        Light::Decide | Light::AsIs => img,
        Light::Equalised(copy) if copy.dimensions() == img.dimensions() => copy,
        Light::Equalised(copy) => {
            return Err(Error::Internal(format!("equalised copy {:?} of a {w}x{h} picture", copy.dimensions())))
        }
    };
    let order = match channels {
        Channels::Rgb => [0, 1, 2],
        Channels::Bgr => [2, 1, 0],
    };
    // A poisoned lock (a panic elsewhere while it was held) only loses the spares: a new buffer is made.
    let mut input = SPARE_INPUTS.lock().ok().and_then(|mut spare| spare.pop()).unwrap_or_default();
    // Every element is written below (the picture or the black padding), so what a spare held is not
    // cleared first.
    input.resize(3 * pw * ph, 0.0);
    let (first, rest) = input.split_at_mut(pw * ph);
    let (second, third) = rest.split_at_mut(pw * ph);
    for (p, plane) in [first, second, third].into_iter().enumerate() {
        let c = order[p];
        let (rows, padding) = plane.split_at_mut(pw * h);
        for (out, row) in rows.chunks_exact_mut(pw).zip(img.as_raw().chunks_exact(w * 3)) {
            let (picture, right) = out.split_at_mut(w);
            for (o, px) in picture.iter_mut().zip(row.chunks_exact(3)) {
                *o = f32::from(px[c]);
            }
            right.fill(0.0);
        }
        padding.fill(0.0);
    }
    let outputs = ort::value::TensorRef::from_array_view(([1usize, 3, ph, pw], &*input))
        .map_err(|e| Error::Inference(e.to_string()))
        .and_then(|tensor| session.run(ort::inputs![name => tensor]).map_err(|e| Error::Inference(e.to_string())));
    if let Ok(mut spare) = SPARE_INPUTS.lock() {
        spare.push(input);
    }
    let outputs = outputs?;
    Ok((outputs, pw, ph))
}

/// The f32 output `name` of an inference, checked to have exactly the shape `expected`.
pub(crate) fn output<'a>(
    outputs: &'a ort::session::SessionOutputs<'_>,
    name: &str,
    expected: &[i64],
) -> Result<&'a [f32]> {
    let value = outputs.get(name).ok_or_else(|| Error::DetectorOutput(format!("output {name} missing")))?;
    let (shape, data) =
        value.try_extract_tensor::<f32>().map_err(|e| Error::DetectorOutput(format!("output {name}: {e}")))?;
    let dims: Vec<i64> = shape.iter().copied().collect();
    if dims != expected {
        return Err(Error::DetectorOutput(format!("output {name} has shape {dims:?}, expected {expected:?}")));
    }
    Ok(data)
}
