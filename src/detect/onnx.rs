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

/// OpenVINO on the CPU with bf16 inference (OpenVINO runs fp32 without the hint, no faster than the CPU
/// provider). `threads` 0: one per core.
fn openvino_provider(
    builder: ort::session::builder::SessionBuilder,
    threads: usize,
) -> Result<ort::session::builder::SessionBuilder> {
    use ort::ep::ArbitrarilyConfigurableExecutionProvider;
    let threads = if threads > 0 { threads } else { std::thread::available_parallelism().map_or(1, |n| n.get()) };
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
