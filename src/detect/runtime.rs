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

/// The places searched for the model file `file`, in order.
fn model_candidates(file: &str) -> Vec<PathBuf> {
    let mut c = Vec::new();
    c.extend(env_path("FACEVEIL_MODEL"));
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
    first_existing(explicit, model_candidates(model.file)).map_err(|searched| Error::ModelNotFound { searched })
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

static ENVIRONMENT: Mutex<Option<Environment>> = Mutex::new(None);

/// Loads ONNX Runtime (once per process; ONNX Runtime allows one environment) and returns its environment.
/// The library is checked to exist first, so a missing library is a clear error naming what was searched.
pub fn init_runtime(explicit: Option<&Path>) -> Result<Environment> {
    let mut guard = ENVIRONMENT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(env) = guard.as_ref() {
        return Ok(env.clone());
    }
    let path = find_runtime_library(explicit)?;
    let builder =
        ort::init_from(&path).map_err(|e| Error::RuntimeLoad { path: path.clone(), reason: e.to_string() })?;
    let env = builder
        .with_name("faceveil")
        .with_telemetry(false)
        .build()
        .map_err(|e| Error::RuntimeLoad { path: path.clone(), reason: e.to_string() })?;
    *guard = Some(env.clone());
    Ok(env)
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
    }
}
