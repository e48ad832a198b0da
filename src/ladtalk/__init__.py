"""ladtalk: identity-specific talking-head generation (LaDTalk with a Space-Optimized VQ autoencoder).

The public API is imported lazily so that `import ladtalk` stays cheap:
`ladtalk.prepare`, `ladtalk.synthesize`, `ladtalk.train_sovqae`, `ladtalk.train_syncnet`, `ladtalk.train_wav2lip`,
`ladtalk.generate`, `ladtalk.enhance`, `ladtalk.evaluate`, `ladtalk.analyze`, `ladtalk.reenact`, `ladtalk.demo`.
"""

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


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'ladtalk' has no attribute {name!r}")


__all__ = list(_API)
