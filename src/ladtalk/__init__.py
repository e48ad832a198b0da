"""ladtalk: identity-specific talking-head generation (LaDTalk with a Space-Optimized VQ autoencoder).

The public API (`__all__`: prepare, train_person, generate, ...) is imported lazily, so `import ladtalk` stays cheap.

Vocabulary (the same word means the same thing everywhere):
- frames: uint8 (B,H,W,3) RGB, what videos, crops and metrics hold; images: float (B,3,H,W) in [0,1] (or [-1,1]
  inside the SOVQAE), what networks take (`ladtalk.pixels` converts).
- crop: an identity's square face crop (`crop_size`, usually 256); face: a crop as a network sees or returns it.
- latent: the encoder's output vector at one position of the code grid; code: one vector of the codebook
  (`n_embed` of them, `embed_dim` long); code index (`indices`, `codes` in validation keys such as
  `codes_unchanged`): which code a position chose.
- d_C, gamma, L_E, NRoUB: the paper's margin argument (docs/DESIGN.md), one function each in `metrics.nroub`;
  d_C is `min_code_distance` (`d_C_used` over the codes in use), L_E's layers are in `metrics.lipschitz`.
- identity: a prepared folder of one person (`ladtalk prepare`); train / holdout / test: its splits in time (the
  holdout is the end of the train split, never trained on).
- lip-sync base: the Wav2Lip generator (official weights or `ladtalk train wav2lip`); restorer: the SOVQAE.
"""

import importlib
import sys
import types

__version__ = "0.1.0"

_API = {
    "prepare": "ladtalk.data.prepare",
    "synthesize": "ladtalk.data.synthetic",
    "train_sovqae": "ladtalk.train.sovqae",
    "train_syncnet": "ladtalk.train.syncnet",
    "train_wav2lip": "ladtalk.train.wav2lip",
    "train_person": "ladtalk.train.person",
    "demo": "ladtalk.demo",
    "generate": "ladtalk.pipeline.generate",
    "enhance": "ladtalk.pipeline.enhance",
    "evaluate": "ladtalk.evaluate",
    "analyze": "ladtalk.analyze",
    "reenact": "ladtalk.reenact",
}


class _Package(types.ModuleType):
    """Keeps `ladtalk.demo`, `ladtalk.reenact`, ... the functions: importing the submodule of the same name
    (`from ladtalk.reenact import ...` anywhere) would otherwise replace the attribute by the module."""

    def __setattr__(self, name: str, value) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return  # the module stays in sys.modules; the attribute resolves to the function below
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'ladtalk' has no attribute {name!r}")


__all__ = list(_API)
