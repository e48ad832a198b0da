"""The lip-sync base that ships inside the package loads and computes what it computed when it was made."""

import json

import pytest
import torch

from ladtalk.lipsync_weights import load_syncnet_expert, load_wav2lip
from ladtalk.pretrained import builtin_base, names


def test_the_shipped_base_loads_and_reproduces_its_recorded_output():
    assert "synthetic-48" in names()
    base = builtin_base("synthetic-48")
    made = json.loads(base["recipe"].read_text())
    size = sum(f.stat().st_size for part in ("syncnet", "wav2lip") for f in base[part].iterdir())
    assert size <= 25 * 2**20  # it ships in the package
    assert made["data"]["never_includes"].startswith("the demo's person") and made["data"]["speakers"] >= 24
    gen, expert = load_wav2lip(base["wav2lip"]), load_syncnet_expert(base["syncnet"])
    assert gen.config.img_size == expert.config.img_size == 48
    g = torch.Generator().manual_seed(0)
    mel, faces = torch.rand(2, 1, 80, 16, generator=g) * 8 - 4, torch.rand(2, 6, 48, 48, generator=g)
    with torch.no_grad():
        out = gen(mel, faces)
    ref = made["reference_output"]
    torch.testing.assert_close(out.flatten()[:8], torch.tensor(ref["output_first"]), atol=1e-5, rtol=0)
    assert abs(float(out.mean()) - ref["output_mean"]) < 1e-5


def test_builtin_names_the_shipped_base_wherever_a_lip_sync_model_is_asked_for():
    from ladtalk.errors import InputError
    from ladtalk.pretrained import resolve

    base = builtin_base("synthetic-48")
    assert resolve("builtin", "wav2lip") == base["wav2lip"]
    assert resolve("builtin:synthetic-48", "syncnet") == base["syncnet"]
    assert resolve("models/builtin-ish", "wav2lip") == "models/builtin-ish"  # any other path is left alone
    assert load_wav2lip("builtin").config.img_size == 48
    assert load_syncnet_expert("builtin:synthetic-48").config.img_size == 48
    with pytest.raises(InputError, match="ships synthetic-48"):  # says what the package ships
        load_wav2lip("builtin:no-such-base")


def test_the_web_page_offers_the_shipped_base(tmp_path):
    from ladtalk.serve import catalog
    from ladtalk.serve.submit import Server

    offered = [b["name"] for b in catalog.list_builtin()]
    assert "builtin:synthetic-48" in offered
    server = Server.__new__(Server)  # Server.model reads nothing else for a built-in name
    assert server.model("builtin:synthetic-48", "lip-sync model", "wav2lip") == builtin_base()["wav2lip"]
    assert server.model("builtin:synthetic-48", "lip-sync expert", "syncnet") == builtin_base()["syncnet"]


def test_generators_are_fed_the_mel_windows_they_were_trained_on(tmp_path):
    from ladtalk.checkpoint import save_component
    from ladtalk.lipsync_weights import wav2lip_mel_offset
    from ladtalk.models.wav2lip import Wav2Lip, Wav2LipConfig

    assert wav2lip_mel_offset("builtin") == -1  # trained with the original's offset, before it was recorded
    cfg = Wav2LipConfig(width=0.125, img_size=48)
    save_component(tmp_path / "w", "wav2lip", cfg, Wav2Lip(cfg).state_dict(), extra={"mel_offset_frames": 0})
    assert wav2lip_mel_offset(tmp_path / "w") == 0
    torch.save({"state_dict": Wav2Lip(cfg).state_dict()}, tmp_path / "official.pth")
    assert wav2lip_mel_offset(tmp_path / "official.pth") == 0  # official files: the official inference


def test_behind_a_shipped_base_the_restorer_learns_its_faces_only():
    from ladtalk.pretrained import RESTORER_CPU_OVERRIDES, RESTORER_OVERRIDES, builtin_base, restorer_overrides
    assert restorer_overrides("builtin") == restorer_overrides(builtin_base()["wav2lip"]) == RESTORER_OVERRIDES
    assert restorer_overrides("builtin", "paper-256") == RESTORER_OVERRIDES  # a GPU preset keeps its own rate
    assert restorer_overrides("builtin", "restore-cpu") == (*RESTORER_OVERRIDES, *RESTORER_CPU_OVERRIDES)
    assert restorer_overrides("wav2lip_gan.pth", "restore-cpu") == ()
    assert restorer_overrides("wav2lip_gan.pth") == restorer_overrides(None) == ()
