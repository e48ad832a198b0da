"""LSE-C / LSE-D: MFCC front end, offset search, and the whole pipeline with the oracle-filled SyncNet S."""

import json

import numpy as np
import pytest
import torch
from oracle import inp, oracle_fill

from ladtalk.errors import InputError
from ladtalk.metrics.sync import (
    SYNCNET_FILENAME,
    int16_scale,
    load_syncnet_s,
    lse_scores,
    mfcc_100hz,
    scores_from_features,
    shifted_distances,
    sync_features,
)
from ladtalk.models.syncnet import SyncNetS


@pytest.fixture(scope="module")
def oracle_syncnet():
    from conftest import shared_file
    layout = json.loads(shared_file("fixtures/official_checkpoint_layouts.json").read_text())["syncnet_python_S"]
    oracle = np.load(shared_file("fixtures/official_models_oracle.npz"))
    net = SyncNetS().eval()
    with torch.no_grad():
        assert sorted(net.state_dict()) == sorted(layout["state_dict"])
        oracle_fill(net)
        aud = net.forward_aud(inp((2, 1, 13, 20), 5)).numpy()
    ref = oracle["syncnet_python_S_aud"]
    assert np.abs(aud - ref).max() < 1e-4 * max(1.0, np.abs(ref).max())
    return net


def test_mfcc_shape_and_rate():
    sr = 16000
    x = int16_scale(0.3 * np.sin(2 * np.pi * 220 * np.arange(sr) / sr))
    m = mfcc_100hz(x, sr)
    assert m.shape == (13, 99) and np.isfinite(m).all()   # 1 + ceil((16000 - 400) / 160)
    assert np.all(mfcc_100hz(np.zeros(800)) [0] < -30)    # silence: log(eps) energy, no NaN


def test_mfcc_matches_python_speech_features(fixtures_dir):
    psf = pytest.importorskip("python_speech_features", reason="python_speech_features not installed")
    from scipy.io import wavfile
    sr, audio = wavfile.read(fixtures_dir / "speech_de_16k_mono.wav")
    ref = np.stack([np.array(c) for c in zip(*psf.mfcc(audio, sr))])
    np.testing.assert_allclose(mfcc_100hz(audio, sr), ref, rtol=1e-9, atol=1e-9)


def test_offset_search_finds_a_known_shift():
    rng = np.random.default_rng(0)
    audio = torch.from_numpy(rng.normal(size=(40, 16))).float()
    for k in (-4, 0, 3):
        video = torch.roll(audio, -k, 0)           # video feature i == audio feature i + k
        s = scores_from_features(video[5:35], audio[5:35])
        assert s.offset == -k                      # syncnet_python's sign: 15 - argmin
        assert s.lse_d == pytest.approx(float(s.mean_dists.min()))
        assert s.lse_c == pytest.approx(float(np.median(s.mean_dists) - s.mean_dists.min()))
        assert s.lse_c > 0 and s.mean_dists.shape == (31,)
    d = shifted_distances(audio[:3], audio[:3], vshift=2)
    assert d.shape == (3, 5) and float(d[0, 2]) < 1e-4 and float(d[0, 0]) == pytest.approx(float(audio[0].norm()),
                                                                                          rel=1e-4)


def test_video_input_is_bgr_224():
    seen = []

    class Net:  # records what SyncNet S is given
        def forward_lip(self, x):
            seen.append(x)
            return torch.zeros(len(x), 1024)

        def forward_aud(self, x):
            return torch.zeros(len(x), 1024)

    f = np.zeros((6, 48, 48, 3), np.uint8)
    f[..., 0] = 200  # red
    sync_features(Net(), f, np.zeros(6 * 640))  # one window of 5 frames
    x = seen[0]
    assert x.shape == (1, 3, 5, 224, 224)
    assert float(x[0, 2].mean()) == pytest.approx(200) and float(x[0, 0].abs().max()) == 0


def test_lse_pipeline_with_oracle_syncnet(oracle_syncnet):
    rng = np.random.default_rng(1)
    t = 8                                           # 3 windows of 5 frames
    frames = rng.integers(0, 256, (t, 40, 40, 3), dtype=np.uint8)
    audio = (0.2 * rng.normal(size=t * 640)).astype(np.float32)
    s1 = lse_scores(oracle_syncnet, frames, audio, batch_size=2)
    s2 = lse_scores(oracle_syncnet, frames, audio, batch_size=20)
    assert len(sync_features(oracle_syncnet, frames, int16_scale(audio))[0]) == t - 5  # windows 0 .. L-6
    assert s1.mean_dists.shape == (31,)
    np.testing.assert_allclose(s1.mean_dists, s2.mean_dists, rtol=1e-5)   # batching does not matter
    assert -15 <= s1.offset <= 15 and s1.lse_c >= 0 and np.isfinite(s1.lse_d)
    with pytest.raises(InputError, match="more than 5 frames"):
        lse_scores(oracle_syncnet, frames[:5], audio)


def _holds(s):
    """Each of LSE-D and LSE-C lies in its own 95% interval, of non-zero width."""
    return all(s.ci95[k][0] <= getattr(s, k) <= s.ci95[k][1] and s.ci95[k][1] > s.ci95[k][0]
               for k in ("lse_d", "lse_c"))


def test_lse_intervals_hold_the_scores_and_narrow_with_more_frames():
    """Video features that follow the audio two frames late, with noise: the block-bootstrap intervals of LSE-D and
    LSE-C (circular blocks of 15 windows, metrics.confidence) hold the scores, and ten times the frames narrow both."""
    rng = np.random.default_rng(0)
    audio = np.stack([np.convolve(c, np.ones(5) / 5, mode="same") for c in rng.normal(size=(32, 300))], 1)
    video = np.roll(audio, -2, 0) + 0.3 * rng.normal(size=audio.shape)
    short, full = (scores_from_features(torch.from_numpy(video[:n]).float(), torch.from_numpy(audio[:n]).float())
                   for n in (30, 300))
    assert short.offset == full.offset == -2 and _holds(short) and _holds(full)
    for k in ("lse_d", "lse_c"):
        assert full.ci95[k][1] - full.ci95[k][0] < 0.6 * (short.ci95[k][1] - short.ci95[k][0]), k


def test_lse_intervals_with_the_fixture_syncnet(oracle_syncnet):
    """The whole path with the oracle-filled SyncNet S: the intervals hold the scores at 16 and 48 frames and repeat
    exactly (a fixed seed). Its LSE-C is not a trained network's: the audio's zero padding decides it."""
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (48, 40, 40, 3), dtype=np.uint8)
    audio = (0.2 * rng.normal(size=48 * 640)).astype(np.float32)
    vf, af = sync_features(oracle_syncnet, frames, int16_scale(audio))
    short, full = scores_from_features(vf[:11], af[:11]), scores_from_features(vf, af)  # 16 and 48 frames
    assert _holds(short) and _holds(full)
    assert scores_from_features(vf, af).ci95 == full.ci95


def test_missing_syncnet_is_explained(monkeypatch, tmp_path):
    monkeypatch.delenv("LADTALK_SYNCNET", raising=False)
    with pytest.raises(InputError, match=SYNCNET_FILENAME):
        load_syncnet_s(None)
    net = SyncNetS()
    torch.save(net.state_dict(), tmp_path / "s.model")
    assert not load_syncnet_s(tmp_path / "s.model").training
