/* Redacts a still camera: the same raw RGB24 picture pushed as FRAMES frames, pulled back redacted.
 *
 *   redact_frames WIDTH HEIGHT FRAMES IN.rgb OUT.rgb
 *
 * IN.rgb is one raw RGB24 picture; OUT.rgb receives every redacted frame, one after the other. Prints each
 * frame's timestamp as it comes back and exits non-zero on any error. */
#include "faceveil.h"

#include <stdio.h>
#include <stdlib.h>

static int fail(faceveil_redactor *r, const char *what) {
    fprintf(stderr, "%s: %s\n", what, faceveil_last_error(r));
    faceveil_redactor_free(r);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s WIDTH HEIGHT FRAMES IN.rgb OUT.rgb\n", argv[0]);
        return 2;
    }
    uint32_t w = (uint32_t)atoi(argv[1]), h = (uint32_t)atoi(argv[2]);
    int frames = atoi(argv[3]);
    size_t len = faceveil_frame_len(FACEVEIL_RGB24, w, h);
    uint8_t *in = malloc(len), *out = malloc(len);
    FILE *fin = fopen(argv[4], "rb");
    FILE *fout = fopen(argv[5], "wb");
    if (!in || !out || !fin || !fout || fread(in, 1, len, fin) != len) {
        fprintf(stderr, "cannot read %s or write %s\n", argv[4], argv[5]);
        return 1;
    }
    fclose(fin);

    char err[512];
    faceveil_redactor *r = faceveil_redactor_new(NULL, err, sizeof err);
    if (!r) {
        fprintf(stderr, "cannot start faceveil: %s\n", err);
        return 1;
    }
    /* A body-worn camera: faces of people lying down are searched too. */
    if (faceveil_set_turned(r, 1) != FACEVEIL_OK)
        return fail(r, "turned");
    printf("look-ahead: %u frames\n", faceveil_delay_frames(r));
    int pulled = 0;
    int64_t pts;
    for (int i = 0; i <= frames; i++) {
        if (i < frames) {
            if (faceveil_push(r, FACEVEIL_RGB24, w, h, (int64_t)i * 3600, in, len) != FACEVEIL_OK)
                return fail(r, "push");
        } else if (faceveil_flush(r) != FACEVEIL_OK) {
            return fail(r, "flush");
        }
        int rc;
        while ((rc = faceveil_pull(r, out, len, &pts)) == FACEVEIL_OK) {
            printf("frame pts %lld redacted\n", (long long)pts);
            fwrite(out, 1, len, fout);
            pulled++;
        }
        if (rc != FACEVEIL_NO_FRAME)
            return fail(r, "pull");
    }
    /* The search cannot change while frames are held. */
    if (faceveil_push(r, FACEVEIL_RGB24, w, h, (int64_t)frames * 3600, in, len) != FACEVEIL_OK
        || faceveil_set_turned(r, 0) != FACEVEIL_ERROR || faceveil_flush(r) != FACEVEIL_OK
        || faceveil_set_turned(r, 0) != FACEVEIL_OK)
        return fail(r, "turned while held");
    while (faceveil_pull(r, out, len, &pts) == FACEVEIL_OK)
        ;
    /* A wrong buffer size is refused, not overrun. */
    if (faceveil_push(r, FACEVEIL_RGB24, w, h, 1 << 30, in, len - 1) != FACEVEIL_BAD_ARGUMENT)
        return fail(r, "short buffer accepted");
    /* Interlaced frames (analogue capture, 576i) wait one frame longer. */
    uint32_t progressive = faceveil_delay_frames(r);
    if (faceveil_set_interlaced(r, 1, 1) != FACEVEIL_OK || faceveil_delay_frames(r) != progressive + 1)
        return fail(r, "interlaced");
    printf("interlaced look-ahead: %u frames\n", faceveil_delay_frames(r));
    /* A 50 fps camera is held for the same time as 25 fps: twice the frames. */
    if (faceveil_set_frame_rate(r, 50, 1) != FACEVEIL_OK)
        return fail(r, "frame rate");
    printf("50 fps interlaced look-ahead: %u frames\n", faceveil_delay_frames(r));
    fclose(fout);
    faceveil_redactor_free(r);
    free(in);
    free(out);
    printf("%d of %d frames pulled\n", pulled, frames);
    return pulled == frames ? 0 : 1;
}
