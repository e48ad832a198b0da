"""`ladtalk analyze`: measure the paper's theory (its Theorems 3.2/3.3) on a trained SOVQAE, and its robustness
experiment.

Theory (`_theory`): d_C, gamma, L_E and NRoUB, every quantity labelled bound or estimate (metrics/nroub.py and
metrics/lipschitz.py state the assumptions). Experiment (the paper's, `_robustness`): a random 192x192 region of
each test frame (scaled with the crop size) blurred, or noised, at several strengths, and a Wav2Lip-like down-up of
the whole crop (as in training validation); PSNR, the share of unchanged codes and the perturbation's norm.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ladtalk.data import degrade
from ladtalk.data.identity import Identity
from ladtalk.errors import InputError
from ladtalk.io.atomic import atomic_dir, check_writable_dir
from ladtalk.io.guard import refuse_foreign_folder, refuse_output_over_inputs
from ladtalk.metrics import nroub
from ladtalk.metrics.image import sample_frames
from ladtalk.pipeline.restore import load_sovqae, restore_images_with_latents, sovqae_folder
from ladtalk.runtime import resolve_device
from ladtalk.train.sovqae_eval import crops_to_images, scores_of_restoration

BLUR_SIGMAS = (0.5, 1.0, 2.0, 3.0, 4.0)     # pixels at 256x256, scaled with the crop size
NOISE_STDS = (0.02, 0.05, 0.1, 0.2, 0.3)    # in [0,1] intensity units
MAX_GAMMA_FRAMES = 2000                      # training frames used for gamma (evenly spaced)
STATS_FRAMES = 8                             # training frames for the Lipschitz bound's GN/attention statistics
JACOBIAN_FRAMES = 4                          # test frames for the empirical Jacobian estimate


@contextlib.contextmanager
def _exact_fp32():
    """TF32 off while measuring: finite-difference Jacobians need full fp32 convolutions and matmuls."""
    flags = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = flags


def _evenly(indices: np.ndarray, count: int | None) -> np.ndarray:
    return indices if count is None else indices[sample_frames(len(indices), count)]


def _batched_images(ident: Identity, idx: np.ndarray, device: torch.device, size: int) -> torch.Tensor:
    return torch.cat([crops_to_images(ident.crops[np.sort(idx[s:s + 64])], device, size)
                      for s in range(0, len(idx), 64)]) if len(idx) else torch.empty(0, 3, size, size)


def _plots(folder: Path, rows: list[dict[str, Any]]) -> list[str]:
    from matplotlib.figure import Figure  # not pyplot: no global figure state

    names = []
    for kind, xlabel in (("blur", "Gaussian sigma (px at 256)"), ("noise", "noise std ([0,1] units)")):
        sel = [r for r in rows if r["kind"] == kind]
        x = [r["strength"] for r in sel]
        fig = Figure(figsize=(10, 3.8))
        a1, a2 = fig.subplots(1, 2)
        a1.plot(x, [r["psnr_degraded_region"] for r in sel], "o-", label="degraded vs GT")
        a1.plot(x, [r["psnr_restored_region"] for r in sel], "s-", label="restored vs GT")
        a1.set(xlabel=xlabel, ylabel="PSNR in the degraded region (dB)")
        a1.legend()
        a1.grid(alpha=0.3)
        a2.plot(x, [100 * r["codes_unchanged"] for r in sel], "o-", color="C2")
        a2.set(xlabel=xlabel, ylabel="codes unchanged (%)", ylim=(0, 101))
        a2.grid(alpha=0.3)
        fig.suptitle(f"SOVQAE robustness to {kind}")
        fig.tight_layout()
        fig.savefig(folder / f"{kind}.png", dpi=110)
        names.append(f"{kind}.png")
    return names


def _markdown(rep: dict[str, Any], plots: list[str]) -> str:
    t = rep["theory"]
    lines = [f"# SOVQAE analysis: {rep['model']}", "",
             f"Identity `{rep['identity']}`, {rep['test_frames']} test frames at {rep['image_size']}px, seed "
             f"{rep['seed']}, device {rep['device']}.", "", "## Theory", "",
             "| quantity | kind | value |", "|---|---|---|",
             f"| d_C (min code distance) | exact | {t['codes']['d_C']:.4g} |",
             f"| gamma over training latents ({t['gamma']['frames']} frames) | {t['gamma']['kind']} | "
             f"{t['gamma']['gamma']:.4g} (p50 {t['gamma']['p50']:.3g}, p99 {t['gamma']['p99']:.3g}) |",
             f"| gamma over test latents ({t['gamma_test']['count']} vectors) | measured | "
             f"{t['gamma_test']['gamma']:.4g} ({100 * t['test_latents_within_gamma']:.1f}% within the training "
             "gamma) |",
             f"| L_E, composed with FFT conv bounds | local bound (GroupNorm, attention frozen) | "
             f"10^{t['lipschitz']['log10_L_E_local_bound']:.2f} |",
             f"| L_E, composed with power-iteration conv norms | estimate (conv norms from below) | "
             f"10^{t['lipschitz']['log10_L_E_power_iteration_estimate']:.2f} |",
             f"| L_E, max Jacobian spectral norm at {len(t['L_E_jacobian_estimate_per_frame'])} test frames | "
             f"lower estimate | {t['L_E_jacobian_estimate']:.4g} |",
             f"| L_E, max encoder gain on the degraded pairs below | lower estimate | "
             f"{t['L_E_degradation_gain_estimate']:.4g} |",
             f"| NRoUB with the local bound of L_E | local bound (guaranteed near the training statistics) | "
             f"{t['nroub_local_bound']:.4g} |",
             f"| NRoUB with the Jacobian estimate of L_E | upper estimate (overstates the guaranteed margin) | "
             f"{t['nroub_jacobian_estimate']:.4g} |", "",
             f"Bound assumptions: {t['lipschitz']['assumptions']}. Norms are Frobenius norms on images in [-1,1]. "
             "The theorem assumes the perturbed face's clean latent lies within gamma of its code, as training "
             "latents do by definition; test latents farther than that are not covered even by the bound.",
             ""]
    if t["codes"]["d_C"] < 2 * t["gamma"]["gamma"]:
        lines += ["d_C < 2 gamma: the guarantee is empty (NRoUB < 0) for this model; code stability below is "
                  "measured, not guaranteed.", ""]
    lines += ["## Robustness (paper protocol)", "",
              "| degradation | strength | PSNR degraded (region) | PSNR restored (region) | PSNR degraded | "
              "PSNR restored | codes unchanged | mean delta Frobenius norm |", "|---|---|---|---|---|---|---|---|"]
    for r in rep["experiments"]:
        lines.append(f"| {r['kind']} | {r['strength']} | {r.get('psnr_degraded_region', float('nan')):.2f} | "
                     f"{r.get('psnr_restored_region', float('nan')):.2f} | {r['psnr_degraded']:.2f} | "
                     f"{r['psnr_restored']:.2f} | {100 * r['codes_unchanged']:.1f}% | "
                     f"{r['delta_frobenius_mean']:.3g} |")
    lines += ["", "Region PSNR is over the degraded square; the down-up row degrades the whole crop.", ""]
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def analyze(model_path: str | os.PathLike, identity_dir: str | os.PathLike, report_dir: str | os.PathLike,
            max_frames: int | None = None, device: str = "auto", seed: int = 0) -> dict[str, Any]:
    """Theory numbers and the robustness experiment for a SOVQAE on an identity's test frames -> report dict."""
    if max_frames is not None and max_frames < 1:
        raise InputError(f"--max-frames must be at least 1, got {max_frames}")
    refuse_output_over_inputs(report_dir, [("SOVQAE model", model_path), ("identity", identity_dir)], folder=True)
    refuse_foreign_folder(report_dir, "report.json", "analysis report")
    check_writable_dir(Path(report_dir).parent)
    dev = resolve_device(device)
    model = load_sovqae(model_path, dev)
    ident = Identity.open(identity_dir)
    size = model.config.resolution  # crops of another size are resized to the model's (noted in the report)
    test_idx = _evenly(ident.test_indices, max_frames)
    if len(test_idx) == 0:
        raise InputError(f"{ident.dir} has no test frames with a face; prepare a longer video")
    torch.manual_seed(seed)
    bar = tqdm(total=5 + len(BLUR_SIGMAS) + len(NOISE_STDS), desc="analyze", unit="part", dynamic_ncols=True)

    def done(what: str) -> None:
        bar.set_postfix_str(what, refresh=False)
        bar.update(1)

    with _exact_fp32():
        clean = _batched_images(ident, test_idx, dev, size)
        theory = _theory(model, ident, clean, seed, done)
        margins = (theory["nroub_local_bound"], theory["nroub_jacobian_estimate"])
        region = degrade.scaled_region(size)
        rows = _robustness(model, clean, region, torch.Generator().manual_seed(seed), margins, done)
    bar.close()
    theory["L_E_degradation_gain_estimate"] = max(r["encoder_gain_estimate_max"] for r in rows)
    rep = {"image_size": size, "crop_size": ident.crop_size, "test_frames": int(len(test_idx)), "region": region,
           "theory": theory, "experiments": rows, "model": str(sovqae_folder(model_path)), "identity": str(ident.dir),
           "device": str(dev), "seed": seed}
    with atomic_dir(report_dir) as tmp:
        plots = _plots(tmp, rep["experiments"])
        (tmp / "report.json").write_text(json.dumps(rep, indent=2, default=float))
        (tmp / "report.md").write_text(_markdown(rep, plots))
    return rep


