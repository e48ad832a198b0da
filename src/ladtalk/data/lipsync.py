"""Training samples for the lip-sync networks, drawn as the official Wav2Lip scripts do from identity folders and
LRS2-style roots (<spk>/<vid>/{k}.jpg + audio.wav): 5-frame windows of BGR float faces in [0, 1] (the official
convention) and their mel windows. Each index draws from a generator seeded with (seed, index), so a resumed run
sees the same samples as an uninterrupted one.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ladtalk.data.identity import META_NAME, Identity
from ladtalk.errors import InputError
from ladtalk.features.mel import WINDOW_STEPS, frame_start, melspectrogram, sync_window, training_windows
from ladtalk.io.audio import load_audio

T_WINDOW = 5  # frames per sample (syncnet_T of the official scripts)
LRS2_FPS = 25.0
VAL_FRACTION = 0.05  # of an LRS2 root without filelists, the clips (chosen by name hash) held out


def faces_bgr(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (k,H,W,3) RGB crops -> float32 (k,3,size,size) BGR in [0,1] (area-resized, as the generate stage)."""
    t = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    if t.shape[-1] != size or t.shape[-2] != size:
        t = torch.nn.functional.interpolate(t, size=(size, size), mode="area")
    return (t.flip(1) / 255.0).numpy()


@dataclass
class Clip:
    """One talking video: frame ids that have a face, a loader for them, and its audio (mel made on demand)."""

    name: str
    fps: float
    frame_ids: np.ndarray
    load_faces: Callable[[np.ndarray], np.ndarray] = field(repr=False)  # ids -> float32 (k,3,S,S) BGR [0,1]
    load_audio: Callable[[], np.ndarray] = field(repr=False)

    @functools.cached_property
    def mel(self) -> np.ndarray:
        return melspectrogram(self.load_audio())

    @functools.cached_property
    def starts(self) -> np.ndarray:
        """Frame ids t where t..t+4 all have a face and the mels of t-1..t+4 lie inside the audio."""
        ids = np.asarray(self.frame_ids, dtype=np.int64)
        have = set(ids.tolist())
        ok = [t for t in ids if t >= 1 and all((t + k) in have for k in range(1, T_WINDOW))
              and frame_start(t + T_WINDOW - 1, self.fps) + WINDOW_STEPS <= self.mel.shape[1]]
        return np.asarray(ok, dtype=np.int64)


def identity_clip(identity_dir: str | os.PathLike, img_size: int, split: str = "train") -> Clip:
    """An identity folder's train (or test) frames as a clip; its faces are resized once and kept in memory."""
    ident = Identity.open(identity_dir)
    ids = ident.train_indices if split == "train" else ident.test_indices
    # uint8 rows only for the split's frames: 10 minutes at 25 fps and 96 px stay near 400 MB
    table = np.empty((len(ids), 3, img_size, img_size), np.uint8)
    row = np.full(ident.frame_count, -1, np.int64)
    row[ids] = np.arange(len(ids))
    for lo in range(0, len(ids), 256):
        chunk = ids[lo:lo + 256]
        table[lo:lo + len(chunk)] = np.round(faces_bgr(ident.crops[chunk], img_size) * 255.0)
    return Clip(f"{ident.dir.name}:{split}", ident.fps, ids,
                lambda k: table[row[k]].astype(np.float32) / 255.0, ident.audio)


def _read_jpgs(folder: Path, ids: np.ndarray, img_size: int) -> np.ndarray:
    out = np.empty((len(ids), 3, img_size, img_size), np.float32)
    for n, k in enumerate(ids):
        img = cv2.imread(str(folder / f"{k}.jpg"), cv2.IMREAD_COLOR)  # BGR, as the official scripts read it
        if img is None:
            raise InputError(f"{folder / f'{k}.jpg'} cannot be decoded; re-run the preprocessing for this clip")
        img = cv2.resize(img, (img_size, img_size), interpolation=cv2.INTER_AREA)
        out[n] = img.transpose(2, 0, 1) / 255.0
    return out


def lrs2_clip(folder: str | os.PathLike, img_size: int, fps: float = LRS2_FPS) -> Clip:
    """One LRS2-style video folder ({k}.jpg face crops, 0-based frame index k, gaps allowed, + audio.wav)."""
    folder = Path(folder)
    ids = np.array(sorted(int(p.stem) for p in folder.glob("*.jpg") if p.stem.isdigit()), dtype=np.int64)
    return Clip(str(folder), fps, ids, lambda k: _read_jpgs(folder, k, img_size),
                lambda: load_audio(folder / "audio.wav"))


def find_clips(data_dirs: Sequence[str | os.PathLike], img_size: int, split: str = "train") -> list[Clip]:
    """Identity folders (their own time split) and LRS2-style roots -> clips of `split` ('train' or 'val'). An LRS2
    root's train.txt / val.txt (the official filelists) choose its clips, else a hash of the clip name does."""
    clips: list[Clip] = []
    for d in data_dirs:
        d = Path(d)
        if (d / META_NAME).is_file():
            clips.append(identity_clip(d, img_size, "train" if split == "train" else "test"))
            continue
        if not d.is_dir():
            raise InputError(f"{d} is neither an identity folder nor a dataset folder")
        folders = sorted({p.parent for pat in ("audio.wav", "*/audio.wav", "*/*/audio.wav") for p in d.glob(pat)})
        listed = d / ("train.txt" if split == "train" else "val.txt")
        if listed.is_file():
            names = {line.split()[0] for line in listed.read_text().splitlines() if line.strip()}
            folders = [f for f in folders if f.relative_to(d).as_posix() in names]
        else:
            folders = [f for f in folders if _is_val(f.relative_to(d).as_posix(), VAL_FRACTION) == (split != "train")]
        clips += [lrs2_clip(f, img_size) for f in folders]
        if not folders and split == "train":
            raise InputError(f"{d} holds no identity.json and no <spk>/<vid>/audio.wav clips; give identity "
                             "folders (`ladtalk prepare`) or an LRS2-style root")
    return clips


