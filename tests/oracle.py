"""The deterministic weights and inputs of ../shared/fixtures/README.md, shared by the oracle tests."""

from __future__ import annotations

import numpy as np
import torch


def oracle_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fill every tensor of a state dict (official key names) as the fixtures README prescribes."""
    out = {}
    for i, key in enumerate(sorted(state)):
        t = state[key]
        n = t.numel()
        b = np.sin(0.37 * np.arange(n) + i)
        if key.endswith("num_batches_tracked"):
            v = np.zeros(n)
        elif key.endswith("running_var"):
            v = 1 + 0.5 * b**2
        elif key.endswith("running_mean"):
            v = 0.1 * b
        elif t.dim() >= 2:
            v = b * np.sqrt(3 / (n // t.shape[0]))
        else:
            v = 1 + 0.1 * b if key.endswith("weight") else 0.1 * b
        out[key] = torch.from_numpy(v).to(t.dtype).reshape(t.shape)
    return out


def oracle_fill(model: torch.nn.Module) -> torch.nn.Module:
    """Load the oracle weights strictly and switch to eval mode."""
    model.load_state_dict(oracle_state(model.state_dict()), strict=True)
    return model.eval()


def inp(shape: tuple[int, ...], phase: float) -> torch.Tensor:
    """The README's input: 0.5 + 0.5 sin(0.011 k + phase), float32, row-major."""
    n = int(np.prod(shape))
    return torch.from_numpy((0.5 + 0.5 * np.sin(0.011 * np.arange(n) + phase)).astype(np.float32).reshape(shape))
