//! Finding and loading ONNX Runtime and the detector model from well-defined places.
//!
//! No variable needs exporting: a binary built in the repository finds `.ort/lib/` (made by
//! `scripts/setup.sh`) and `models/`; an installed binary finds them beside itself. Environment variables
//! (`FACEVEIL_ORT_LIB`, `ORT_DYLIB_PATH`, `FACEVEIL_MODEL`) override the search.

use super::ShippedModel;
use crate::{Error, Result};
use ort::environment::Environment;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const LIB_NAME: &str = "libonnxruntime.so";
/// Folder of the OpenVINO build of ONNX Runtime (its library, the OpenVINO provider and OpenVINO's own
/// libraries, kept together), beside the binary or under `.ort/` in the repository.
const OPENVINO_DIR: &str = "openvino";

/// Which ONNX Runtime build and execution provider run the detector.
///
/// The default is chosen by the judge, not by speed alone: OpenVINO's bf16 inference (1.7× faster than the
/// CPU provider on CPUs with AMX, shared/RUNTIMES.md) loses a night face the CPU provider finds (wider_dev
/// night, faces under 10 px: 16/19 against 17/19) and blurs more that is not a face (bright over-redaction
/// 2.5 % against 1.5 %); on CPUs without AMX it is also slower (93.8 against 72.3 ms at 1280×736, 2 threads).
/// OpenVINO at fp32 gives the CPU provider's output at its speed, so it is not offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Runtime {
    /// ONNX Runtime's CPU provider at full precision: every platform.
    #[default]
    Cpu,
    /// ONNX Runtime's OpenVINO provider on the CPU with bf16 inference (x86-64; install it with
    /// `FACEVEIL_OPENVINO=1 bash scripts/setup.sh`). Faster only on CPUs with AMX, and it loses faces the
    /// default finds: opt in knowingly.
    OpenVino,
}

/// What actually ran, for reports and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeInfo {
    /// `cpu` or `openvino`.
    pub provider: &'static str,
    /// Arithmetic inside the model: `fp32` (int8 models: as stored) or `bf16`.
    pub precision: &'static str,
    pub library: PathBuf,
}

impl std::fmt::Display for RuntimeInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let provider = match self.provider {
            "openvino" => "ONNX Runtime OpenVINO provider",
            "cuda" => "ONNX Runtime CUDA provider",
            _ => "ONNX Runtime CPU provider",
        };
        // The library's own file name carries its version (the well-known names are links to it).
        let real = std::fs::canonicalize(&self.library).unwrap_or_else(|_| self.library.clone());
        let file = real.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        write!(f, "{provider}, {}, {file}", self.precision)
    }
}

/// The places searched for the OpenVINO build of libonnxruntime, in order.
fn openvino_candidates() -> Vec<PathBuf> {
    let mut c = Vec::new();
    c.extend(env_path("FACEVEIL_ORT_OPENVINO_LIB"));
    if let Some(d) = exe_dir() {
        c.push(d.join(OPENVINO_DIR).join(LIB_NAME));
        c.push(d.join("../lib/faceveil").join(OPENVINO_DIR).join(LIB_NAME));
    }
    c.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ort").join(OPENVINO_DIR).join(LIB_NAME));
    c
}

/// The OpenVINO build of libonnxruntime, if installed.
pub fn find_openvino_library() -> Option<PathBuf> {
    openvino_candidates().into_iter().find(|p| p.is_file())
}

/// The library to load for `wanted` (`explicit` overrides the library search for the CPU provider).
pub fn resolve_runtime(wanted: Runtime, explicit: Option<&Path>) -> Result<(Runtime, PathBuf)> {
    match wanted {
        Runtime::Cpu => Ok((Runtime::Cpu, find_runtime_library(explicit)?)),
        Runtime::OpenVino => match find_openvino_library() {
            Some(p) => Ok((Runtime::OpenVino, p)),
            None => Err(Error::OpenVinoNotFound { searched: openvino_candidates() }),
        },
    }
}

fn exe_dir() -> Option<PathBuf> {
    std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf))
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The places searched for libonnxruntime, in order.
fn runtime_candidates() -> Vec<PathBuf> {
    let mut c = Vec::new();
    c.extend(env_path("FACEVEIL_ORT_LIB"));
    c.extend(env_path("ORT_DYLIB_PATH"));
    if let Some(d) = exe_dir() {
        c.push(d.join(LIB_NAME));
        c.push(d.join("lib").join(LIB_NAME));
        c.push(d.join("../lib").join(LIB_NAME));
        c.push(d.join("../lib/faceveil").join(LIB_NAME));
    }
    c.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ort/lib").join(LIB_NAME));
    for dir in ["/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"] {
        c.push(Path::new(dir).join(LIB_NAME));
    }
    c
}

