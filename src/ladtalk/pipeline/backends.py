"""Running an inference network on a CPU backend: eager torch, or the same nn.Module exported in-process (batch the
one dynamic dimension) to ONNX Runtime or OpenVINO, the export kept beside the weights for the next run. Each is a
class with one call: float tensors in, float/int64 tensors out. Costs: bench/results/backends_cpu.md."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import io
import os
import tempfile
import warnings
from pathlib import Path

import torch

from ladtalk.errors import InputError
from ladtalk.io.atomic import atomic_path
from ladtalk.runtime import Inference

BACKENDS = ("auto", "torch", "onnxruntime", "openvino")


def available(backend: str) -> bool:
    """Installed and usable: the exported backends also need `onnx`, which torch's exporter writes with."""
    return backend == "torch" or all(importlib.util.find_spec(m) is not None for m in (backend, "onnx"))


def pick_backend(backend: str, inference: Inference) -> str:
    """The backend to run on. 'auto' on a CPU: OpenVINO where the CPU has AVX-512 (AMX included) (there it
    ran Wav2Lip 3.5x and the restorer 3.7x faster than eager fp32, Wav2Lip 12x in bf16), else ONNX Runtime (with
    AVX2 only it tied OpenVINO on Wav2Lip, beat it on the restorer, and exports in seconds rather than a minute),
    else whichever is installed, else eager torch (bench/results/backends_cpu.md). An asked-for backend that is
    not installed falls back to torch with a note."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose {', '.join(BACKENDS)}")
    if inference.device.type != "cpu":
        if backend not in ("auto", "torch"):
            print(f"note: backend {backend} runs on the CPU only; using torch on {inference.device}")
        return "torch"
    if backend == "auto":
        # torch's own reading of the CPU (AVX512 covers AMX; lowered by ATEN_CPU_CAPABILITY where a user caps it)
        wide = torch.backends.cpu.get_cpu_capability().startswith("AVX512")
        order = ("openvino", "onnxruntime") if wide else ("onnxruntime", "openvino")
        return next((b for b in order if available(b)), "torch")
    if not available(backend):
        print(f"note: {backend} (with onnx) is not installed (pip install 'ladtalk[fast]'); running eager torch")
        return "torch"
    return backend


class TorchRunner:
    """Eager torch with the run's autocast and memory format (`autocast`: False keeps a net in fp32)."""

    def __init__(self, module: torch.nn.Module, inference: Inference, autocast: bool = True):
        self.module, self.inference, self.autocast = inference.prepare(module), inference, autocast
        self.name = f"torch {inference.precision if autocast else 'fp32'}" + \
            (" channels_last" if inference.channels_last else "")

    @torch.inference_mode()
    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        inputs = tuple(self.inference.images(x.to(self.inference.device)) for x in inputs)
        with self.inference.autocast() if self.autocast else contextlib.nullcontext():
            out = self.module(*inputs)
        return out if isinstance(out, tuple) else (out,)


