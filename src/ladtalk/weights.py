"""Finding and safely loading weight files that ladtalk never downloads itself: `load_torch_weights` reads with
`torch.load(weights_only=True)`, so a checkpoint from the internet cannot run code."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pickle
import zipfile
from pathlib import Path

import torch

from ladtalk.errors import CheckpointError, InputError


def torch_hub_checkpoints_dir() -> Path:
    """`$TORCH_HOME/hub/checkpoints` (default ~/.cache/torch/...), the folder torch.hub / torchvision read from."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def package_dir(package: str) -> Path | None:
    """Folder of an installed package, found without running its `__init__` (which may import torchvision)."""
    with contextlib.suppress(ImportError, ValueError):
        if (spec := importlib.util.find_spec(package)) and spec.submodule_search_locations:
            return Path(next(iter(spec.submodule_search_locations)))
    return None


def find_weight(name: str, explicit_path: str | os.PathLike | None = None, env_var: str | None = None,
                hub_filename: str | None = None, package: str | None = None,
                package_relpath: str | None = None) -> Path | None:
    """The first existing file of: explicit path, $env_var, hub cache/hub_filename, <package>/package_relpath, or
    None. A given path or $env_var that does not exist is an InputError (`name` labels it); the rest are optional."""
    given = explicit_path if explicit_path is not None else os.environ.get(env_var or "") or None
    if given is not None:
        p = Path(given).expanduser()
        if not p.is_file():
            source = "the weight file" if explicit_path is not None else f"${env_var}'s file"
            raise InputError(f"{name}: {source} {p} does not exist (or is not a file); fix the path")
        return p
    if hub_filename and (p := torch_hub_checkpoints_dir() / hub_filename).is_file():
        return p
    if package and package_relpath and (root := package_dir(package)) and (root / package_relpath).is_file():
        return root / package_relpath
    return None


def where_looked(name: str, env_var: str | None = None, hub_filename: str | None = None,
                 package: str | None = None, package_relpath: str | None = None) -> str:
    """A sentence listing the places `find_weight` searched, for 'file not found' messages."""
    places = [f"${env_var}" if env_var else None,
              str(torch_hub_checkpoints_dir() / hub_filename) if hub_filename else None,
              f"the installed '{package}' package ({package_relpath})" if package and package_relpath else None]
    return f"{name} was not found; looked in: " + (", ".join(p for p in places if p) or "(no places given)")


def load_torch_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A flat {name: tensor} from a .pt/.pth/.model/.safetensors file, on the CPU without running code ("state_dict"
    unwrapped, "module." stripped, non-tensors dropped); CheckpointError for a truncated, unsafe or non-dict file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"weight file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{path} is truncated or not a safetensors file ({e}); export it again") from e
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path} cannot be loaded safely: it holds Python objects beyond tensors, which could run code "
            f"when unpickled ({str(e).splitlines()[0] if str(e) else e}). Use a plain state-dict file."
        ) from e
    except (EOFError, RuntimeError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is truncated or not a torch weight file ({e}); get it again") from e
    # training scripts often save {"state_dict": ...} (Wav2Lip, Lightning), or nest it once more
    while isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict of named tensors")
    out = {str(k).removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not out:
        raise CheckpointError(f"{path} holds a dict without any tensors; is it a weight file?")
    return out
