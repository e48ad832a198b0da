"""The frozen perceptual distance for training, honestly named: "auto" is real LPIPS-VGG when the ImageNet VGG16
trunk `vgg16-397923af.pth` is in the torch hub cache (heads from the `lpips` wheel), else ST-LPIPS-VGG from the
`stlpips-pytorch` wheel; logs and reports use the returned name. "none" disables the term."""

from __future__ import annotations

import torch

from ladtalk.errors import InputError
from ladtalk.models.perceptual import PerceptualDistance, lpips_vgg, stlpips_vgg
from ladtalk.weights import find_weight, load_torch_weights, where_looked

VGG16_FILE = "vgg16-397923af.pth"
LPIPS_HEADS = ("lpips", "weights/v0.1/vgg.pth")
STLPIPS_FILE = ("stlpips_pytorch", "weights/vST0.0/vgg_shift_tolerant.pth")


def load_lpips_vgg(device: torch.device | str = "cpu") -> PerceptualDistance | None:
    """Real LPIPS-VGG if the VGG16 trunk is in the hub cache and the lpips wheel is installed, else None."""
    trunk = find_weight("VGG16 ImageNet trunk", env_var="LADTALK_VGG16", hub_filename=VGG16_FILE)
    heads = find_weight("LPIPS v0.1 VGG heads", package=LPIPS_HEADS[0], package_relpath=LPIPS_HEADS[1])
    if trunk is None or heads is None:
        return None
    net = lpips_vgg()
    # torchvision's `features.{i}.*` is `net.slice{s}.{i}.*` here (the net's own keys say which slice s);
    # classifier.* is not part of the trunk
    own = {k.split(".", 2)[2]: k for k in net.state_dict() if k.startswith("net.")}
    sd = {own[k.removeprefix("features.")]: v for k, v in load_torch_weights(trunk).items()
          if k.startswith("features.") and k.removeprefix("features.") in own}
    sd.update(load_torch_weights(heads))
    sd.update({k: v for k, v in net.state_dict().items() if k.startswith("scaling_layer.")})
    net.load_state_dict(sd, strict=True)
    return net.to(device).eval().requires_grad_(False)


def load_stlpips_vgg(device: torch.device | str = "cpu") -> PerceptualDistance | None:
    """ST-LPIPS-VGG from the stlpips-pytorch wheel (trunk + heads in one file), else None."""
    path = find_weight("ST-LPIPS VGG", package=STLPIPS_FILE[0], package_relpath=STLPIPS_FILE[1])
    if path is None:
        return None
    net = stlpips_vgg()
    net.load_state_dict(load_torch_weights(path), strict=True)
    return net.to(device).eval().requires_grad_(False)


def build_perceptual(kind: str = "auto",
                     device: torch.device | str = "cpu") -> tuple[PerceptualDistance | None, str]:
    """(frozen eval-mode distance module or None, its honest name) for kind auto|lpips_vgg|stlpips_vgg|none."""
    if kind == "none":
        return None, "none"
    if kind in ("auto", "lpips_vgg"):
        net = load_lpips_vgg(device)
        if net is not None:
            return net, "lpips_vgg"
        if kind == "lpips_vgg":
            raise InputError(where_looked("LPIPS-VGG (vgg16-397923af.pth + lpips heads)", "LADTALK_VGG16",
                                          VGG16_FILE, *LPIPS_HEADS)
                             + ". Copy vgg16-397923af.pth into the hub cache or use perceptual=stlpips_vgg")
    if kind in ("auto", "stlpips_vgg"):
        net = load_stlpips_vgg(device)
        if net is not None:
            return net, "stlpips_vgg"
        raise InputError(where_looked("ST-LPIPS-VGG", package=STLPIPS_FILE[0], package_relpath=STLPIPS_FILE[1])
                         + ". Install it with `pip install --no-deps stlpips-pytorch==0.0.2`, "
                         "or set perceptual=none")
    raise InputError(f"unknown perceptual loss {kind!r}; choose auto, lpips_vgg, stlpips_vgg or none")
