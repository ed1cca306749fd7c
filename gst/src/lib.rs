//! `faceveil` as a GStreamer element (`libgstfaceveil.so`): raw video in, the same frames out with every face
//! redacted by faceveil's per-frame core ([`faceveil::frames::FrameRedactor`]), look-ahead bridging and fail
//! closed included. Load it with `GST_PLUGIN_PATH=target/release`; `gst-inspect-1.0 faceveil` documents it.

use gst::glib;

mod element;

pub use element::Counts;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    element::register(plugin)
}

gst::plugin_define!(
    faceveil,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    env!("CARGO_PKG_VERSION"),
    // GStreamer's name for the MIT licence (the crate is MIT OR Apache-2.0).
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    "2026-12-04"
);