def _theory(model, ident: Identity, clean: torch.Tensor, seed: int, done) -> dict[str, Any]:
    """d_C, gamma over the training and the test latents, L_E (local bound and estimates) and NRoUB with each."""
    dev, size = clean.device, clean.shape[-1]
    code_stats = nroub.code_distance_stats(model.quantize.embedding.weight)
    idx = _evenly(ident.train_indices, MAX_GAMMA_FRAMES)
    dists = [nroub.nearest_codes(model, _batched_images(ident, idx[s:s + 64], dev, size))[0]
             for s in range(0, len(idx), 64)]
    gamma = {**nroub.gamma_stats(torch.cat(dists)), "frames": int(len(idx)),
             "kind": "measured over every training frame" if len(idx) == len(ident.train_indices)
             else "lower estimate (frames subsampled)"}
    done("gamma")
    stats_imgs = _batched_images(ident, _evenly(ident.train_indices, STATS_FRAMES), dev, size) * 2 - 1
    lip = nroub.encoder_lipschitz_bound(model, stats_imgs, iters=20, seed=seed)
    done("Lipschitz bound")
    test_dists = nroub.nearest_codes(model, clean)[0]
    jac = nroub.jacobian_spectral_norms(model.encode_latent, clean[:JACOBIAN_FRAMES] * 2 - 1, iters=8, seed=seed)
    done("Jacobian norms")
    l_e_jacobian = float(jac.max())
    l_e_bound = lip["L_E_local_bound"]
    return {"codes": code_stats, "gamma": gamma, "gamma_test": nroub.gamma_stats(test_dists),
            "test_latents_within_gamma": float((test_dists <= gamma["gamma"]).float().mean()),
            "lipschitz": lip, "L_E_jacobian_estimate": l_e_jacobian,
            "L_E_jacobian_estimate_per_frame": [float(v) for v in jac.cpu()],
            "nroub_local_bound": nroub.nroub(code_stats["d_C"], gamma["gamma"], l_e_bound)
            if math.isfinite(l_e_bound) else 0.0,
            "nroub_jacobian_estimate": nroub.nroub(code_stats["d_C"], gamma["gamma"], l_e_jacobian),
            "units": "Frobenius norm of the image difference in [-1,1] units over 3xHxW"}