/// Returns `explicit` if given (it must exist), else the first existing well-known place.
pub fn find_runtime_library(explicit: Option<&Path>) -> Result<PathBuf> {
    first_existing(explicit, runtime_candidates()).map_err(|searched| Error::RuntimeNotFound { searched })
}

/// The places searched for the model file `file`, in order: the variable `env` names a file to use first.
fn model_candidates(file: &str, env: &str) -> Vec<PathBuf> {
    let mut c = Vec::new();
    c.extend(env_path(env));
    if let Some(d) = exe_dir() {
        c.push(d.join("models").join(file));
        c.push(d.join("../share/faceveil/models").join(file));
    }
    c.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(file));
    c
}

/// Returns `explicit` if given (it must exist), else the first existing well-known place of the default model.
pub fn find_model(explicit: Option<&Path>) -> Result<PathBuf> {
    find_shipped_model(explicit, &super::DEFAULT_MODEL)
}

/// Returns `explicit` if given (it must exist), else the first existing well-known place of `model`
/// (`FACEVEIL_MODEL` first, then beside the binary, then the repository's `models/`).
pub fn find_shipped_model(explicit: Option<&Path>, model: &ShippedModel) -> Result<PathBuf> {
    first_existing(explicit, model_candidates(model.file, "FACEVEIL_MODEL"))
        .map_err(|searched| Error::ModelNotFound { searched })
}

/// Returns `explicit` if given (it must exist), else the first existing well-known place of the small-face
/// model `model` (`FACEVEIL_SMALL_MODEL` first, then beside the binary, then the repository's `models/`).
pub fn find_small_model(explicit: Option<&Path>, model: &ShippedModel) -> Result<PathBuf> {
    first_existing(explicit, model_candidates(model.file, "FACEVEIL_SMALL_MODEL"))
        .map_err(|searched| Error::ModelNotFound { searched })
}

fn first_existing(explicit: Option<&Path>, candidates: Vec<PathBuf>) -> std::result::Result<PathBuf, Vec<PathBuf>> {
    if let Some(p) = explicit {
        return if p.is_file() { Ok(p.to_path_buf()) } else { Err(vec![p.to_path_buf()]) };
    }
    match candidates.iter().find(|p| p.is_file()) {
        Some(p) => Ok(p.clone()),
        None => Err(candidates),
    }
}

static ENVIRONMENT: Mutex<Option<(Environment, PathBuf)>> = Mutex::new(None);

/// Loads ONNX Runtime (once per process; ONNX Runtime allows one environment) and returns its environment.
/// The library is checked to exist first, so a missing library is a clear error naming what was searched.
pub fn init_runtime(explicit: Option<&Path>) -> Result<Environment> {
    let path = find_runtime_library(explicit)?;
    init_runtime_at(&path)
}

/// [`init_runtime`] with the library at `path`. A process holds one ONNX Runtime: asking for another library
/// once one is loaded is an error (the OpenVINO build also runs the CPU provider, so load it first when a
/// process needs both).
pub fn init_runtime_at(path: &Path) -> Result<Environment> {
    let mut guard = ENVIRONMENT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((env, loaded)) = guard.as_ref() {
        if loaded.as_path() != path {
            return Err(Error::RuntimeLoad {
                path: path.to_path_buf(),
                reason: format!("this process already loaded ONNX Runtime from {}", loaded.display()),
            });
        }
        return Ok(env.clone());
    }
    let path = path.to_path_buf();
    keep_runtime_telemetry_off();
    let builder =
        ort::init_from(&path).map_err(|e| Error::RuntimeLoad { path: path.clone(), reason: e.to_string() })?;
    let env = builder
        .with_name("faceveil")
        .with_telemetry(false)
        .build()
        .map_err(|e| Error::RuntimeLoad { path: path.clone(), reason: e.to_string() })?;
    share_cpu_arena(&env).map_err(|reason| Error::RuntimeLoad { path: path.clone(), reason })?;
    *guard = Some((env.clone(), path));
    Ok(env)
}

/// The variable that keeps ONNX Runtime's own telemetry off.
pub const RUNTIME_TELEMETRY_OFF: &str = "ORT_DISABLE_TELEMETRY";

