#!/usr/bin/env python3
"""The judge's photo check on harder copies of the annotated dev stills: sensor noise, JPEG compression and
faces in shadow, the conditions under which detectors fire on texture (a developer's measuring aid for
precision rules; the judge, ../shared/tools/judge_all.py, decides what ships).

    python3 benches/stressed_stills.py [--bin target/release/faceveil] [--out target/stressed-stills]
                                       [--copies spot3,spot5] [-- OPTIONS]

Copies (made once under OUT/src from ../shared/eval/images, read there, never copied into the repository):
  noise      half a stop under with sensor noise sigma 2 (../shared/tools/make_dark.py --stops 0.5 --noise 2)
  noise4     sensor noise sigma 4 at full exposure (--stops 0 --noise 4)
  jpeg50     recompressed at JPEG quality 50 (--stops 0 --noise 0 --quality 50)
  shadowN    every annotated face, grown by half its size each way, N = 3, 4, 5 stops darker in linear light
             while the rest of the picture stays bright (benches/moving_stills.py's `shadowed`), sensor noise
             sigma 2, PNG
  spotN      the reverse: the picture N = 3, 5 stops darker but the faces (grown as above), which stay as they
             were, as on a lit stage or podium in a dark hall (`spotlit`), sensor noise sigma 2, PNG
  turnN      the picture turned N = 30, 45, 90, 180 degrees counter-clockwise, the canvas enlarged to hold it
             and its corners mirrored, as faces lying down or a camera mounted sideways see it (for
             `--turned`); each face's box moved with its centre, its sides swapped at 90, a square of its mean
             side at 30 and 45 (heights are then the turned faces'), JPEG 95 (the mirrored corners hold faces
             nobody annotated: over-redaction there is not comparable with the other copies')
Each picture is redacted by `faceveil redact IN -o OUT.png OPTIONS` and judged (`judge.py images`). Prints faces
covered by height band and the judge's unexplained over-redaction per set and copy; JSON in OUT/TAG/.
Needs scripts/setup.sh, a release build and the judge's Python packages (../shared/tools/README.md).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.normpath(os.path.join(ROOT, '..', 'shared'))
sys.path.insert(0, HERE)
from moving_stills import shadowed, spotlit  # noqa: E402

SETS = ['wider_dev', 'dlib_pascal_faces']
DARKENED = {'noise': ['--stops', '0.5', '--noise', '2'], 'noise4': ['--stops', '0', '--noise', '4'],
            'jpeg50': ['--stops', '0', '--noise', '0', '--quality', '50']}
SHADOWS = {'shadow3': 3.0, 'shadow4': 4.0, 'shadow5': 5.0}
SPOTS = {'spot3': 3.0, 'spot5': 5.0}
TURNS = {'turn30': 30.0, 'turn45': 45.0, 'turn90': 90.0, 'turn180': 180.0}


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f'failed ({r.returncode}): {" ".join(cmd)}\n{r.stderr[-2000:]}')


def make_lit(src, dst, light, stops):
    """`src`'s pictures lit by `light` (`shadowed` or `spotlit`) `stops` apart, with sensor noise, as PNG, with
    gt.json renamed."""
    os.makedirs(dst, exist_ok=True)
    gt = json.load(open(os.path.join(src, 'gt.json')))
    renamed = {}
    for name, boxes in sorted(gt.items()):
        img = light(cv2.imread(os.path.join(src, name), cv2.IMREAD_COLOR), boxes, stops)
        rng = np.random.default_rng(int.from_bytes(name.encode()[:8].ljust(8, b'\0'), 'little'))
        img = np.clip(img.astype(np.float32) + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)
        png = os.path.splitext(name)[0] + '.png'
        cv2.imwrite(os.path.join(dst, png), img)
        renamed[png] = boxes
    json.dump(renamed, open(os.path.join(dst, 'gt.json'), 'w'))


def make_turned(src, dst, degrees):
    """`src`'s pictures turned `degrees` counter-clockwise (see the module docs), with gt.json to match."""
    os.makedirs(dst, exist_ok=True)
    gt = json.load(open(os.path.join(src, 'gt.json')))
    turned = {}
    quarter = round(degrees) % 90 == 0
    for name, boxes in sorted(gt.items()):
        img = cv2.imread(os.path.join(src, name), cv2.IMREAD_COLOR)
        h, w = img.shape[:2]
        c, s = abs(np.cos(np.radians(degrees))), abs(np.sin(np.radians(degrees)))
        nw, nh = int(round(w * c + h * s)), int(round(w * s + h * c))
        m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
        m[0, 2] += nw / 2 - w / 2
        m[1, 2] += nh / 2 - h / 2
        out = cv2.warpAffine(img, m, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        moved = []
        for x, y, bw, bh in boxes:
            cx, cy = m @ np.array([x + bw / 2, y + bh / 2, 1.0])
            if quarter and round(degrees) % 180 != 0:
                bw, bh = bh, bw
            elif not quarter:
                bw = bh = (bw + bh) / 2
            moved.append([int(round(cx - bw / 2)), int(round(cy - bh / 2)), int(round(bw)), int(round(bh))])
        turned[name] = moved
        cv2.imwrite(os.path.join(dst, name), out, [cv2.IMWRITE_JPEG_QUALITY, 95])
    json.dump(turned, open(os.path.join(dst, 'gt.json'), 'w'))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--bin', default=os.path.join(ROOT, 'target', 'release', 'faceveil'))
    ap.add_argument('--out', default=os.path.join(ROOT, 'target', 'stressed-stills'))
    ap.add_argument('--tag', default='run', help='names the folder of this binary\'s outputs')
    ap.add_argument('--copies', help='only these copies, comma-separated (default: all)')
    argv = sys.argv[1:]
    extra = argv[argv.index('--') + 1:] if '--' in argv else []
    a = ap.parse_args(argv[:argv.index('--')] if '--' in argv else argv)
    copies = a.copies.split(',') if a.copies else [*DARKENED, *SHADOWS, *SPOTS, *TURNS]
    unknown = [c for c in copies if c not in {**DARKENED, **SHADOWS, **SPOTS, **TURNS}]
    if unknown:
        ap.error(f'unknown copies {unknown}')
    for s in SETS:
        orig = os.path.join(SHARED, 'eval', 'images', s)
        for copy in copies:
            src = os.path.join(a.out, 'src', f'{s}_{copy}')
            if not os.path.isfile(os.path.join(src, 'gt.json')):
                shutil.rmtree(src, ignore_errors=True)
                if copy in DARKENED:
                    run([sys.executable, os.path.join(SHARED, 'tools', 'make_dark.py'), orig, src, *DARKENED[copy]])
                elif copy in SHADOWS:
                    make_lit(orig, src, shadowed, SHADOWS[copy])
                elif copy in TURNS:
                    make_turned(orig, src, TURNS[copy])
                else:
                    make_lit(orig, src, spotlit, SPOTS[copy])
            dst = os.path.join(a.out, a.tag, f'{s}_{copy}')
            os.makedirs(dst, exist_ok=True)
            for name in sorted(os.listdir(src)):
                if name.endswith(('.jpg', '.png')):
                    out = os.path.join(dst, os.path.splitext(name)[0] + '.png')
                    run([a.bin, 'redact', os.path.join(src, name), '-o', out, '--overwrite', *extra])
            js = dst + '.json'
            run([sys.executable, os.path.join(SHARED, 'tools', 'judge.py'), 'images', '--orig', src, '--redacted', dst,
                 '--gt', os.path.join(src, 'gt.json'), '--json', js])
            d = json.load(open(js))
            bands = ' '.join(f"{k} {v['covered']}/{v['faces']}" for k, v in d['by_height'].items())
            print(f"{s:<18} {copy:<8} {bands}  unexplained {d['over_redaction_unexplained_mean'] * 100:.2f} %", flush=True)


if __name__ == '__main__':
    main()
