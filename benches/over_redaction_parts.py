#!/usr/bin/env python3
"""Where the judge's unexplained over-redaction of redacted stills comes from: change that runs on from a
head's redaction past the judge's head region ("spill": masks larger than the face box grown 50 % per side),
or change standing alone ("isolated": boxes on things that are not faces). A developer's measuring aid for the
precision target (the judge, ../shared/tools/judge_all.py, decides what ships).

    python3 benches/over_redaction_parts.py ORIG_DIR REDACTED_DIR [--marks OUT_DIR]

ORIG_DIR holds the stills and their gt.json (e.g. ../shared/eval/images/wider_dev, read where it is, never
copied); REDACTED_DIR faceveil's outputs of them, one PNG each by the same name (as judge_all.py writes them).
The unexplained area is the judge's own (../shared/tools/judge.py: 5 × 5-smoothed change outside every
annotated face and every face its detectors see, each grown 50 % per side); it is split by the 8-connected
regions of changed pixels: a region that also changes pixels inside those faces' areas is spill, the rest
isolated. Prints both per picture and their means (the judge's figure is the sum). --marks writes each
redacted picture with spill in yellow and isolated change in red.
Needs the judge's Python packages (../shared/tools/README.md).
"""
import argparse, json, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, '..', '..', 'shared'))
sys.path.insert(0, os.path.join(SHARED, 'tools'))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import judge  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('orig')
    ap.add_argument('redacted')
    ap.add_argument('--marks', help='write marked copies of the redacted pictures here')
    ap.add_argument('--models', default=os.path.join(SHARED, 'eval', 'models'))
    args = ap.parse_args()
    gt = json.load(open(os.path.join(args.orig, 'gt.json')))
    dets, _, _ = judge.load_models(argparse.Namespace(models=args.models), need_rec=False)
    if args.marks:
        os.makedirs(args.marks, exist_ok=True)
    sums = {'spill': 0.0, 'isolated': 0.0}
    for rel in sorted(gt):
        boxes = [list(map(float, b)) for b in gt[rel]]
        orig = judge.read_image(os.path.join(args.orig, rel))
        red = judge.read_image(os.path.join(args.redacted, os.path.splitext(rel)[0] + '.png'))
        h, w = orig.shape[:2]
        outside = judge.grown_mask((h, w), boxes) & judge.grown_mask((h, w), judge.explaining_boxes(dets, orig))
        changed = cv2.absdiff(cv2.blur(orig, (5, 5)), cv2.blur(red, (5, 5))).max(axis=2) > judge.IMAGE_TOL
        _, regions = cv2.connectedComponents(changed.astype(np.uint8), connectivity=8)
        from_heads = np.isin(regions, np.unique(regions[changed & ~outside]))
        spill = changed & outside & from_heads
        isolated = changed & outside & ~spill
        area = max(int(outside.sum()), 1)
        parts = {'spill': spill.sum() / area, 'isolated': isolated.sum() / area}
        for k in sums:
            sums[k] += parts[k]
        print(f'{rel:40s} unexplained {100 * sum(parts.values()):5.2f} %  spill {100 * parts["spill"]:5.2f} %  '
              f'isolated {100 * parts["isolated"]:5.2f} %')
        if args.marks:
            marked = red.copy()
            marked[spill] = (0, 255, 255)
            marked[isolated] = (0, 0, 255)
            cv2.imwrite(os.path.join(args.marks, os.path.splitext(rel)[0] + '.png'), marked)
    n = max(len(gt), 1)
    print(f'mean: unexplained {100 * sum(sums.values()) / n:.2f} %  spill {100 * sums["spill"] / n:.2f} %  '
          f'isolated {100 * sums["isolated"] / n:.2f} %')


if __name__ == '__main__':
    main()
