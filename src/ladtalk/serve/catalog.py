"""What the server holds, as the page shows it: identities (face track summary, a strip of crops) and models
(kind, training state, the loss and validation curves from the run's metrics.jsonl)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from ladtalk.data.identity import META_NAME, Identity


def identity_summary(folder: Path) -> dict:
    meta = json.loads((folder / META_NAME).read_text())
    n = int(meta["frame_count"])
    faces = int(sum(meta["has_face"]))
    return {"name": folder.name, "frames": n, "fps": meta["fps"], "seconds": round(n / meta["fps"], 2),
            "face_share": round(faces / max(n, 1), 4), "crop_size": meta["crop_size"],
            "size": [meta["width"], meta["height"]], "split": meta["split"], "pads": meta.get("pads")}


def list_identities(root: Path) -> list[dict]:
    out = []
    for d in sorted(root.iterdir()):
        if d.is_dir() and not d.is_symlink() and not d.name.startswith(".") and (d / META_NAME).is_file():
            try:
                out.append(identity_summary(d))
            except (OSError, ValueError, KeyError):
                continue  # a folder being replaced or damaged: not offered
    return out


def crops_strip_png(folder: Path, count: int = 6, height: int = 128) -> bytes:
    """`count` face crops spread over the video, side by side, as a PNG."""
    from PIL import Image

    ident = Identity.open(folder)
    rows = np.flatnonzero(ident.has_face)
    if len(rows) == 0:
        rows = np.arange(ident.frame_count)
    pick = rows[np.linspace(0, len(rows) - 1, min(count, len(rows))).round().astype(int)]
    tiles = [Image.fromarray(np.asarray(ident.crops[i])).resize((height, height)) for i in pick]
    strip = Image.new("RGB", (height * len(tiles), height))
    for k, tile in enumerate(tiles):
        strip.paste(tile, (k * height, 0))
    buf = io.BytesIO()
    strip.save(buf, format="PNG")
    return buf.getvalue()


def _kind(folder: Path) -> str | None:
    for cand in (folder / "config.json", folder / "model" / "config.json",
                 folder / "checkpoints" / "last" / "config.json"):
        if cand.is_file():
            try:
                return json.loads(cand.read_text()).get("kind")
            except (OSError, ValueError):
                return None
    return None


def model_summary(folder: Path, training: bool = False) -> dict:
    """A model folder (e.g. Wav2Lip weights) or a SOVQAE run folder (resumable checkpoints, model/ when done)."""
    kind = _kind(folder)
    if (folder / "config.json").is_file() or (folder / "model" / "config.json").is_file():
        state = "trained"
    elif (folder / "checkpoints" / "last" / "config.json").is_file():
        state = "stopped"
    else:
        state = "empty"
    if training:
        state = "training"
    metrics = read_metrics(folder)
    last = next((r for r in reversed(metrics) if r.get("split") == "train"), None)
    setup = next((r for r in metrics if r.get("split") == "setup"), {})
    return {"name": folder.name, "kind": kind, "state": state, "step": last["step"] if last else None,
            "steps": setup.get("steps")}


def list_models(root: Path, training: set[str]) -> list[dict]:
    return [model_summary(d, d.name in training) for d in sorted(root.iterdir())
            if d.is_dir() and not d.is_symlink() and not d.name.startswith(".")]


def read_metrics(folder: Path) -> list[dict]:
    """The run's metrics.jsonl records (train, val and setup splits); [] for a folder without a log."""
    path = folder / "logs" / "metrics.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line being written right now
    return records
