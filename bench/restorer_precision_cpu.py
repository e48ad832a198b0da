"""The restorer's precisions and backends on a CPU (issue 33), int8 included: a trained SOVQAE's restoration network
(the rows the mouth paste computes by default) in eager torch (fp32, and generate's fp32 encoder + bf16 decoder),
ONNX Runtime and OpenVINO (f32 and bf16 hints), and quantized to int8 after training with ONNX Runtime's static
quantization (QDQ, per-channel weights, activations calibrated on the identity's training crops; only the
convolutions, so the choice of codes stays fp32), run by ONNX Runtime and by OpenVINO (which reads the same QDQ
model). Against torch fp32: images per second (batch 2, best of --rounds) and the PSNR of the output where the
mouth paste blends, on the identity's test crops.

    python bench/restorer_precision_cpu.py --model RUN_DIR --identity IDENTITY_DIR --threads 1
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
from common import table, write_results


def images_per_second(run, x, repeats: int, rounds: int) -> float:
    """The best of `rounds` timings of `repeats` calls (the least disturbed by other work on the machine)."""
    run(x)  # warm-up
    best = math.inf
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(repeats):
            run(x)
        best = min(best, time.perf_counter() - t)
    return repeats * len(x) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="a trained SOVQAE (model or run folder)")
    ap.add_argument("--identity", type=Path, required=True, help="its identity: calibration and test crops")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--calibration-frames", type=int, default=32)
    ap.add_argument("--test-frames", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--name", default="restorer_precision_cpu")
    a = ap.parse_args()
    import onnxruntime as ort
    import openvino as ov
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from ladtalk.data.identity import Identity
    from ladtalk.face.crop import lower_face_mask
    from ladtalk.metrics.image import psnr_from_mse
    from ladtalk.pipeline.backends import _onnx_export
    from ladtalk.pipeline.restore import RestoreNet, load_sovqae, pasted_rows
    from ladtalk.pixels import to_images

    torch.set_num_threads(a.threads)
    model = load_sovqae(a.model)
    size = model.config.resolution
    rows = pasted_rows(size, model.config.downsample_factor)
    ident = Identity.open(a.identity)

    def crops(indices: np.ndarray, count: int) -> np.ndarray:
        pick = indices[np.linspace(0, len(indices) - 1, count).astype(int)]
        return to_images(np.ascontiguousarray(ident.crops[pick]))[:, :, rows].numpy()

    calib, test = crops(ident.train_indices, a.calibration_frames), crops(ident.test_indices, a.test_frames)
    net = RestoreNet(model).eval()
    with torch.no_grad():
        reference = net(torch.from_numpy(test))[0].numpy()
    blended = lower_face_mask(size)[rows] > 0

    class Calibration(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"input0": calib[i:i + 2]} for i in range(0, len(calib), 2)])

        def get_next(self):
            return next(self.batches, None)

    out_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path, int8_path = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        fp32_path.write_bytes(_onnx_export(net, (torch.from_numpy(calib[:1]),)))
        t = time.perf_counter()
        quantize_static(str(fp32_path), str(int8_path), Calibration(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv"])
        quantize_seconds = time.perf_counter() - t
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = a.threads, 1
        core = ov.Core()
        runners = {}
        for label, dec in (("torch fp32", None), ("torch fp32 encoder, bf16 decoder", torch.bfloat16)):
            restore_net = RestoreNet(model, dec).eval()
            runners[label] = lambda x, n=restore_net: n(torch.from_numpy(x))[0].numpy()
        for label, path in (("fp32", fp32_path), ("int8", int8_path)):
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            runners[f"onnxruntime {label}"] = lambda x, s=sess: s.run(None, {"input0": x})[0]
            for hint in (("f32", "bf16") if label == "fp32" else ("f32",)):
                compiled = core.compile_model(core.read_model(str(path)), "CPU", {
                    "INFERENCE_NUM_THREADS": a.threads, "INFERENCE_PRECISION_HINT": hint,
                    "PERFORMANCE_HINT": "LATENCY"})
                req = compiled.create_infer_request()
                runners[f"openvino {label} ({hint} hint)"] = \
                    lambda x, r=req, c=compiled: r.infer([x])[c.outputs[0]].copy()
        for label, run in runners.items():
            with torch.no_grad():
                out = np.concatenate([run(test[i:i + 2]) for i in range(0, len(test), 2)])
            mse = float(((out - reference) ** 2).transpose(0, 2, 3, 1)[:, blended].mean())
            speed = images_per_second(run, test[:2], a.repeats, a.rounds)
            out_rows.append({"runner": label, "images_per_s": round(speed, 2),
                             "psnr_vs_torch_fp32_blended_db": round(float(psnr_from_mse(mse * 255.0 ** 2)), 1)})
            print(out_rows[-1])
    print(table(out_rows, list(out_rows[0])))
    write_results(a.name, {"model": str(a.model), "identity": str(a.identity), "threads": a.threads,
                           "rows_computed": [rows.start, rows.stop], "batch": 2, "repeats": a.repeats,
                           "rounds": a.rounds, "test_frames": a.test_frames,
                           "calibration_frames": a.calibration_frames, "quantize_seconds": round(quantize_seconds, 1),
                           "rows": out_rows})


if __name__ == "__main__":
    main()
