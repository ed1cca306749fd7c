//! Choosing and building the detector a run uses: one function for the CLI, `verify`, the C ABI and
//! embedders, so every entry point gets the same model for the same choice.

use super::{find_shipped_model, find_small_model, CenterFace, Deferred, DetectSettings, Detector, PerMedia};
use super::{Pair, SessionOptions, SmallDetector, YuNet, CENTERFACE_FP32, CENTERFACE_INT8, YUNET_S};
use crate::Result;
use std::path::PathBuf;

/// Which shipped CenterFace a run uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Precision {
    /// The model as published, for everything (the default: the judge shows int8 losing dark and tiny faces).
    #[default]
    Fp32,
    /// Its 8-bit quantisation for everything: about 1.5× faster on CPUs, loses dark and tiny faces.
    Int8,
    /// fp32 for still images, int8 for video.
    Auto,
}

/// How to choose and build the detector.
#[derive(Debug, Clone, Default)]
pub struct DetectorChoice {
    /// An explicit CenterFace model file, used wherever CenterFace searches (it must be one of the shipped
    /// models, by SHA-256).
    pub model: Option<PathBuf>,
    /// An explicit small-face model file (YuNet, by SHA-256), where `settings.small_detector` is YuNet.
    pub small_model: Option<PathBuf>,
    pub precision: Precision,
    pub session: SessionOptions,
}

/// Builds the detector for `settings` as `choice` says. The video model's session is built now, so that one
/// that cannot be made (e.g. CUDA asked for without a CUDA build) fails before any work; with
/// [`Precision::Auto`] the still images' model is found and checked now but built only when the first photo
/// needs it (a video run does not hold its session).
pub fn load_detector(choice: &DetectorChoice, settings: &DetectSettings) -> Result<Box<dyn Detector>> {
    let large = load_centerface(choice, settings)?;
    Ok(match settings.small_detector {
        SmallDetector::CenterFace => large,
        SmallDetector::YuNet => {
            let model = find_small_model(choice.small_model.as_deref(), &YUNET_S)?;
            let small = YuNet::load(&model, settings.clone(), &choice.session)?;
            Box::new(Pair::new(large, small, settings))
        }
    })
}

/// The CenterFace part of [`load_detector`]'s choice.
fn load_centerface(choice: &DetectorChoice, settings: &DetectSettings) -> Result<Box<dyn Detector>> {
    let load = |shipped| -> Result<CenterFace> {
        let model = find_shipped_model(choice.model.as_deref(), &shipped)?;
        CenterFace::load(&model, settings.clone(), &choice.session)
    };
    let deferred = |shipped| -> Result<Deferred<CenterFace>> {
        let model = find_shipped_model(None, &shipped)?;
        let sha256 = CenterFace::verify(&model)?;
        let (settings, session) = (settings.clone(), choice.session.clone());
        Ok(Deferred::new(Some(sha256), move || CenterFace::load(&model, settings, &session)))
    };
    Ok(match choice.precision {
        // An explicit model is used for everything.
        _ if choice.model.is_some() => Box::new(load(CENTERFACE_FP32)?),
        Precision::Auto => Box::new(PerMedia::new(deferred(CENTERFACE_FP32)?, load(CENTERFACE_INT8)?)),
        Precision::Fp32 => Box::new(load(CENTERFACE_FP32)?),
        Precision::Int8 => Box::new(load(CENTERFACE_INT8)?),
    })
}
