"""torchvision models offline: 'needs download' until a checkpoint exists, then the real loading path."""

import hashlib
import urllib.error

import pytest
import torch

from explorer.inference import ModelCache
from explorer.models import ModelUnavailable, Status, availability, get_spec
from explorer.models import imagenet
from explorer.models.registry import _entry


def test_needs_download_offline_with_the_fix_command(tmp_torch_home):
    for mid in ("resnet18", "vit_b_16"):
        av = availability(mid)
        assert av.status == Status.NEEDS_DOWNLOAD and av.fix == f"python -m explorer prefetch {mid}"
    with pytest.raises(ModelUnavailable, match="prefetch resnet18"):
        ModelCache(2).get("resnet18")


def test_checkpoint_goes_where_torchvision_puts_it(tmp_torch_home):
    path = imagenet.checkpoint_path(_entry("resnet18"))
    assert path == tmp_torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"


def test_fabricated_checkpoint_loads_through_the_real_path(tmp_torch_home):
    path = imagenet.save_random_checkpoint("resnet18")
    assert path == imagenet.checkpoint_path(_entry("resnet18"))
    assert availability("resnet18").status == Status.AVAILABLE
    model = ModelCache(2).get("resnet18")
    assert model.input_shape == (3, 224, 224) and model.class_names == get_spec("resnet18").class_names
    with torch.inference_mode():
        out = model(torch.rand(2, 3, 224, 224))
    assert out.shape == (2, 1000)
    assert not model.training and all(p.grad is None and not p.requires_grad for p in model.parameters())


def test_corrupt_checkpoint_is_a_clear_error(tmp_torch_home):
    path = imagenet.checkpoint_path(_entry("resnet18"))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailable, match="cannot be loaded"):
        ModelCache(2).get("resnet18")


def test_offline_download_fails_cleanly(tmp_torch_home, monkeypatch):
    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(imagenet.urllib.request, "urlopen", offline)
    with pytest.raises(ModelUnavailable, match="not available offline"):
        ModelCache(2).get("resnet18", allow_download=True)
    assert not list((tmp_torch_home / "hub" / "checkpoints").glob("*"))  # no partial file left


def test_download_reports_progress_and_checks_the_hash(tmp_path):
    payload = b"x" * (3 << 20)
    good = hashlib.sha256(payload).hexdigest()[:8]
    src = tmp_path / f"model-{good}.pth"
    src.write_bytes(payload)
    seen = []
    dst = imagenet.download(src.as_uri(), tmp_path / "out" / src.name, lambda f, t: seen.append(f))
    assert dst.read_bytes() == payload and seen[-1] == 1.0 and len(seen) >= 3
    bad = tmp_path / "model-deadbeef.pth"
    bad.write_bytes(payload)
    with pytest.raises(RuntimeError, match="checksum mismatch"):
        imagenet.download(bad.as_uri(), tmp_path / "out" / bad.name)
    assert not (tmp_path / "out" / bad.name).exists()


def test_light_metadata_matches_torchvision():
    """File names and class names are kept without importing torchvision; they must equal torchvision's."""
    import os

    from torchvision.models import get_weight

    for entry in imagenet.ENTRIES:
        weights = get_weight(entry.weights)
        assert entry.filename == os.path.basename(weights.url)
        assert imagenet.imagenet_categories() == tuple(weights.meta["categories"])
