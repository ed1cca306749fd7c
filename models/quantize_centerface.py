# Derives models/centerface-int8.onnx from the shipped models/centerface-dynamic.onnx: static int8 (QDQ)
# quantisation, opset 13, per-channel weights, calibrated on the project's own public-domain portrait
# (assets/astronaut.png) pasted at random sizes and places on plain backgrounds (seeded, so repeatable).
# Deterministic: with the versions below, running it again gives the same SHA-256 (checked 2026-11-26:
# c62874dc08c7600f6f49b55590514a8a66ed2b261228a77be30570fff318774d, the value faceveil accepts). It then prints
# fp32 and int8 inference times (interleaved, one process, 2 threads, 640x384) and how far the heatmaps differ.
#
#   python3 -m venv v && v/bin/pip install onnx==1.19.1 onnxruntime==1.31.1 pillow numpy
#   v/bin/python models/quantize_centerface.py            # writes models/centerface-int8.onnx
#
# Judge figures and speed: models/README.md.
import os
import numpy as np, onnxruntime as ort, time, sys
from PIL import Image
from onnxruntime.quantization import quantize_static, CalibrationDataReader, QuantFormat, QuantType
from onnxruntime.quantization.shape_inference import quant_pre_process

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
import tempfile
work = tempfile.mkdtemp()
out = os.path.join(root, "models/centerface-int8.onnx")
src = os.path.join(root, "models/centerface-dynamic.onnx")
face = Image.open(os.path.join(root, "assets/astronaut.png")).convert("RGB")
def frames():
    rng = np.random.default_rng(0)
    for i in range(24):
        canvas = Image.new("RGB", (640, 384), tuple(int(v) for v in rng.integers(0, 255, 3)))
        s = int(rng.integers(40, 380))
        canvas.paste(face.resize((s, s)), (int(rng.integers(0, 640 - s)), int(rng.integers(0, 384 - s))))
        a = np.asarray(canvas, dtype=np.float32).transpose(2, 0, 1)[None]
        yield {"input.1": np.ascontiguousarray(a)}
class Reader(CalibrationDataReader):
    def __init__(self): self.it = frames()
    def get_next(self): return next(self.it, None)
import onnx
from onnx import version_converter
m = version_converter.convert_version(onnx.load(src), 13)
onnx.save(m, os.path.join(work, "op13.onnx"))
quant_pre_process(os.path.join(work, "op13.onnx"), os.path.join(work, "pre.onnx"), skip_symbolic_shape=True)
quantize_static(os.path.join(work, "pre.onnx"), out, Reader(), quant_format=QuantFormat.QDQ,
                per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
x = next(frames())["input.1"]
so = ort.SessionOptions(); so.intra_op_num_threads = 2
s32 = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
s8 = ort.InferenceSession(out, so, providers=["CPUExecutionProvider"])
for s in (s32, s8):
    s.run(None, {"input.1": x})
t = {0: [], 1: []}
for r in range(20):
    for k, s in enumerate((s32, s8)):
        a = time.perf_counter(); o = s.run(None, {"input.1": x}); t[k].append(time.perf_counter() - a)
o32 = s32.run(None, {"input.1": x}); o8 = s8.run(None, {"input.1": x})
print("fp32 median %.1f ms, int8 median %.1f ms" % (1000 * np.median(t[0]), 1000 * np.median(t[1])))
print("heatmap max abs diff %.3f, fp32 max %.3f int8 max %.3f" % (np.abs(o32[0] - o8[0]).max(), o32[0].max(), o8[0].max()))