def _robustness(model, clean: torch.Tensor, region: int, gen: torch.Generator, margins: tuple[float, float],
                done) -> list[dict[str, Any]]:
    """The paper's experiment: clean faces, then blur and noise in a random region, then a whole-crop down-up."""
    size = clean.shape[-1]
    _, clean_indices, clean_latents = restore_images_with_latents(model, clean)  # encoded once, compared with every row
    boxes = degrade.random_regions(len(clean), size, size, region, gen)
    box_mask = degrade.region_mask(boxes, size, size, clean.device)

    def experiment(kind: str, strength: float, degraded: torch.Tensor, mask: torch.Tensor | None) -> dict[str, Any]:
        restored, indices, latents = restore_images_with_latents(model, degraded)
        r = scores_of_restoration(clean, degraded, restored, indices, clean_indices, mask)
        delta = ((degraded - clean) * 2).flatten(1).norm(dim=1)  # Frobenius norm in the model's [-1,1] units
        # the encoder's gain on these very perturbations: a lower estimate of L_E where it matters
        gain = nroub.difference_ratios(clean_latents, latents, clean * 2 - 1, degraded * 2 - 1)
        r.update(kind=kind, strength=strength, delta_frobenius_mean=float(delta.mean()),
                 encoder_gain_estimate_max=float(gain.max()),
                 share_within_nroub_local_bound=float((delta < margins[0]).float().mean()),
                 share_within_nroub_jacobian_estimate=float((delta < margins[1]).float().mean()))
        return r

    rows = [experiment("none", 0.0, clean, None)]
    done("clean faces")
    for kind, strengths, degraded in (("blur", BLUR_SIGMAS, lambda s: degrade.gaussian_blur(clean, s * size / 256)),
                                      ("noise", NOISE_STDS, lambda s: degrade.gaussian_noise(clean, s, gen))):
        for s in strengths:
            rows.append(experiment(kind, s, degrade.in_region(clean, degraded(s), boxes), box_mask))
            done(f"{kind} {s}")
    low = degrade.lipsync_size(size)  # the same down-up as training validation's down96
    rows.append(experiment("down_up", float(low), degrade.down_up(clean, low), None))
    done("down-up")
    return rows
