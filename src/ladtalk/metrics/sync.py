"""LSE-D / LSE-C (Prajwal et al. 2020) with syncnet_python's network S and its evaluation protocol.

Protocol (syncnet_python `SyncNetInstance.evaluate`, as used by Wav2Lip's `calculate_scores_LRS.py`):
- video at 25 fps (the caller resamples, as the official pipeline re-encodes with -r 25), frames resized to 224x224,
  BGR, raw 0..255; audio 16 kHz mono as int16 values; MFCC 13 x F at 100 Hz (`mfcc_100hz`);
- L = min(#frames, floor(#samples / 640)); for i in 0 .. L-6: frames i..i+4 and MFCC columns 4i..4i+19;
- for each i the Euclidean distance (eps 1e-6) between video feature i and audio feature i+d for
  d in -15..15 (audio features zero-padded by 15 at both ends); mdist[d] = mean over i;
  LSE-D = min(mdist), LSE-C = median(mdist) - min(mdist), AV offset = 15 - argmin (in frames).
Each score also gets its block-bootstrap 95% interval (`lse_intervals`).
One documented difference: the official pipeline round-trips frames through JPEG files; we do not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy.fft import dct

from ladtalk import lipsync_weights
from ladtalk.errors import InputError
from ladtalk.metrics.confidence import BLOCK_FRAMES, interval
from ladtalk.models.syncnet import SyncNetS
from ladtalk.weights import find_weight

SYNC_FPS = 25
SYNC_SAMPLE_RATE = 16000  # syncnet_python's own (the LSE protocol), whatever rate the rest of ladtalk uses
SYNC_SIZE = 224
WINDOW_FRAMES = 5
MFCC_PER_FRAME = 4          # 100 Hz MFCC / 25 fps
WINDOW_MFCC = 20
VSHIFT = 15
SYNCNET_FILENAME = "syncnet_v2.model"
SYNCNET_ENV = "LADTALK_SYNCNET"


def mel_filterbank(nfilt: int = 26, nfft: int = 512, sample_rate: int = SYNC_SAMPLE_RATE) -> np.ndarray:
    """Triangular mel filters (nfilt, nfft//2+1) from 0 Hz to Nyquist on FFT bins floor((nfft+1) f / sr), as
    python_speech_features."""
    top_mel = 2595.0 * np.log10(1.0 + sample_rate / 2 / 700.0)
    hz = 700.0 * (10.0 ** (np.linspace(0.0, top_mel, nfilt + 2) / 2595.0) - 1.0)
    bins = np.floor((nfft + 1) * hz / sample_rate).astype(int)
    lo, mid, hi = bins[:-2, None], bins[1:-1, None], bins[2:, None]  # each filter's start, peak and end bin
    k = np.arange(nfft // 2 + 1)
    return np.clip(np.minimum((k - lo) / (mid - lo), (hi - k) / (hi - mid)), 0, None)


def mfcc_100hz(samples: np.ndarray, sample_rate: int = SYNC_SAMPLE_RATE) -> np.ndarray:
    """MFCC (13, F) float64 of int16-scaled mono samples (N,), as python_speech_features.mfcc with defaults: 25 ms
    frames every 10 ms, pre-emphasis 0.97, 26 mel filters, log (zeros -> eps), orthonormal DCT-II, lifter 22, c0
    replaced by the log frame energy."""
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise InputError("cannot compute MFCC of empty audio")
    win, step, nfft, eps = int(0.025 * sample_rate + 0.5), int(0.01 * sample_rate + 0.5), 512, np.finfo(float).eps
    x = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])
    n_frames = 1 if x.size <= win else 1 + int(np.ceil((x.size - win) / step))
    x = np.concatenate([x, np.zeros((n_frames - 1) * step + win - x.size)])
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::step]
    power = np.abs(np.fft.rfft(frames, nfft)) ** 2 / nfft
    energy = power.sum(1)
    energy[energy == 0] = eps
    fb = power @ mel_filterbank(26, nfft, sample_rate).T
    fb[fb == 0] = eps
    cep = dct(np.log(fb), type=2, axis=1, norm="ortho")[:, :13]
    cep *= 1.0 + 11.0 * np.sin(np.pi * np.arange(13) / 22.0)
    cep[:, 0] = np.log(energy)
    return cep.T


def int16_scale(samples: np.ndarray) -> np.ndarray:
    """float mono in [-1,1] -> float64 int16 values (what the official pipeline reads from its 16-bit WAV)."""
    return np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32768.0), -32768, 32767)


def load_syncnet_s(path: str | os.PathLike | None = None, device: torch.device | str = "cpu") -> SyncNetS:
    """SyncNetS (eval) with syncnet_v2.model weights from `path` or $LADTALK_SYNCNET; InputError if not given."""
    file = find_weight("SyncNet", explicit_path=path, env_var=SYNCNET_ENV)
    if file is None:
        raise InputError(f"LSE-C/LSE-D need {SYNCNET_FILENAME} (syncnet_python's model, 54,573,114 bytes); "
                         f"none was given (--syncnet PATH or ${SYNCNET_ENV})")
    return lipsync_weights.load_syncnet_s(file, device).requires_grad_(False)


@dataclass(frozen=True)
class SyncScores:
    """LSE-D (lower is better), LSE-C (higher is better), AV offset in frames, mean distance per shift, and the
    95% intervals of LSE-D and LSE-C."""

    lse_d: float
    lse_c: float
    offset: int
    mean_dists: np.ndarray  # (31,) for shifts -15..15
    ci95: dict[str, list[float]] = field(default_factory=dict)  # {"lse_d": [low, high], "lse_c": [low, high]}


def shifted_distances(video_feats: torch.Tensor, audio_feats: torch.Tensor, vshift: int = VSHIFT) -> torch.Tensor:
    """(N, 2*vshift+1) distances between video feature i and audio feature i+d, d in -vshift..vshift (zero-padded)."""
    pad = F.pad(audio_feats, (0, 0, vshift, vshift))
    win = 2 * vshift + 1
    rows = [F.pairwise_distance(video_feats[i:i + 1].expand(win, -1), pad[i:i + win]) for i in range(len(video_feats))]
    return torch.stack(rows)


def lse_intervals(window_dists: np.ndarray, block: int = BLOCK_FRAMES) -> dict[str, list[float]]:
    """Block-bootstrap 95% intervals {"lse_d": [low, high], "lse_c": [low, high]} from the distances (N, shifts) of
    N consecutive windows, resampled in runs of `block`. Circular blocks: the first and last windows meet zero-padded
    audio at most shifts, and moving blocks would draw them less often than the rest, biasing the resampled curve."""
    d = np.asarray(window_dists, np.float64)
    return {"lse_d": interval(lambda i: float(d[i].mean(0).min()), len(d), block, circular=True),
            "lse_c": interval(lambda i: float(np.median(d[i].mean(0)) - d[i].mean(0).min()), len(d), block,
                              circular=True)}


def scores_from_features(video_feats: torch.Tensor, audio_feats: torch.Tensor, vshift: int = VSHIFT) -> SyncScores:
    """LSE-D / LSE-C / offset, with their intervals, from per-window features (N,D) of the video and audio branches."""
    dists = shifted_distances(video_feats, audio_feats, vshift)
    mdist = dists.mean(0)
    minval, minidx = torch.min(mdist, 0)
    conf = torch.median(mdist) - minval
    return SyncScores(lse_d=float(minval), lse_c=float(conf), offset=int(vshift - int(minidx)),
                      mean_dists=mdist.double().cpu().numpy(), ci95=lse_intervals(dists.double().cpu().numpy()))


@torch.no_grad()
def sync_features(net: SyncNetS, frames: np.ndarray, samples_int16: np.ndarray, batch_size: int = 20,
                  device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-window (video, audio) features (N,1024): uint8 (T,H,W,3) RGB at 25 fps, int16-scaled 16 kHz audio."""
    cc = torch.from_numpy(mfcc_100hz(samples_int16, SYNC_SAMPLE_RATE)).float()[None, None]
    length = min(len(frames), len(samples_int16) // (SYNC_SAMPLE_RATE // SYNC_FPS))
    last = length - WINDOW_FRAMES
    if last <= 0:
        raise InputError(f"LSE needs more than {WINDOW_FRAMES} frames of video with audio; got {length}")
    vfeats, afeats = [], []
    for s in range(0, last, batch_size):
        idx = range(s, min(last, s + batch_size))
        # SyncNet S's input, float32 (1,3,T,224,224) BGR 0..255, of only the frames this batch needs (the whole clip
        # at 224x224 float would be large); bilinear, like cv2.resize's default in the Wav2Lip copy of the scorer
        clip = torch.as_tensor(np.ascontiguousarray(frames[s:idx[-1] + WINDOW_FRAMES, ..., ::-1])).permute(3, 0, 1, 2)
        clip = F.interpolate(clip.float(), size=(SYNC_SIZE, SYNC_SIZE), mode="bilinear", align_corners=False)
        clip = clip[None].to(device)
        vids = torch.cat([clip[:, :, i - s:i - s + WINDOW_FRAMES] for i in idx])
        auds = torch.cat([cc[:, :, :, MFCC_PER_FRAME * i:MFCC_PER_FRAME * i + WINDOW_MFCC] for i in idx]).to(device)
        vfeats.append(net.forward_lip(vids).float().cpu())
        afeats.append(net.forward_aud(auds).float().cpu())
    return torch.cat(vfeats), torch.cat(afeats)


def lse_scores(net: SyncNetS, frames: np.ndarray, audio: np.ndarray, device: torch.device | str = "cpu",
               batch_size: int = 20) -> SyncScores:
    """LSE-D / LSE-C of uint8 (T,H,W,3) RGB face frames at 25 fps with float mono 16 kHz audio in [-1,1]."""
    vf, af = sync_features(net, frames, int16_scale(audio), batch_size, device)
    return scores_from_features(vf, af)
