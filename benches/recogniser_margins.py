#!/usr/bin/env python3
"""How near the judge's recognisers come to linking the faces a redacted video covers: for every face of 40 px
and more that the judge's YuNet and RetinaFace find in the original, that the redacted version covers (the
judge's detail-kept test) and that is not too flat to judge, the cosine between the original and the redacted
face minus the judge's line for that face (the higher of the recogniser's FAR-1 % threshold and the reference
redactions' cosine plus half their gap to 1: ../shared/tools/judge.py, `recog_verdict`). Over 0 is a face-frame
the judge flags as recognisable. A developer's measuring aid for the styles' strength: a continuous margin where
the judge's count moves one face-frame at a time (the judge decides what ships).

    python3 benches/recogniser_margins.py ORIGINAL REDACTED... [--stride N] [--nearest N]

Several redacted versions of one original (builds, styles, settings) are compared on the same faces, found once.
Prints per version and recogniser (FaceNet, faceplugin): faces, the margin's mean, 90th percentile and maximum,
how many are over, the frames over, and the --nearest face-frames to the line (a change's worst faces). E.g. the
hand-held clip of benches/handheld.sh:

    python3 benches/recogniser_margins.py target/handheld/src/bright-25fps.mp4 blur.mkv pixelate.mkv

Needs the judge's Python packages and FaceNet (../shared/tools/README.md).
"""
import argparse, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, '..', '..', 'shared'))
sys.path.insert(0, os.path.join(SHARED, 'tools'))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import judge  # noqa: E402

RECOGNISERS = ('facenet', 'faceplugin')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('original')
    ap.add_argument('redacted', nargs='+')
    ap.add_argument('--stride', type=int, default=1, help='every Nth frame (default 1)')
    ap.add_argument('--nearest', type=int, default=3, help='list this many face-frames nearest the line (default 3)')
    ap.add_argument('--models', default=os.path.join(SHARED, 'eval', 'models'))
    args = ap.parse_args()
    det_paths, rec_paths = judge.find_models(args.models)
    missing = [n for n in ('yunet', 'retinaface') if n not in det_paths] + [n for n in RECOGNISERS if n not in rec_paths]
    if missing:
        sys.exit(f'recogniser_margins: not found in {args.models}: {", ".join(missing)}')
    source = cv2.VideoCapture(args.original)
    width, height = int(source.get(cv2.CAP_PROP_FRAME_WIDTH)), int(source.get(cv2.CAP_PROP_FRAME_HEIGHT))
    side = min(1280, max(width, height))
    faces_in = judge.Detector({n: judge.load_detector(n, det_paths[n], side) for n in ('yunet', 'retinaface')}, 0.5, 12)
    recs = {n: judge.load_recogniser(n, rec_paths[n]) for n in RECOGNISERS}
    thresholds = judge.DEFAULT_FAR1_THRESHOLDS
    outputs = [cv2.VideoCapture(p) for p in args.redacted]
    margins = {p: {n: [] for n in recs} for p in args.redacted}
    nearest = {p: {n: [] for n in recs} for p in args.redacted}
    over = {p: [] for p in args.redacted}
    index = -1
    while True:
        index += 1
        ok, original = source.read()
        redacted = [c.read()[1] for c in outputs]
        if not ok or any(r is None for r in redacted):
            break
        if index % args.stride:
            continue
        for face in faces_in(original):
            x1, y1, x2, y2 = face['box']
            if y2 - y1 < judge.RECOG_MIN_FACE or face['lm'] is None:
                continue
            a, b, c, d = judge.inner_box(x1, y1, x2, y2, width, height)
            if cv2.cvtColor(original[b:d, a:c], cv2.COLOR_BGR2GRAY).std() < judge.LOW_CONTRAST_STD:
                continue
            references = judge.reference_images(original, face['box'])
            for name, rec in recs.items():
                e_orig = rec.embed(original, face['box'], face['lm'])
                if e_orig is None:
                    continue
                ref = max(float(e_orig @ rec.embed(im, face['box'], face['lm'])) for im in references)
                line = max(thresholds[name], ref + judge.REF_HEADROOM * (1 - ref))
                for path, image in zip(args.redacted, redacted):
                    if not judge.face_change(original, image, face['box'], judge.VIDEO_TOL)['removed']:
                        continue
                    margin = float(e_orig @ rec.embed(image, face['box'], face['lm'])) - line
                    margins[path][name].append(margin)
                    nearest[path][name].append((round(margin, 3), index, '+'.join(face['found_by'])))
                    if margin > 0:
                        over[path].append((index, name, round(margin, 3), '+'.join(face['found_by'])))
    for path in args.redacted:
        print(path)
        for name in recs:
            m = np.array(margins[path][name])
            if not len(m):
                print(f'  {name:10s} no covered face of {judge.RECOG_MIN_FACE} px or more')
                continue
            print(f'  {name:10s} faces {len(m)}  margin mean {m.mean():+.3f}  p90 {np.percentile(m, 90):+.3f}  '
                  f'max {m.max():+.3f}  over {int((m > 0).sum())}')
            if args.nearest > 0:
                near = sorted(nearest[path][name], reverse=True)[:args.nearest]
                print(f'  {"":10s} nearest (margin, frame, found by):', near)
        print('  over the line (frame, recogniser, margin, found by):', over[path] or 'none')


if __name__ == '__main__':
    main()
