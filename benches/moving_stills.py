#!/usr/bin/env python3
"""The video schedule judged on annotated stills that move: every picture of the annotated dev folders (read
from ../shared/eval at run time, never copied) becomes a 6-frame clip in which the picture slides by a few
pixels per frame (so every region changes and every pass of the schedule runs, full and repeated), is
redacted as video, and each frame of the output is judged against the folder's gt.json moved with it (the
judge's `images` check). Variants: `bright` (the stills as they are) and `shadow` (each annotated face, grown
by half its size each way, 3 stops darker in linear light while the rest of the picture stays bright: the
large face in shadow on a sunny street that a daylight schedule must not lose) and `spot` (the reverse: the
picture 4 stops darker but the faces, which keep their exposure: a lit stage or podium in a dark hall).

    python3 benches/moving_stills.py [--bin target/release/faceveil] [--out target/moving-stills] [-- OPTIONS]
    python3 benches/moving_stills.py --images DIR   # DIR/wider_dev etc.: make_dark.py copies (dim, night)
    python3 benches/moving_stills.py --variants spot

Prints faces covered by size band (< 10 / 10-20 / >= 20 px) per set, variant and frame (frame 0 opens the clip;
with the default schedule frames 0 and 3 get the full whole-frame pass, the others its repeat). Needs
scripts/setup.sh, a release build and the judge's Python packages (../shared/tools/README.md).
"""
import argparse
import json
import os
import subprocess
import sys

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.normpath(os.path.join(ROOT, '..', 'shared'))
SETS = ['wider_dev', 'dlib_pascal_faces']
FRAMES = 6
PAD = 24
STEP = (4, 2)  # pixels per frame, x and y


def face_light(shape, boxes):
    """A feathered mask, 1 over every face box grown by half its size each way and 0 away from the faces."""
    mask = np.zeros(shape[:2], np.float32)
    for x, y, w, h in boxes:
        cv2.ellipse(mask, (int(x + w / 2), int(y + h / 2)), (max(1, int(w)), max(1, int(h))), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), 3)[..., None]


def relit(img, gain):
    """`img` with its light multiplied by `gain` (per pixel) in linear light."""
    lin = (img.astype(np.float32) / 255.0) ** 2.2
    return np.clip((lin * gain) ** (1 / 2.2) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def shadowed(img, boxes, stops=3.0):
    """`img` with every face box (grown by half its size each way) `stops` darker in linear light, feathered."""
    return relit(img, 1.0 - face_light(img.shape, boxes) * (1.0 - 2.0 ** -stops))


def spotlit(img, boxes, stops=4.0):
    """`img` `stops` darker in linear light but every face box (grown as in `shadowed`), which keeps its
    exposure: faces in the light of a stage or a podium, the rest of the picture dark."""
    mask = face_light(img.shape, boxes)
    return relit(img, mask + (1.0 - mask) * 2.0 ** -stops)


def frame(img, k):
    """Frame `k` of the sliding clip: the picture padded by PAD (edges repeated), cut at its own size."""
    h, w = img.shape[:2]
    padded = cv2.copyMakeBorder(img, PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE)
    ox, oy = PAD - STEP[0] * k + 10, PAD - STEP[1] * k + 5
    return padded[oy:oy + h, ox:ox + w], (PAD - ox, PAD - oy)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f'failed ({r.returncode}): {" ".join(cmd)}\n{r.stderr[-2000:]}')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--bin', default=os.path.join(ROOT, 'target', 'release', 'faceveil'))
    ap.add_argument('--out', default=os.path.join(ROOT, 'target', 'moving-stills'))
    ap.add_argument('--images', default=os.path.join(SHARED, 'eval', 'images'),
                    help='folder holding the annotated sets (default: the shared ones; or make_dark.py copies of them)')
    ap.add_argument('--variants', default='bright,shadow,spot', help='comma-separated (default: all three)')
    argv = sys.argv[1:]
    extra = argv[argv.index('--') + 1:] if '--' in argv else []
    a = ap.parse_args(argv[:argv.index('--')] if '--' in argv else argv)
    unknown = set(a.variants.split(',')) - {'bright', 'shadow', 'spot'}
    if unknown:
        ap.error(f'unknown variants {sorted(unknown)}')
    for s in SETS:
        src = os.path.join(a.images, s)
        gt = json.load(open(os.path.join(src, 'gt.json')))
        for variant in a.variants.split(','):
            base = os.path.join(a.out, f'{s}-{variant}')
            for k in range(FRAMES):
                os.makedirs(os.path.join(base, f'ref{k}'), exist_ok=True)
                os.makedirs(os.path.join(base, f'red{k}'), exist_ok=True)
            moved = {k: {} for k in range(FRAMES)}
            for rel, boxes in sorted(gt.items()):
                img = cv2.imread(os.path.join(src, rel), cv2.IMREAD_COLOR)
                img = img[:img.shape[0] // 2 * 2, :img.shape[1] // 2 * 2]
                if variant == 'shadow':
                    img = shadowed(img, boxes)
                elif variant == 'spot':
                    img = spotlit(img, boxes)
                stem = os.path.splitext(os.path.basename(rel))[0]
                frames_dir = os.path.join(base, 'frames', stem)
                os.makedirs(frames_dir, exist_ok=True)
                for k in range(FRAMES):
                    f, (dx, dy) = frame(img, k)
                    cv2.imwrite(os.path.join(frames_dir, f'{k:02d}.png'), f)
                    # Lossless PNG content under the still's own name (the judge finds originals by gt.json's names).
                    with open(os.path.join(base, f'ref{k}', rel), 'wb') as fh:
                        fh.write(cv2.imencode('.png', f)[1].tobytes())
                    moved[k][rel] = [[x + dx, y + dy, w, h] for x, y, w, h in boxes]
                clip = os.path.join(base, 'clips', stem + '.mkv')
                os.makedirs(os.path.dirname(clip), exist_ok=True)
                run(['ffmpeg', '-nostdin', '-loglevel', 'error', '-y', '-framerate', '25', '-i',
                     os.path.join(frames_dir, '%02d.png'), '-vf', 'format=yuv444p', '-c:v', 'libx264', '-qp', '0', '-preset',
                     'ultrafast', clip])
                out = os.path.join(base, 'clips', stem + '.red.mkv')
                run([a.bin, 'redact', clip, '-o', out, '--overwrite', '--crf', '0', *extra])
                for k in range(FRAMES):
                    run(['ffmpeg', '-nostdin', '-loglevel', 'error', '-y', '-i', out, '-vf', f'select=eq(n\\,{k})',
                         '-frames:v', '1', os.path.join(base, f'red{k}', stem + '.png')])
            cells = []
            for k in range(FRAMES):
                ref = os.path.join(base, f'ref{k}')
                json.dump(moved[k], open(os.path.join(ref, 'gt.json'), 'w'))
                js = os.path.join(base, f'judge{k}.json')
                run([sys.executable, os.path.join(SHARED, 'tools', 'judge.py'), 'images', '--orig', ref, '--redacted',
                     os.path.join(base, f'red{k}'), '--gt', os.path.join(ref, 'gt.json'), '--json', js, '--no-explain'])
                b = json.load(open(js))['by_height']
                band = lambda ks: f"{sum(b[x]['covered'] for x in ks if x in b)}/{sum(b[x]['faces'] for x in ks if x in b)}"
                big = [x for x in b if x not in ('<10', '10-20')]
                cells.append(f"f{k} {band(['<10'])} {band(['10-20'])} {band(big)}")
            print(f'{s} {variant:<7} ' + ' | '.join(cells), flush=True)


if __name__ == '__main__':
    main()
