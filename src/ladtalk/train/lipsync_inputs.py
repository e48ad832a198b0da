"""The lip-sync model's own faces as restorer training inputs (beyond the paper): its errors (a vague mouth, a
slightly wrong lip shape, lost teeth) are what synthetic blur and noise only roughly imitate. The identity's train
frames driven by their own audio, through `generate`'s code path, pair each such face with the frame's true crop."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from ladtalk.data.identity import Identity
from ladtalk.errors import InputError
from ladtalk.features.mel import mel_windows, melspectrogram
from ladtalk.io.atomic import atomic_path
from ladtalk.lipsync_weights import load_wav2lip, wav2lip_input_geometry, wav2lip_mel_offset
from ladtalk.pipeline.frames import SourceFrames
from ladtalk.pipeline.stages import upscale
from ladtalk.pixels import to_frames
from ladtalk.train.common import progress


def lipsync_faces_of_frames(ident: Identity, wav2lip_path: str | os.PathLike, indices: np.ndarray, size: int,
                            device: torch.device, dtype: torch.dtype | None = None, batch_size: int = 32
                            ) -> np.ndarray:
    """uint8 (N,size,size,3): the faces the cascade's restorer receives for identity frames `indices` driven by
    their own audio (the self-reenactment set-up of `reenact`, on any split)."""
    from ladtalk.pipeline.generate import lipsync_faces

    indices = np.asarray(indices, dtype=np.int64)
    wav2lip = load_wav2lip(wav2lip_path, device).eval()
    square_crop = wav2lip_input_geometry(wav2lip_path) == "square_crop"
    offset = wav2lip_mel_offset(wav2lip_path)  # the windows generate() feeds this model
    audio = ident.audio()
    if len(audio) == 0:
        raise InputError(f"identity {ident.dir} has no audio; the lip-sync model's faces need the speech")
    mel = melspectrogram(audio)
    out = np.empty((len(indices), size, size, 3), np.uint8)
    frames_iter = None if square_crop else \
        SourceFrames(ident.source_path, fps=ident.meta.get("settings", {}).get("fps")).iter_schedule(indices)
    bar = progress(len(indices), desc="lip-sync faces for training", unit="frame")
    for s in range(0, len(indices), batch_size):
        idx = indices[s:s + batch_size]
        windows = np.concatenate([mel_windows(mel, ident.fps, 1, first_frame=int(i), offset_frames=offset)
                                  for i in idx])
        frames = None if frames_iter is None else np.stack([next(frames_iter) for _ in idx])
        faces, _ = lipsync_faces(ident, wav2lip, frames, idx, torch.from_numpy(windows).to(device), dtype,
                                 square_crop, size)
        out[s:s + len(idx)] = to_frames(upscale(faces, size)) if isinstance(faces, torch.Tensor) else faces
        bar.update(len(idx))
    bar.close()
    return out


def cached_lipsync_faces(run_dir: Path, identities: list[Identity], rows: list[np.ndarray],
                         wav2lip_path: str | os.PathLike, size: int, device: torch.device,
                         dtype: torch.dtype | None = None) -> list[np.ndarray]:
    """`lipsync_faces_of_frames` for each identity's frame `rows`, stored once in RUN_DIR (a run resumed with
    the same lip-sync model and frames reuses them)."""
    key = {"wav2lip": str(Path(wav2lip_path).resolve()), "size": size, "mel_offset": wav2lip_mel_offset(wav2lip_path),
           "identities": [str(i.dir.resolve()) for i in identities], "rows": [len(r) for r in rows]}
    data, meta = run_dir / "lipsync_inputs.npy", run_dir / "lipsync_inputs.json"
    if data.is_file() and meta.is_file() and json.loads(meta.read_text()) == key:
        stored = np.load(data, mmap_mode="r")
    else:
        stored = np.concatenate([lipsync_faces_of_frames(ident, wav2lip_path, r, size, device, dtype)
                                 for ident, r in zip(identities, rows)])
        with atomic_path(data) as tmp, open(tmp, "wb") as f:
            np.save(f, stored)
        with atomic_path(meta) as tmp:
            tmp.write_text(json.dumps(key))
    bounds = np.cumsum([0] + [len(r) for r in rows])
    return [np.asarray(stored[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
