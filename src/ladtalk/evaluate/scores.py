"""The metric families of `ladtalk evaluate`, one function each, on aligned uint8 (T,H,W,3) frames, named in
metrics.scoring's vocabulary with the whole frame as the region (evaluate has no face box); LSE is reported for the
ground truth too, and a synthetic clip's truth.json adds `lipsync_r` and `mouth_psnr_db`.

The frozen networks they need are loaded once per run (`load_networks`): LPIPS-VGG (Zhang et al., 2018), the FID
Inception (Heusel et al., 2017), SyncNet for LSE (Chung & Zisserman, 2016; as used by Wav2Lip) and the face detector
for LSE's face crops. A network whose weights are missing is recorded with the reason, never replaced by a number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ladtalk.errors import InputError, LadtalkError
from ladtalk.face.detect import make_detector
from ladtalk.io.audio import load_audio
from ladtalk.io.video import VideoInfo, iter_frames
from ladtalk.metrics import image as im
from ladtalk.metrics.fid import extract_features, fid_from_features, load_fid_inception
from ladtalk.metrics.lipsync_truth import lag_correlation, mouth_boxes_from_faces, mouth_openness, read_truth
from ladtalk.metrics.lpips import load_perceptual_metric, perceptual_distance
from ladtalk.metrics.sync import SYNC_FPS, SYNC_SAMPLE_RATE, load_syncnet_s, lse_scores
from ladtalk.metrics.sync_faces import lse_face_input
from ladtalk.metrics.temporal import temporal_scores

LOWER_IS_BETTER = {"frame_lpips", "frame_st_lpips", "fid", "lse_d", "lse_d_whole_frame", "frame_warp_error",
                   "frame_own_flow_warp_error", "frame_tof"}
LSE_FACE_NOTE = ("LSE-D / LSE-C on syncnet_python's real-video face crops (median-filtered face track, 2.8x the "
                 "half face size, pad value 110, 224x224), the protocol of the published numbers")
LSE_FRAME_NOTE = ("lse_*_whole_frame: LSE on whole frames resized to 224x224 (the LRS, face-centred protocol); not "
                  "comparable with published LSE-D / LSE-C of real videos")
LSE_CROPS = ("face", "frame")

@dataclass
class Networks:
    """Frozen networks loaded once per run, or the reason each is absent."""

    perceptual: object | None = None
    inception: torch.nn.Module | None = None
    syncnet: torch.nn.Module | None = None
    lse_crop: str = "face"  # "face": syncnet_python's real-video face crops; "frame": whole frames (other keys)
    detector: object | None = None  # finds the faces LSE crops
    absent: dict[str, str] = field(default_factory=dict)


def load_networks(syncnet_path, inception_path, device: torch.device, lse_crop: str = "face",
                  detector: str = "mtcnn") -> Networks:
    if lse_crop not in LSE_CROPS:
        raise InputError(f"lse_crop must be one of {LSE_CROPS}, got {lse_crop!r}")
    nets = Networks(lse_crop=lse_crop)
    try:
        nets.perceptual = load_perceptual_metric(device)
        if nets.perceptual.name != "LPIPS-VGG":
            nets.absent["frame_lpips"] = nets.perceptual.note
    except LadtalkError as e:
        nets.absent["frame_lpips"] = f"no perceptual network could be loaded: {e}"
    try:
        nets.inception = load_fid_inception(inception_path).to(device)
    except InputError as e:
        if inception_path is not None:
            raise
        nets.absent["fid"] = str(e)
    if syncnet_path is not None:
        nets.syncnet = load_syncnet_s(syncnet_path, device)
        if lse_crop == "face":
            nets.detector = make_detector(detector, device=device)
    else:
        reason = ("no SyncNet weights given: pass --syncnet PATH to syncnet_v2.model (syncnet_python, "
                  "54,573,114 bytes; not downloadable from this tool)")
        nets.absent["lse_d"] = nets.absent["lse_c"] = reason
    return nets


def image_scores(p: np.ndarray, g: np.ndarray, perceptual, device: torch.device) -> tuple[dict, dict]:
    """PSNR, SSIM and, with a perceptual network, its distance."""
    series = {"frame_psnr_db": im.psnr(p, g, device), "frame_ssim": im.ssim(p, g, device)}
    if perceptual is not None:
        series[f"frame_{perceptual.key}"] = perceptual_distance(perceptual.net, p, g, device=device)
    return {k: float(np.mean(v)) for k, v in series.items()}, series


def fid_score(inception: torch.nn.Module, p: np.ndarray, g: np.ndarray, device: torch.device) -> tuple[float, str]:
    """(FID between the two frame sets, the note that says how far to trust it)."""
    if len(p) < 2:
        raise InputError("FID needs at least two aligned frames")
    note = (f"FID from {len(p)} frames per set (2048-d features): small sets bias FID upwards; "
            "compare methods on the same frames only")
    return fid_from_features(*(extract_features(inception, frames, device=device) for frames in (p, g))), note


def temporal_family(p: np.ndarray, g: np.ndarray) -> tuple[dict, dict, float]:
    """(warping errors and tOF, their series, the ground truth's own warping error) for 2+ frames."""
    series = {f"frame_{k}": v for k, v in temporal_scores(p, g).items()}
    summary = {k: float(np.mean(v)) for k, v in series.items() if k != "frame_warp_error_truth"}
    return summary, series, float(np.mean(series["frame_warp_error_truth"]))


def lse_of_video(nets: Networks, label: str, path: Path, vinfo: VideoInfo, gt_path: Path, gt_has_audio: bool,
                 max_frames: int | None, device: torch.device) -> tuple[dict, dict, dict, list[str]]:
    """(lse_d / lse_c of one video, their 95% intervals, info, notes), with the ground truth's audio when the video
    has none; under nets.lse_crop "frame" the keys end in `_whole_frame`."""
    notes = []
    # syncnet_python is hard-wired to 25 fps: other rates are resampled, as its pipeline does with -r 25
    fps25 = SYNC_FPS if abs(vinfo.fps - SYNC_FPS) > 1e-3 else None
    frames25 = np.stack(list(iter_frames(path, fps=fps25, max_frames=max_frames)))
    audio_src = path if vinfo.has_audio else (gt_path if gt_has_audio else None)
    if audio_src is None:
        raise InputError(f"{path} has no audio track, and neither has the ground truth: LSE needs audio")
    if audio_src != path:
        notes.append(f"{path.name} has no audio; LSE uses the ground truth's audio")
    audio = load_audio(audio_src, SYNC_SAMPLE_RATE)
    info, suffix = {}, "" if nets.lse_crop == "face" else "_whole_frame"
    if nets.lse_crop == "face":
        n_all = len(frames25)
        frames25, audio, (start, stop) = lse_face_input(frames25, audio, nets.detector)
        info[f"lse_face_frames_{label}"] = stop - start
        if stop - start < n_all:
            notes.append(f"LSE of {label} on its longest run of frames with a face, {start}..{stop - 1}")
    s = lse_scores(nets.syncnet, frames25, audio, device=device)
    info[f"lse_av_offset_frames_{label}{suffix}"] = s.offset
    return ({"lse_d" + suffix: s.lse_d, "lse_c" + suffix: s.lse_c},
            {k + suffix: v for k, v in s.ci95.items()}, info, notes)


def truth_scores(truth_path: Path, p: np.ndarray, g: np.ndarray, gt_start: int) -> tuple[dict, dict, dict]:
    """(metrics, info, series) of a synthetic clip against its truth.json: the lip-sync Pearson correlation and
    mouth PSNR, over the aligned frames; empty with fewer than 3 frames of truth."""
    boxes, openness = (a[gt_start:gt_start + len(p)] for a in read_truth(truth_path))  # the aligned frames' truth
    n = len(boxes)
    if n < 3:
        return {}, {}, {}
    score = lag_correlation(mouth_openness(p[:n], boxes), openness)
    info = {"lipsync_best_lag_frames": score["best_lag"], "lipsync_r_best": score["pearson_best"]}
    series = {"mouth_psnr_db": im.mouth_psnr(p[:n], g[:n], mouth_boxes_from_faces(boxes))}
    return {"lipsync_r": score["pearson"], "mouth_psnr_db": float(np.mean(series["mouth_psnr_db"]))}, info, series
