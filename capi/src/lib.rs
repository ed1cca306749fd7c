//! C ABI over [`faceveil::frames::FrameRedactor`] (see `include/faceveil.h`). Every entry point checks
//! its pointers and buffer sizes, catches panics at the boundary, and reports failures as return codes with
//! a message kept per redactor.

use faceveil::detect::{load_detector, Detector, DetectorChoice};
use faceveil::frames::{Frame, FrameRedactor, PixelLayout, Scan};
use faceveil::{FrameRate, Options};
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

const OK: c_int = 0;
const NO_FRAME: c_int = 1;
const ERROR: c_int = -1;
const BAD_ARGUMENT: c_int = -2;

/// Opaque to C.
pub struct Redactor {
    inner: FrameRedactor<Box<dyn Detector>>,
    last_error: CString,
}

impl Redactor {
    fn fail(&mut self, code: c_int, message: impl std::fmt::Display) -> c_int {
        self.last_error = CString::new(message.to_string().replace('\0', " ")).unwrap_or_default();
        code
    }
}

fn layout(code: c_int) -> Option<PixelLayout> {
    match code {
        0 => Some(PixelLayout::Rgb24),
        1 => Some(PixelLayout::I420),
        2 => Some(PixelLayout::Nv12),
        3 => Some(PixelLayout::Bgr24),
        4 => Some(PixelLayout::Rgba),
        5 => Some(PixelLayout::Bgra),
        _ => None,
    }
}

/// Runs `f` on the redactor behind `r`, turning a null pointer into BAD_ARGUMENT and a panic into ERROR.
fn with(r: *mut Redactor, f: impl FnOnce(&mut Redactor) -> c_int) -> c_int {
    // SAFETY: the caller passes a pointer from faceveil_redactor_new that it has not freed, used from one
    // thread at a time (as the header states).
    let Some(r) = (unsafe { r.as_mut() }) else { return BAD_ARGUMENT };
    match catch_unwind(AssertUnwindSafe(|| f(&mut *r))) {
        Ok(code) => code,
        Err(_) => r.fail(ERROR, "internal error (panic) in faceveil"),
    }
}

/// Bytes in one frame; 0 for an unknown layout.
#[no_mangle]
pub extern "C" fn faceveil_frame_len(layout_code: c_int, width: u32, height: u32) -> usize {
    layout(layout_code).map(|l| l.frame_len(width, height)).unwrap_or(0)
}

/// # Safety
/// `model_path` is null or a NUL-terminated string; `err` is null or points to `err_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn faceveil_redactor_new(
    model_path: *const c_char,
    err: *mut c_char,
    err_len: usize,
) -> *mut Redactor {
    let write_err = |message: String| {
        if !err.is_null() && err_len > 0 {
            let bytes = message.as_bytes();
            let n = bytes.len().min(err_len - 1);
            // SAFETY: `err` has `err_len` writable bytes (caller contract); n + 1 <= err_len.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), err.cast::<u8>(), n);
                *err.add(n) = 0;
            }
        }
    };
    let model = if model_path.is_null() {
        None
    } else {
        // SAFETY: non-null and NUL-terminated (caller contract).
        match unsafe { CStr::from_ptr(model_path) }.to_str() {
            Ok(s) => Some(PathBuf::from(s)),
            Err(_) => {
                write_err("model path is not UTF-8".into());
                return std::ptr::null_mut();
            }
        }
    };
    let made = catch_unwind(|| -> faceveil::Result<Redactor> {
        let options = Options::default();
        let detector = load_detector(&DetectorChoice { model, ..Default::default() }, &options.detect)?;
        Ok(Redactor { inner: FrameRedactor::new(detector, options)?, last_error: CString::default() })
    });
    match made {
        Ok(Ok(r)) => Box::into_raw(Box::new(r)),
        Ok(Err(e)) => {
            write_err(e.to_string());
            std::ptr::null_mut()
        }
        Err(_) => {
            write_err("internal error (panic) in faceveil".into());
            std::ptr::null_mut()
        }
    }
}

/// # Safety
/// `r` comes from `faceveil_redactor_new`; `data` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn faceveil_push(
    r: *mut Redactor,
    layout_code: c_int,
    width: u32,
    height: u32,
    pts: i64,
    data: *const u8,
    len: usize,
) -> c_int {
    with(r, |r| {
        let Some(l) = layout(layout_code) else { return r.fail(BAD_ARGUMENT, format!("unknown layout {layout_code}")) };
        if data.is_null() || len != l.frame_len(width, height) {
            return r.fail(
                BAD_ARGUMENT,
                format!("a {width}x{height} {l:?} frame needs {} bytes", l.frame_len(width, height)),
            );
        }
        // SAFETY: non-null with `len` readable bytes (caller contract); copied before returning.
        let pixels = unsafe { std::slice::from_raw_parts(data, len) }.to_vec();
        match Frame::new(l, width, height, pts, pixels).and_then(|f| r.inner.push(f)) {
            Ok(()) => OK,
            Err(e) => r.fail(ERROR, e),
        }
    })
}

