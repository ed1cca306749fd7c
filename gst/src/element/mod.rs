//! The `faceveil` element: see [`imp`] for how frames, events and queries travel through it.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    /// The `faceveil` element (GType `GstFaceveil`).
    pub struct Faceveil(ObjectSubclass<imp::Faceveil>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(Some(plugin), "faceveil", gst::Rank::NONE, Faceveil::static_type())
}

/// Redaction style (`style` property).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[enum_type(name = "GstFaceveilStyle")]
pub enum Style {
    /// Heavy blur scaled to the face, its shading flattened.
    #[default]
    #[enum_value(name = "Blur: heavy, scaled to the face, shading flattened", nick = "blur")]
    Blur,
    #[enum_value(name = "Pixelate: four cells across the mask, flattened to its mean", nick = "pixelate")]
    Pixelate,
    #[enum_value(name = "Fill: the region's mean colour", nick = "fill")]
    Fill,
}

/// Mask shape (`shape` property).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[enum_type(name = "GstFaceveilShape")]
pub enum Shape {
    #[default]
    #[enum_value(name = "Ellipse", nick = "ellipse")]
    Ellipse,
    #[enum_value(name = "Box", nick = "box")]
    Box,
}

/// Which model searches small faces (`small-detector` property).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[enum_type(name = "GstFaceveilSmallDetector")]
pub enum SmallDetector {
    #[default]
    #[enum_value(name = "YuNet on small-face tiles and focus crops (CenterFace on dark tiles too)", nick = "yunet")]
    YuNet,
    #[enum_value(name = "CenterFace everywhere", nick = "centerface")]
    CenterFace,
}

/// CenterFace's precision (`precision` property).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[enum_type(name = "GstFaceveilPrecision")]
pub enum Precision {
    #[default]
    #[enum_value(name = "fp32: the model as published", nick = "fp32")]
    Fp32,
    #[enum_value(name = "int8: about 1.5x faster, loses dark and tiny faces", nick = "int8")]
    Int8,
}

/// ONNX Runtime build and provider (`runtime` property).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[enum_type(name = "GstFaceveilRuntime")]
pub enum Runtime {
    #[default]
    #[enum_value(name = "ONNX Runtime's CPU provider", nick = "cpu")]
    Cpu,
    #[enum_value(name = "ONNX Runtime's OpenVINO provider, bf16 (loses faces the default finds)", nick = "openvino")]
    OpenVino,
}

/// What happens to a frame the detector cannot analyse (`on-error` property).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[enum_type(name = "GstFaceveilOnError")]
pub enum OnError {
    /// Post an error message and stop the stream: the frame is never pushed.
    #[default]
    #[enum_value(name = "Post an error and stop; the frame is never pushed", nick = "error")]
    Error,
    /// Push the frame flat grey and go on (counted as blanked).
    #[enum_value(name = "Push the frame flat grey and go on", nick = "blank")]
    Blank,
}

/// The element's counts (the `stats` property and the `faceveil` element message posted at EOS): frames, not
/// faces; no boxes, no positions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub frames_in: u64,
    pub frames_out: u64,
    pub frames_with_faces: u64,
    pub detections: u64,
    pub frames_redacted: u64,
    /// Frames analysed with reduced effort (covered more widely instead).
    pub frames_degraded: u64,
    /// Frames pushed flat grey because they could not be analysed (`on-error=blank`).
    pub frames_blanked: u64,
    /// Frames on which the camera's own shift was measured and followed (`follow-camera`).
    pub frames_camera_moved: u64,
    /// Frames held when a flush dropped them (never pushed).
    pub frames_dropped_by_flush: u64,
}

impl Counts {
    pub fn to_structure(self, name: &str) -> gst::Structure {
        gst::Structure::builder(name)
            .field("frames-in", self.frames_in)
            .field("frames-out", self.frames_out)
            .field("frames-with-faces", self.frames_with_faces)
            .field("detections", self.detections)
            .field("frames-redacted", self.frames_redacted)
            .field("frames-degraded", self.frames_degraded)
            .field("frames-blanked", self.frames_blanked)
            .field("frames-camera-moved", self.frames_camera_moved)
            .field("frames-dropped-by-flush", self.frames_dropped_by_flush)
            .build()
    }
}
