#!/usr/bin/env python3
"""Raw detector scores on annotated stills: how each shipped model scores every annotated face, and what it
fires on that is not one, at the magnification faceveil searches small faces at. A developer's measuring aid
for choosing thresholds (the judge, ../shared/tools/judge_all.py, decides what ships).

    python3 benches/detector_scores.py DIR [DIR...] [--scale 2] [--models models]

DIR holds images and a gt.json ({"image.jpg": [[x, y, w, h], ...]}), e.g. ../shared/eval/images/wider_dev or a
make_dark.py copy of it (read where they are, never copied). For each model (CenterFace fp32, YuNet-s) the
picture is magnified by --scale and searched in overlapping 1024-px tiles (as faceveil's tiles are), low-light
equalisation off. Prints, per face-height band, the share of faces found at each threshold, and the count of
detections matching no annotated face (after the judge's growth of 50 % per side) by box height.
Needs numpy, onnxruntime and opencv (../shared/tools/requirements.txt).
"""
import argparse, json, os, sys
import numpy as np, cv2, onnxruntime as ort

ort.set_default_logger_severity(3)

BANDS = [(0, 10), (10, 20), (20, 32), (32, 64), (64, 10**6)]
THRESHOLDS = [0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5]


def session(path):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 2
    return ort.InferenceSession(path, o, providers=['CPUExecutionProvider'])


def pad32(img):
    h, w = img.shape[:2]
    H, W = (h + 31) // 32 * 32, (w + 31) // 32 * 32
    out = np.zeros((H, W, 3), np.float32)
    out[:h, :w] = img
    return out


def centerface(s, rgb):
    x = pad32(rgb)
    H, W = x.shape[:2]
    heat, scale, off = s.run(['537', '538', '539'], {'input.1': x.transpose(2, 0, 1)[None]})
    heat, scale, off = heat[0, 0], scale[0], off[0]
    r, c = np.where(heat > 0.03)
    out = []
    for i, j in zip(r, c):
        h, w = np.exp(scale[0, i, j]) * 4, np.exp(scale[1, i, j]) * 4
        cy, cx = (i + off[0, i, j] + 0.5) * 4, (j + off[1, i, j] + 0.5) * 4
        out.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, heat[i, j]])
    return out


def yunet(s, rgb):
    x = pad32(rgb[:, :, ::-1])
    H, W = x.shape[:2]
    names = [o.name for o in s.get_outputs()]
    outs = dict(zip(names, s.run(None, {'input': x.transpose(2, 0, 1)[None]})))
    res = []
    for st in (8, 16, 32):
        cls, obj, bb = outs[f'cls_{st}'][0, :, 0], outs[f'obj_{st}'][0, :, 0], outs[f'bbox_{st}'][0]
        sc = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
        cols = W // st
        for m in np.where(sc > 0.03)[0]:
            r, c = m // cols, m % cols
            cx, cy = (c + bb[m, 0]) * st, (r + bb[m, 1]) * st
            w, h = np.exp(bb[m, 2]) * st, np.exp(bb[m, 3]) * st
            res.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, sc[m]])
    return res


def nms(dets, iou=0.3):
    dets = sorted(dets, key=lambda d: -d[4])
    keep = []
    for d in dets:
        if all(overlap(d, k) <= iou for k in keep):
            keep.append(d)
    return keep


def overlap(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / u if u > 0 else 0


def tiled(fn, s, rgb, scale):
    big = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) if scale != 1 else rgb
    H, W = big.shape[:2]
    step, size = 832, 1024
    out = []
    for y in range(0, max(1, H - 192), step):
        for x in range(0, max(1, W - 192), step):
            tile = big[y:y + size, x:x + size]
            for d in fn(s, tile):
                out.append([d[0] + x, d[1] + y, d[2] + x, d[3] + y, d[4]])
    return [[v / scale for v in d[:4]] + [d[4]] for d in nms(out)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('dirs', nargs='+')
    ap.add_argument('--scale', type=float, default=2.0)
    ap.add_argument('--models', default=os.path.join(os.path.dirname(__file__), '..', 'models'))
    a = ap.parse_args()
    models = {'centerface': (centerface, session(os.path.join(a.models, 'centerface-dynamic.onnx'))),
              'yunet': (yunet, session(os.path.join(a.models, 'yunet_s_dynamic.onnx')))}
    for d in a.dirs:
        gt = json.load(open(os.path.join(d, 'gt.json')))
        stats = {m: {'best': [], 'fp': []} for m in models}
        for name, boxes in sorted(gt.items()):
            rgb = cv2.imread(os.path.join(d, name))[:, :, ::-1].astype(np.float32)
            faces = [[x, y, x + w, y + h] for x, y, w, h in boxes]
            grown = [[f[0] - (f[2] - f[0]) / 2, f[1] - (f[3] - f[1]) / 2, f[2] + (f[2] - f[0]) / 2,
                      f[3] + (f[3] - f[1]) / 2] for f in faces]
            for m, (fn, s) in models.items():
                dets = tiled(fn, s, rgb, a.scale)
                for f in faces:
                    best = max([det[4] for det in dets if overlap(det, f) >= 0.3] or [0.0])
                    stats[m]['best'].append((f[3] - f[1], best))
                for det in dets:
                    cx, cy = (det[0] + det[2]) / 2, (det[1] + det[3]) / 2
                    if not any(g[0] <= cx <= g[2] and g[1] <= cy <= g[3] for g in grown):
                        stats[m]['fp'].append((det[3] - det[1], det[4]))
        print(f'== {d} (x{a.scale})')
        for m in models:
            print(f'  {m}: faces found (IoU >= 0.3) at threshold ' + ' '.join(f'{t:>5}' for t in THRESHOLDS))
            for lo, hi in BANDS:
                sel = [b for h, b in stats[m]['best'] if lo <= h < hi]
                if sel:
                    print(f'    {lo:>3}-{hi if hi < 10**6 else "":<4} {len(sel):>3} faces   ' +
                          ' '.join(f'{sum(b > t for b in sel):>5}' for t in THRESHOLDS))
            print('    not a face, by box height:')
            for lo, hi in BANDS:
                sel = [sc for h, sc in stats[m]['fp'] if lo <= h < hi]
                print(f'    {lo:>3}-{hi if hi < 10**6 else "":<4}             ' +
                      ' '.join(f'{sum(sc > t for sc in sel):>5}' for t in THRESHOLDS))


if __name__ == '__main__':
    sys.exit(main())