def cache_path(weights_path: str | os.PathLike | None, tag: str, examples: tuple[torch.Tensor, ...],
               suffix: str, backend_version: str) -> Path | None:
    """Where the exported model of these weights, input shapes and backend version lives:
    `<weights>.ladtalk-cache/<tag>-<key><suffix>`, or under $LADTALK_CACHE (~/.cache/ladtalk)/exports where the
    weights' folder is read-only; None where the weights have no file (nothing to key the export on)."""
    if weights_path is None:
        return None
    p = Path(weights_path).resolve()
    files = sorted(p.glob("*.safetensors")) + sorted(p.glob("*.json")) if p.is_dir() else [p]
    key = hashlib.sha1(repr([(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files] +
                            [tuple(x.shape[1:]) for x in examples] + [torch.__version__, backend_version]
                            ).encode()).hexdigest()[:12]
    for folder in (p.with_name(p.name + ".ladtalk-cache"),
                   Path(os.environ.get("LADTALK_CACHE", Path.home() / ".cache" / "ladtalk")) / "exports"):
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder / f"{tag}-{key}{suffix}"
    return None


class OnnxRuntimeRunner:
    """ONNX Runtime, fp32 (its CPU kernels have no bf16)."""

    def __init__(self, module: torch.nn.Module, examples: tuple[torch.Tensor, ...], path: Path | None):
        import onnxruntime as ort

        self.name = "onnxruntime fp32"
        onnx_bytes = None
        if path is None or not path.is_file():
            onnx_bytes = _onnx_export(module, examples)
            if path is not None:
                with atomic_path(path) as tmp:
                    tmp.write_bytes(onnx_bytes)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(onnx_bytes if path is None else str(path), opts,
                                            providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feed = {n: x.detach().float().contiguous().numpy() for n, x in zip(self.input_names, inputs)}
        return tuple(torch.from_numpy(y) for y in self.session.run(None, feed))


class OpenVinoRunner:
    """OpenVINO on the CPU; `precision` 'f32' or 'bf16' (its default on CPUs with AMX/AVX512-BF16)."""

    def __init__(self, module: torch.nn.Module, examples: tuple[torch.Tensor, ...], path: Path | None,
                 precision: str):
        import openvino as ov

        self.name = f"openvino {precision}"
        core = ov.Core()
        if path is not None and path.is_file():
            model = core.read_model(str(path))
        else:
            # through ONNX and the runtime's reader, not ov.convert_model: the model converter reports its use
            # over the network (OpenVINO's telemetry), and nothing here may reach the network
            with tempfile.TemporaryDirectory() as tmp_dir:
                onnx_path = Path(tmp_dir) / "model.onnx"
                onnx_path.write_bytes(_onnx_export(module, examples))
                model = core.read_model(str(onnx_path))
            if path is not None:
                tmp = path.with_name(path.stem + f".tmp{os.getpid()}.xml")
                ov.save_model(model, str(tmp), compress_to_fp16=False)
                tmp.with_suffix(".bin").replace(path.with_suffix(".bin"))
                tmp.replace(path)
        self.compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": torch.get_num_threads(),
                                                          "INFERENCE_PRECISION_HINT": precision,
                                                          "PERFORMANCE_HINT": "LATENCY"})
        self.request = self.compiled.create_infer_request()

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        res = self.request.infer([x.detach().float().contiguous().numpy() for x in inputs])
        # copies: the request reuses its output buffers on the next call
        return tuple(torch.from_numpy(res[o].copy()) for o in self.compiled.outputs)


def _onnx_export(module: torch.nn.Module, examples: tuple[torch.Tensor, ...]) -> bytes:
    buf = io.BytesIO()
    names = [f"input{i}" for i in range(len(examples))]
    # the tracer's notes (deprecations, Python booleans it freezes) concern the exporter, not the user's run
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), examples, buf, input_names=names, dynamo=False, opset_version=17,
                          dynamic_axes={n: {0: "batch"} for n in names})
    return buf.getvalue()


def make_runner(module: torch.nn.Module, examples: tuple[torch.Tensor, ...], inference: Inference,
                backend: str = "auto", weights_path: str | os.PathLike | None = None, tag: str = "net",
                autocast: bool = True, exported_autocast: bool | None = None):
    """A callable running `module` on `backend` (see pick_backend), its input shapes those of `examples` with any
    batch. `autocast=False`: the net stays fp32 whatever the run's precision; `exported_autocast` overrides that
    for OpenVINO (None: as `autocast`), for a net whose eager bf16 rule OpenVINO cannot follow part by part."""
    name = pick_backend(backend, inference)
    if name == "torch":
        return TorchRunner(module, inference, autocast)
    module = module.float().to(memory_format=torch.contiguous_format).cpu().eval()
    version = importlib.metadata.version(name)
    if name == "onnxruntime":
        return OnnxRuntimeRunner(module, examples, cache_path(weights_path, tag, examples, ".onnx", version))
    lower = autocast if exported_autocast is None else exported_autocast
    precision = "bf16" if lower and inference.amp_dtype == torch.bfloat16 else "f32"
    return OpenVinoRunner(module, examples, cache_path(weights_path, tag, examples, ".xml", version), precision)