def _is_val(name: str, fraction: float) -> bool:
    h = int.from_bytes(name.encode()[-8:].rjust(8, b"\0"), "little") * 0x9E3779B97F4A7C15 % 2**64
    return h / 2**64 < fraction


def usable(clip: Clip) -> bool:
    """More than 15 frames with a face (the official rule) and at least two 5-frame windows to tell apart."""
    return len(clip.frame_ids) > 3 * T_WINDOW and len(clip.starts) >= 2


class _WindowSampler(Dataset):
    """Shared drawing of clips and windows; `length` is virtual (samples are drawn at random per index)."""

    def __init__(self, clips: Sequence[Clip], length: int, seed: int = 0):
        self.clips = [c for c in clips if usable(c)]
        if not self.clips:
            raise InputError("no clip has enough frames with a face (more than 15, with audio, in runs of 5) to "
                             "draw lip-sync windows from")
        self.length, self.seed = int(length), int(seed)

    def __len__(self) -> int:
        return self.length

    def _draw(self, index: int) -> tuple[np.random.Generator, Clip, int]:
        rng = np.random.default_rng([self.seed, int(index)])
        # the official sampler redraws until a window is valid; drawing among valid starts is the same, faster
        clip = self.clips[rng.integers(len(self.clips))]
        return rng, clip, int(clip.starts[rng.integers(len(clip.starts))])

    @staticmethod
    def _other(rng: np.random.Generator, clip: Clip, t: int) -> int:
        while True:
            u = int(clip.starts[rng.integers(len(clip.starts))])
            if u != t:
                return u

    @staticmethod
    def window(clip: Clip, t: int) -> np.ndarray:
        return clip.load_faces(np.arange(t, t + T_WINDOW))  # (5,3,S,S)


NEAR_OFFSETS = (3, 25)  # frames: an off-sync window this close shares the head pose and lighting of the true one


class SyncPairs(_WindowSampler):
    """Expert samples: (mel (1,80,16), face (15,S/2,S) lower halves of 5 frames, y (1,)); half in sync, half not.
    A share `near_negatives` of the off-sync windows lies NEAR_OFFSETS frames from the true one, the rest anywhere."""

    def __init__(self, clips: Sequence[Clip], length: int, seed: int = 0, near_negatives: float = 0.0):
        super().__init__(clips, length, seed)
        self.near_negatives = near_negatives

    def _negative(self, rng: np.random.Generator, clip: Clip, t: int) -> int:
        if self.near_negatives > 0 and rng.random() < self.near_negatives:
            lo, hi = NEAR_OFFSETS
            near = clip.starts[(np.abs(clip.starts - t) >= lo) & (np.abs(clip.starts - t) <= hi)]
            if len(near):
                return int(near[rng.integers(len(near))])
        return self._other(rng, clip, t)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng, clip, t = self._draw(index)
        positive = bool(rng.random() < 0.5)
        u = t if positive else self._negative(rng, clip, t)
        faces = self.window(clip, u)
        half = faces.shape[-2] // 2
        face = faces[:, :, half:].reshape(-1, half, faces.shape[-1])  # frame-major channels: f0 B,G,R, f1 ...
        mel = sync_window(clip.mel, clip.fps, t)
        return (torch.from_numpy(np.ascontiguousarray(mel)), torch.from_numpy(np.ascontiguousarray(face)),
                torch.tensor([float(positive)]))


class GeneratorSamples(_WindowSampler):
    """Generator samples: x (6,5,S,S) = [gt with lower half zeroed, a random other window], per-frame mels
    (5,1,80,16) from one frame earlier (official), sync mel (1,80,16) at the window start, gt (3,5,S,S)."""

    def __init__(self, clips: Sequence[Clip], length: int, seed: int = 0, mel_offset_frames: int = -1):
        super().__init__(clips, length, seed)
        self.mel_offset_frames = mel_offset_frames

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        rng, clip, t = self._draw(index)
        gt = self.window(clip, t).transpose(1, 0, 2, 3)  # (3,5,S,S)
        wrong = self.window(clip, self._other(rng, clip, t)).transpose(1, 0, 2, 3)
        masked = gt.copy()
        masked[:, :, gt.shape[-2] // 2:] = 0.0
        x = np.concatenate([masked, wrong], axis=0)
        indiv = training_windows(clip.mel, clip.fps, t, T_WINDOW, self.mel_offset_frames)
        if indiv is None:  # only an offset other than the official -1 can leave the precomputed range
            indiv = training_windows(clip.mel, clip.fps, t, T_WINDOW, 0)
        mel = sync_window(clip.mel, clip.fps, t)
        return (torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(indiv)),
                torch.from_numpy(np.ascontiguousarray(mel)), torch.from_numpy(np.ascontiguousarray(gt)))