/// # Safety
/// `r` comes from `faceveil_redactor_new`; `out` points to `out_len` writable bytes; `pts` is null or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn faceveil_pull(r: *mut Redactor, out: *mut u8, out_len: usize, pts: *mut i64) -> c_int {
    with(r, |r| {
        if out.is_null() {
            return r.fail(BAD_ARGUMENT, "null output buffer");
        }
        let Some(need) = r.inner.peek().map(|f| f.data.len()) else { return NO_FRAME };
        if need != out_len {
            // The frame stays queued for a retry with the right buffer.
            return r.fail(BAD_ARGUMENT, format!("output buffer holds {out_len} bytes, the frame {need}"));
        }
        let Some(frame) = r.inner.pull() else { return NO_FRAME };
        // SAFETY: `out` has `out_len` writable bytes (caller contract), equal to the frame's length.
        unsafe {
            std::ptr::copy_nonoverlapping(frame.data.as_ptr(), out, out_len);
            if let Some(p) = pts.as_mut() {
                *p = frame.pts;
            }
        }
        OK
    })
}

/// # Safety
/// `r` comes from `faceveil_redactor_new`.
#[no_mangle]
pub unsafe extern "C" fn faceveil_flush(r: *mut Redactor) -> c_int {
    with(r, |r| match r.inner.flush() {
        Ok(()) => OK,
        Err(e) => r.fail(ERROR, e),
    })
}

/// Frames pushed from now on are interlaced (`interlaced` non-zero; the even lines the earlier field when
/// `top_first` is non-zero) or progressive.
///
/// # Safety
/// `r` comes from `faceveil_redactor_new`.
#[no_mangle]
pub unsafe extern "C" fn faceveil_set_interlaced(r: *mut Redactor, interlaced: c_int, top_first: c_int) -> c_int {
    with(r, |r| {
        r.inner.set_scan(match interlaced {
            0 => Scan::Progressive,
            _ => Scan::Interlaced { top_first: top_first != 0 },
        });
        OK
    })
}

/// The stream's frame rate, `num` frames every `den` seconds (0/0: unknown, taken as 25 fps): above 37 fps the
/// look-ahead and the small-face search are stretched to the same time as at 25 fps. Before the first frame,
/// or after a flush.
///
/// # Safety
/// `r` comes from `faceveil_redactor_new`.
#[no_mangle]
pub unsafe extern "C" fn faceveil_set_frame_rate(r: *mut Redactor, num: u32, den: u32) -> c_int {
    with(r, |r| match r.inner.set_frame_rate(FrameRate::new(num, den)) {
        Ok(()) => OK,
        Err(e) => r.fail(ERROR, e),
    })
}

/// Whether frames are also searched turned (`on` non-zero), for faces on their side or upside down (people
/// lying down, a camera mounted sideways): `faceveil redact --turned`. Before the first frame, or after a flush.
///
/// # Safety
/// `r` comes from `faceveil_redactor_new`.
#[no_mangle]
pub unsafe extern "C" fn faceveil_set_turned(r: *mut Redactor, on: c_int) -> c_int {
    with(r, |r| match r.inner.set_turned(on != 0) {
        Ok(()) => OK,
        Err(e) => r.fail(ERROR, e),
    })
}

/// # Safety
/// `r` is null or comes from `faceveil_redactor_new`.
#[no_mangle]
pub unsafe extern "C" fn faceveil_delay_frames(r: *const Redactor) -> u32 {
    // SAFETY: null or a live redactor (caller contract).
    unsafe { r.as_ref() }.map(|r| r.inner.delay_frames() as u32).unwrap_or(0)
}

/// # Safety
/// `r` is null or comes from `faceveil_redactor_new`.
#[no_mangle]
pub unsafe extern "C" fn faceveil_last_error(r: *const Redactor) -> *const c_char {
    // SAFETY: null or a live redactor (caller contract); the string lives until the next call on it.
    match unsafe { r.as_ref() } {
        Some(r) => r.last_error.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// # Safety
/// `r` is null or comes from `faceveil_redactor_new` and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn faceveil_redactor_free(r: *mut Redactor) {
    if !r.is_null() {
        // SAFETY: made by Box::into_raw in faceveil_redactor_new and not freed before (caller contract).
        drop(unsafe { Box::from_raw(r) });
    }
}