/// ONNX Runtime's Linux builds from PyPI (1.31) record a "ProcessInfo" event for Microsoft's telemetry
/// service on every load (the process's path, the OS, the CPU model and a device id kept beside it), in
/// `~/.cache/Microsoft/DeveloperTools/.onnxruntime/`, to be sent to `mobile.events.data.microsoft.com` once a
/// network is reachable. The environment's `with_telemetry(false)` does not stop that event; the variable
/// [`RUNTIME_TELEMETRY_OFF`] does (nothing is written at all then). faceveil never talks to a network, so it
/// sets the variable before the library loads, unless the process has set it. The binary sets it first thing
/// in `main` (by calling this), while it has one thread; an embedder that loads the runtime while other threads read the
/// environment through C's `getenv` should set it itself at start (a variable set while another thread
/// reads the environment is a data race in C).
pub fn keep_runtime_telemetry_off() {
    if std::env::var_os(RUNTIME_TELEMETRY_OFF).is_none() {
        std::env::set_var(RUNTIME_TELEMETRY_OFF, "1");
    }
}

/// The shared arena's first region. ONNX Runtime's default starts at 1 MiB and doubles each region it adds,
/// so that the arena ends as a row of regions whose pages the detectors' changing input sizes all touch; one
/// region large enough for the working memory of either model at faceveil's largest passes (a 1080p frame's
/// tiles and whole-frame pass) is reused from its start instead. Measured peaks (`/usr/bin/time`, outputs
/// identical), default → 96 MiB: generated 1080p 468 → 440 MiB, generated 720p 335 → 317, a real hand-held
/// 720p clip 353 → 324, dim 826 × 540 crowd 300 → 267. The effect is not monotonic (1080p: 48 MiB 457,
/// 64 MiB 470, 112 MiB 483, 128 MiB 442): pages are resident only once touched, and where in a region the
/// arena places a tensor decides which are; 96 MiB was the lowest on every clip measured.
const ARENA_FIRST_REGION: usize = 96 << 20;

/// Registers one CPU arena allocator in the environment, for every session to take its working memory from
/// (see [`session`](super::onnx::session)). Each session would otherwise keep an arena of its own, sized
/// for the largest input it has seen: the two detectors of a video run one after the other on one thread,
/// so one arena as large as the larger need serves both (1080p: peak 492 → 463 MiB, the same output).
fn share_cpu_arena(env: &Environment) -> std::result::Result<(), String> {
    use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
    use ort::AsPointer;
    let info = MemoryInfo::new(AllocationDevice::CPU, 0, AllocatorType::Arena, MemoryType::Default)
        .map_err(|e| e.to_string())?;
    let keys = [c"initial_chunk_size_bytes".as_ptr()];
    let values = [ARENA_FIRST_REGION];
    let mut config: *mut ort::sys::OrtArenaCfg = std::ptr::null_mut();
    // SAFETY: `keys` and `values` are arrays of `keys.len()` live entries (NUL-terminated static names),
    // `config` a place for the result; ONNX Runtime copies what it reads.
    let status = unsafe { (ort::api().CreateArenaCfgV2)(keys.as_ptr(), values.as_ptr(), keys.len(), &mut config) };
    // SAFETY: `status` was just returned by ONNX Runtime and is read (and released) once.
    unsafe { ort::Error::result_from_status(status) }.map_err(|e| format!("arena configuration: {e}"))?;
    let mut env = env.clone();
    // SAFETY: the environment and memory info come from live `ort` handles held for the call, `config` from
    // the successful call above; ONNX Runtime reads the configuration during the call and the environment
    // keeps the allocator until it is released.
    let status = unsafe { (ort::api().CreateAndRegisterAllocator)(env.ptr_mut(), info.ptr(), config) };
    // SAFETY: `config` was created above, is not used after this, and is released once.
    unsafe { (ort::api().ReleaseArenaCfg)(config) };
    // SAFETY: `status` was just returned by ONNX Runtime and is read (and released) once.
    unsafe { ort::Error::result_from_status(status) }.map_err(|e| format!("shared CPU arena: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_missing_path_is_reported() {
        let missing = Path::new("/nonexistent/libonnxruntime.so");
        match find_runtime_library(Some(missing)) {
            Err(Error::RuntimeNotFound { searched }) => assert_eq!(searched, vec![missing.to_path_buf()]),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn missing_model_error_lists_searched_places() {
        let e = find_model(Some(Path::new("/nonexistent/model.onnx"))).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/model.onnx"), "{e}");
    }

    #[test]
    fn shipped_model_is_found_in_repository() {
        for model in super::super::SHIPPED_MODELS {
            let p = find_shipped_model(None, &model).unwrap();
            assert!(p.ends_with(model.file));
        }
        for model in super::super::YUNET_MODELS {
            assert!(find_small_model(None, &model).unwrap().ends_with(model.file));
        }
    }
}
