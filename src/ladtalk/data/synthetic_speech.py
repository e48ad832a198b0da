"""Seeded speech-like audio with a known voiced-loudness envelope (the ground truth of the synthetic mouth).

Source-filter synthesis: a Rosenberg glottal pulse train (with intonation and jitter) through a cascade of
formant resonators (vowel F1/F2/F3/F4, diphthongs glide), unvoiced consonants as band-passed noise bursts
(fricatives) or closure + burst (plosives), words separated by short gaps and phrases by pauses.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from ladtalk.errors import InputError
from ladtalk.io.audio import SAMPLE_RATE

# Adult male vowel formants in Hz (Peterson & Barney 1952 averages) and how far each opens the jaw.
VOWELS: dict[str, tuple[float, float, float]] = {
    "i": (270, 2290, 3010), "I": (390, 1990, 2550), "E": (530, 1840, 2480), "ae": (660, 1720, 2410),
    "a": (730, 1090, 2440), "O": (570, 840, 2410), "U": (440, 1020, 2240), "u": (300, 870, 2240),
    "V": (640, 1190, 2390),
}
DIPHTHONGS = (("a", "I"), ("E", "I"), ("O", "U"), ("O", "I"), ("a", "U"))
# Fricative bands in Hz (low, high) and relative level; plosive bursts are broadband.
FRICATIVES = {"s": (4000, 7500, 0.10), "sh": (2000, 5000, 0.10), "f": (1200, 7000, 0.05), "h": (500, 3500, 0.04)}
PLOSIVES = {"t": (3000, 7000), "k": (1500, 4000), "p": (300, 2500)}
FORMANT_BANDWIDTHS = (70.0, 100.0, 130.0, 200.0)
F4_HZ = 3400.0
VOICED_GAIN = 0.15  # RMS of the loudest vowel: peaks stay below full scale
BLOCK_SECONDS = 0.004  # formants change every 4 ms: smooth glides at a low cost


def jaw_opening(vowel: str) -> float:
    """How far a vowel opens the mouth, in [0.35, 1], from its first formant (F1 rises with jaw opening)."""
    f1 = VOWELS[vowel][0]
    return 0.35 + 0.65 * (f1 - 270.0) / (730.0 - 270.0)


def _glottal_source(f0: np.ndarray, sample_rate: int, open_quotient: float = 0.6) -> np.ndarray:
    """Rosenberg glottal flow differentiated (lip radiation), following a per-sample f0 track."""
    phase = np.cumsum(f0 / sample_rate)
    t = phase - np.floor(phase)
    tp, tn = 0.66 * open_quotient, 0.34 * open_quotient
    flow = np.where(t < tp, 0.5 * (1.0 - np.cos(np.pi * t / tp)),
                    np.where(t < tp + tn, np.cos(0.5 * np.pi * (t - tp) / tn), 0.0))
    return np.diff(flow, prepend=flow[0]) * sample_rate / 200.0


def _formant_filter(x: np.ndarray, tracks: np.ndarray, sample_rate: int) -> np.ndarray:
    """Filter `x` through a cascade of Klatt resonators (second order, unity gain at DC) whose frequencies follow
    `tracks` (n, 3), blockwise."""
    block = max(1, int(BLOCK_SECONDS * sample_rate))
    freqs_all = np.concatenate([tracks, np.full((len(x), 1), F4_HZ)], axis=1)
    y = x.astype(np.float64)
    for k in range(freqs_all.shape[1]):
        zi = np.zeros(2)
        out = np.empty_like(y)
        r = np.exp(-np.pi * FORMANT_BANDWIDTHS[k] / sample_rate)
        for s in range(0, len(y), block):
            a1, a2 = -2.0 * r * np.cos(2.0 * np.pi * float(freqs_all[s, k]) / sample_rate), r * r
            out[s:s + block], zi = signal.lfilter([1.0 + a1 + a2], [1.0, a1, a2], y[s:s + block], zi=zi)
        y = out
    return y


def _ramp_envelope(n: int, sample_rate: int, attack_s: float, release_s: float) -> np.ndarray:
    """Raised-cosine attack and release around a flat top, length n."""
    env = np.ones(n)
    na, nr = min(n // 2, int(attack_s * sample_rate)), min(n // 2, int(release_s * sample_rate))
    env[:na] = 0.5 - 0.5 * np.cos(np.pi * np.arange(na) / na)  # na or nr of 0: empty slices
    env[n - nr:] = 0.5 + 0.5 * np.cos(np.pi * np.arange(1, nr + 1) / nr)
    return env


def _vowel(rng: np.random.Generator, n: int, sample_rate: int, f0_hz: float) -> tuple[np.ndarray, str]:
    """One voiced nucleus of n samples, RMS-normalised to 1 (its loudness is set by the caller's envelope)."""
    if rng.random() < 0.25:
        v0, v1 = DIPHTHONGS[rng.integers(len(DIPHTHONGS))]
    else:
        v0 = v1 = list(VOWELS)[rng.integers(len(VOWELS))]
    glide = np.clip((np.arange(n) / max(n - 1, 1) - 0.3) / 0.5, 0.0, 1.0)[:, None]
    tracks = (1 - glide) * np.array(VOWELS[v0]) + glide * np.array(VOWELS[v1])
    # Intonation: a falling contour per syllable plus slow vibrato-like drift and cycle-to-cycle jitter.
    tt = np.arange(n) / sample_rate
    f0 = f0_hz * (1.06 - 0.12 * tt / max(tt[-1], 1e-3)) * (1 + 0.01 * np.sin(2 * np.pi * 5.0 * tt))
    f0 *= 1 + 0.008 * rng.standard_normal(n).cumsum() / np.sqrt(np.arange(1, n + 1))
    src = _glottal_source(f0, sample_rate)
    src += 0.02 * rng.standard_normal(n) * (src > 0)  # aspiration noise during the open phase
    y = _formant_filter(src, tracks, sample_rate)
    width = int(0.02 * sample_rate)
    y /= np.sqrt(np.convolve(y * y, np.ones(width) / width, mode="same") + 1e-12)  # a moving RMS over 20 ms
    return y, v0


def _consonant(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """An unvoiced consonant: a fricative (band-passed noise) or a plosive (silent closure, then a burst)."""
    nyq = sample_rate / 2.0
    if rng.random() < 0.55:
        lo, hi, level = FRICATIVES[list(FRICATIVES)[rng.integers(len(FRICATIVES))]]
        n = int(rng.uniform(0.06, 0.13) * sample_rate)
        env = _ramp_envelope(n, sample_rate, 0.02, 0.02)
    else:
        lo, hi = PLOSIVES[list(PLOSIVES)[rng.integers(len(PLOSIVES))]]
        level = 0.25
        closure, burst = int(rng.uniform(0.03, 0.06) * sample_rate), int(rng.uniform(0.015, 0.03) * sample_rate)
        n = closure + burst
        env = np.zeros(n)
        env[closure:] = np.exp(-np.arange(burst) / (0.006 * sample_rate))
    hi = min(hi, 0.95 * nyq)
    lo = min(lo, 0.5 * hi)
    sos = signal.butter(4, [lo / nyq, hi / nyq], btype="band", output="sos")
    noise = signal.sosfilt(sos, rng.standard_normal(n))
    noise /= np.sqrt(np.mean(noise ** 2)) + 1e-12
    return level * env * noise


def synth_speech(seconds: float, sample_rate: int = SAMPLE_RATE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Speech-like audio and its voiced-loudness envelope: (float32 (N,) in [-1,1], float32 (N,) in [0,1])."""
    if not seconds > 0 or not np.isfinite(seconds):
        raise InputError(f"synthetic speech needs a positive duration, got seconds={seconds}")
    if sample_rate < 8000:
        raise InputError(f"sample_rate {sample_rate} Hz is too low for the formants; use at least 8000 (16000)")
    rng = np.random.default_rng([seed, 0x5EEC])
    n_total = int(round(seconds * sample_rate))
    audio = np.zeros(n_total + sample_rate, np.float64)  # slack for the last syllable, trimmed below
    envelope = np.zeros_like(audio)
    f0_speaker = rng.uniform(100.0, 135.0)
    pos = int(rng.uniform(0.15, 0.35) * sample_rate)
    words_left = int(rng.integers(3, 7))
    while pos < n_total:
        stress = rng.uniform(0.7, 1.0)
        for _ in range(int(rng.integers(1, 4))):  # syllables of one word
            if rng.random() < 0.7:
                c = _consonant(rng, sample_rate)
                audio[pos:pos + len(c)] += VOICED_GAIN * c[:len(audio) - pos]
                pos += len(c)
            n = int(rng.uniform(0.11, 0.26) * sample_rate)
            if pos + n >= len(audio):
                break
            voiced, vowel = _vowel(rng, n, sample_rate, f0_speaker * rng.uniform(0.92, 1.12))
            hump = 0.7 + 0.3 * np.sin(np.pi * np.arange(n) / n)  # syllables peak, they are not flat
            env = stress * jaw_opening(vowel) * hump * _ramp_envelope(n, sample_rate, 0.035, 0.06)
            audio[pos:pos + n] += VOICED_GAIN * env * voiced
            envelope[pos:pos + n] = np.maximum(envelope[pos:pos + n], env)
            pos += n
            stress *= rng.uniform(0.7, 0.95)
        if pos < len(audio) - sample_rate // 4 and rng.random() < 0.2:
            c = _consonant(rng, sample_rate)  # a word-final consonant
            audio[pos:pos + len(c)] += VOICED_GAIN * c
            pos += len(c)
        words_left -= 1
        if words_left == 0:  # end of a phrase: a real pause, the mouth closes
            pos += int(rng.uniform(0.35, 0.8) * sample_rate)
            words_left = int(rng.integers(3, 7))
        else:
            pos += int(rng.uniform(0.04, 0.14) * sample_rate)
    audio += 3e-4 * rng.standard_normal(len(audio))  # a quiet room, not digital silence
    return (np.clip(audio[:n_total], -1.0, 1.0).astype(np.float32),
            np.clip(envelope[:n_total], 0.0, 1.0).astype(np.float32))


def mouth_openness(envelope: np.ndarray, sample_rate: int, fps: float, n_frames: int) -> np.ndarray:
    """Per-frame mouth openness float32 (T,) in [0,1]: the mean voiced envelope over [k/fps, (k+1)/fps), the
    interval frame k is shown, so the lag between loudness and mouth opening is zero by construction."""
    edges = np.round(np.arange(n_frames + 1) * sample_rate / fps).astype(np.int64)
    edges = np.clip(edges, 0, len(envelope))
    csum = np.concatenate([[0.0], np.cumsum(envelope, dtype=np.float64)])
    counts = np.maximum(edges[1:] - edges[:-1], 1)
    return np.clip((csum[edges[1:]] - csum[edges[:-1]]) / counts, 0.0, 1.0).astype(np.float32)
