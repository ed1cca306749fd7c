/* faceveil C ABI: redact faces in raw frames from a capture pipeline, without identifying anyone.
 *
 * Push each captured frame, pull frames back redacted, in order, once the look-ahead (6 frames by default)
 * has seen past them; flush at the end of the stream. A frame the detector could not analyse is never
 * released (push returns an error). One redactor per camera; a redactor may move between threads but must
 * not be used from two threads at once. Link with -lfaceveil_capi (libfaceveil_capi.so from
 * `cargo build --release -p faceveil-capi`); ONNX Runtime and the model are found as for the faceveil tool. */
#ifndef FACEVEIL_H
#define FACEVEIL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct faceveil_redactor faceveil_redactor;

/* Pixel layouts, tightly packed: RGB24 and BGR24 (3 bytes per pixel), I420 (Y, then U and V at half size,
 * rounded up), NV12 (Y, then interleaved U/V at half size), RGBA and BGRA (4 bytes per pixel; the fourth,
 * alpha or padding as in RGBx/BGRx, is left as it is). */
enum faceveil_layout {
    FACEVEIL_RGB24 = 0,
    FACEVEIL_I420 = 1,
    FACEVEIL_NV12 = 2,
    FACEVEIL_BGR24 = 3,
    FACEVEIL_RGBA = 4,
    FACEVEIL_BGRA = 5
};

/* Return codes. */
enum faceveil_status {
    FACEVEIL_OK = 0,
    FACEVEIL_NO_FRAME = 1,     /* pull: nothing ready yet */
    FACEVEIL_ERROR = -1,       /* see faceveil_last_error */
    FACEVEIL_BAD_ARGUMENT = -2 /* a null pointer or a buffer of the wrong size */
};

/* Bytes in one width x height frame of `layout`. */
size_t faceveil_frame_len(int layout, uint32_t width, uint32_t height);

/* A redactor with the default settings and the shipped CenterFace model (`model_path` NULL) or the model
 * at `model_path` (one of the shipped files: models/centerface-int8.onnx is about 1.5x faster on CPUs).
 * NULL on failure, with the reason in `err` (when not NULL). */
faceveil_redactor *faceveil_redactor_new(const char *model_path, char *err, size_t err_len);

/* Analyses one frame (copied) with its timestamp; frames of a stream keep one layout and size, and
 * timestamps increase. */
int faceveil_push(faceveil_redactor *r, int layout, uint32_t width, uint32_t height, int64_t pts,
                  const uint8_t *data, size_t len);

/* Copies the next redacted frame into `out` (`out_len` must be its frame length) and its timestamp into
 * `pts`: FACEVEIL_OK, or FACEVEIL_NO_FRAME when none is ready. */
int faceveil_pull(faceveil_redactor *r, uint8_t *out, size_t out_len, int64_t *pts);

/* End of stream: every frame still held becomes ready to pull. */
int faceveil_flush(faceveil_redactor *r);

/* Frames pushed from now on are interlaced (`interlaced` non-zero: two fields a field apart on alternate
 * lines, as from analogue capture or 576i/1080i; the even lines the earlier field when `top_first` is
 * non-zero) or progressive (the default). The detectors then see each frame's first field, and each frame
 * is also redacted where its faces go on the way to the next frame's; from the first interlaced frame on,
 * frames are held back one frame longer. */
int faceveil_set_interlaced(faceveil_redactor *r, int interlaced, int top_first);

/* The stream's frame rate, `num` frames every `den` seconds (0, 0: unknown, taken as 25 fps). Above 37 fps the
 * look-ahead and the small-face search are stretched to the same time as at 25 fps (12 frames held at 50 fps,
 * each frame about half the work). Set it before the first frame or after faceveil_flush: FACEVEIL_ERROR
 * while frames are held. */
int faceveil_set_frame_rate(faceveil_redactor *r, uint32_t num, uint32_t den);

/* Also search every frame turned a quarter, a half and three quarters (`on` non-zero; off by default), for
 * faces on their side or upside down: people lying down, a camera mounted sideways without a rotation flag
 * (`faceveil redact --turned`; more detector work, and some more redaction of things that are not faces).
 * Set it before the first frame or after faceveil_flush: FACEVEIL_ERROR while frames are held. */
int faceveil_set_turned(faceveil_redactor *r, int on);

/* Frames a pushed frame is held back. */
uint32_t faceveil_delay_frames(const faceveil_redactor *r);

/* The last error on `r` (valid until the next call on `r`), or "" when none. */
const char *faceveil_last_error(const faceveil_redactor *r);

void faceveil_redactor_free(faceveil_redactor *r);

#ifdef __cplusplus
}
#endif
#endif
