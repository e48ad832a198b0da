"""ladtalk: identity-specific talking-head generation (LaDTalk with a Space-Optimized VQ autoencoder).

The public API is imported lazily so that `import ladtalk` stays cheap:
`ladtalk.prepare`, `ladtalk.synthesize`, `ladtalk.train_sovqae`, `ladtalk.train_syncnet`, `ladtalk.train_wav2lip`,
`ladtalk.generate`, `ladtalk.enhance`, `ladtalk.evaluate`, `ladtalk.analyze`, `ladtalk.reenact`, `ladtalk.demo`.
"""

import sys
import types

__version__ = "0.1.0"

_API = {
    "prepare": "ladtalk.data.prepare",
    "synthesize": "ladtalk.data.synthetic",
    "train_sovqae": "ladtalk.train.sovqae",
    "train_syncnet": "ladtalk.train.syncnet",
    "train_wav2lip": "ladtalk.train.wav2lip",
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
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'ladtalk' has no attribute {name!r}")


__all__ = list(_API)
