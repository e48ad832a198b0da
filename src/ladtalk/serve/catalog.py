"""What the server holds, as the page shows it: identities (face track summary, a strip of crops) and models
(kind, training state, the loss and validation curves from the run's metrics.jsonl)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np

from ladtalk.data.identity import META_NAME, Identity
from ladtalk.pretrained import BUILTIN
from ladtalk.pretrained import names as pretrained_names
from ladtalk.serve.paths import read_json

SETTINGS = "serve-train.json"  # written by serve.submit into a run folder it starts


def identity_summary(folder: Path) -> dict:
    meta = json.loads((folder / META_NAME).read_text())
    n = int(meta["frame_count"])
    return {"name": folder.name, "frames": n, "fps": meta["fps"], "seconds": round(n / meta["fps"], 2),
            "face_share": round(sum(meta["has_face"]) / max(n, 1), 4), "crop_size": meta["crop_size"],
            "size": [meta["width"], meta["height"]], "split": meta["split"], "pads": meta.get("pads"),
            "source": Path((meta.get("source") or {}).get("path") or "").name}  # generate reads its frames


def list_identities(root: Path) -> list[dict]:
    out = []
    for d in sorted(root.iterdir()):
        if d.is_dir() and not d.is_symlink() and not d.name.startswith(".") and (d / META_NAME).is_file():
            with contextlib.suppress(OSError, ValueError, KeyError):  # being replaced or damaged: not offered
                out.append(identity_summary(d))
    return out


def crops_strip_png(folder: Path, count: int = 6, height: int = 128) -> bytes:
    """`count` face crops spread over the video, side by side, as a PNG."""
    from PIL import Image

    ident = Identity.open(folder)
    rows = np.flatnonzero(ident.has_face) if ident.has_face.any() else np.arange(ident.frame_count)
    pick = rows[np.linspace(0, len(rows) - 1, min(count, len(rows))).round().astype(int)]
    tiles = [np.asarray(Image.fromarray(np.asarray(ident.crops[i])).resize((height, height))) for i in pick]
    buf = io.BytesIO()
    Image.fromarray(np.concatenate(tiles, axis=1)).convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def _metrics_ends(folder: Path, tail_bytes: int = 65536) -> tuple[dict, dict | None]:
    """The setup record and the last train record of a run's metrics.jsonl, read from its two ends only (the
    page asks every second, and a long run's log is large)."""
    path = folder / "logs" / "metrics.jsonl"
    try:
        with open(path, "rb") as f:
            head = f.read(8192)
            f.seek(max(0, f.seek(0, 2) - tail_bytes))
            tail = f.read()
    except OSError:
        return {}, None
    setup = next((r for r in _records(head.decode(errors="replace")) if r.get("split") == "setup"), {})
    last = next((r for r in reversed(_records(tail.decode(errors="replace"))) if r.get("split") == "train"), None)
    return setup, last


def _records(text: str) -> list[dict]:
    """The JSON objects of metrics.jsonl lines; a line cut by a read window, or being written now, is skipped."""
    out = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return [r for r in out if isinstance(r, dict)]


def model_summary(folder: Path, training: bool = False) -> dict:
    """A model folder (e.g. Wav2Lip weights) or a training run folder (resumable checkpoints, model/ when done)."""
    checkpoint = folder / "checkpoints" / "last" / "config.json"
    config = next((c for c in (folder / "config.json", folder / "model" / "config.json", checkpoint)
                   if c.is_file()), None)
    state = "empty" if config is None else "stopped" if config == checkpoint else "trained"
    setup, last = _metrics_ends(folder)
    settings = read_json(folder / SETTINGS) or {}  # the train request a run was started with from the page
    return {"name": folder.name, "kind": (read_json(config) or {}).get("kind") if config else None,
            "state": "training" if training else state, "step": last["step"] if last else None,
            "steps": setup.get("steps") or _max_steps(settings), "component": settings.get("component"),
            "resumable": bool(settings) and not training and state in ("stopped", "empty")}


def _max_steps(settings: dict) -> int | None:
    for item in settings.get("overrides") or []:
        if isinstance(item, str) and item.startswith("train.max_steps="):
            with contextlib.suppress(ValueError):
                return int(float(item.split("=", 1)[1]))
    return None


def list_models(root: Path, training: set[str]) -> list[dict]:
    return [model_summary(d, d.name in training) for d in sorted(root.iterdir())
            if d.is_dir() and not d.is_symlink() and not d.name.startswith(".")]


def list_builtin() -> list[dict]:
    """The lip-sync bases shipped in the package, as the page offers them ('builtin:NAME')."""
    return [{"name": f"{BUILTIN}:{n}", "label": f"built-in {n} (synthetic speakers, never a real person)"}
            for n in pretrained_names()]


def read_metrics(folder: Path) -> list[dict]:
    """The run's metrics.jsonl records (train, val and setup splits); [] for a folder without a log."""
    path = folder / "logs" / "metrics.jsonl"
    return _records(path.read_text()) if path.is_file() else []
