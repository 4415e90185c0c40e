"""The command line: tables, JSON, and one-line errors with a non-zero exit (no traceback)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "explorer", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)


def test_models_lists_every_model_with_honest_offline_availability(tmp_path):
    import os

    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"), "EXPLORER_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("EXPLORER_MNIST_DIR", None)
    r = cli("models", "--json", env=env)
    assert r.returncode == 0, r.stderr
    rows = {row["id"]: row for row in json.loads(r.stdout)}
    assert rows["digits-cnn"]["availability"] == "available" and rows["digits-cnn"]["accuracy"] >= 0.97
    assert rows["resnet18"]["availability"] == "needs download"
    assert rows["resnet18"]["fix"] == "python -m explorer prefetch resnet18"
    assert rows["mnist-cnn"]["availability"] == "unavailable"
    table = cli("models", env=env).stdout
    assert "digits-cnn" in table and "vit_b_16" in table and "100.0%" in table


def test_predict_on_a_file_and_a_sample(tmp_path):
    from explorer.images import load_sample

    img = load_sample("digits:0")
    path = tmp_path / "seven.png"
    Image.fromarray(img.pixels[..., 0]).save(path)
    r = cli("predict", "--model", "digits-cnn", "--image", str(path), "--top", "3", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["top"]) == 3 and out["top"][0]["name"] == "7"
    r = cli("predict", "--model", "digits-cnn", "--image", "digits:0")
    assert r.returncode == 0 and r.stdout.splitlines()[2].startswith("7")


@pytest.mark.parametrize("args, message", [
    (("predict", "--model", "nope", "--image", "digits:0"), "unknown model 'nope'"),
    (("predict", "--model", "digits-cnn", "--image", "missing.png"), "no such file"),
    (("predict", "--model", "digits-cnn", "--image", "digits:99999"), "digits:99999"),
    (("train", "resnet18"), "not a built-in model"),
])
def test_errors_are_one_line_without_traceback(args, message):
    r = cli(*args)
    assert r.returncode != 0
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_bad_image_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    r = cli("predict", "--model", "digits-cnn", "--image", str(bad))
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_prefetch_offline_says_what_to_run(tmp_path):
    import os

    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch")}
    r = cli("prefetch", "resnet18", env=env)
    # this machine is offline: a clear message, non-zero exit; online it downloads into TORCH_HOME
    if r.returncode == 0:
        assert (tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth").is_file()
    else:
        assert "not available offline" in r.stderr and "Traceback" not in r.stderr


def test_help_does_not_import_torch_from_any_folder(tmp_path):
    """``python -m explorer --help`` answers without importing torch (the attack/sweep parsers, which read the
    attack registry, are built only when those commands run), from a folder outside the repository."""
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "explorer", "--help"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0 and "attack" in out.stdout and "sweep" in out.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert "explorer.cli" in imported  # the measurement saw our modules
    assert "torch" not in imported and "numpy" not in imported and "streamlit" not in imported


@pytest.mark.parametrize("command", ["attack", "sweep"])
def test_heavy_commands_help_lists_every_registered_attack_and_its_flags(command):
    out = cli(command, "--help")
    assert out.returncode == 0, out.stderr
    assert "apgd" in out.stdout and "--restarts" in out.stdout and "--seed" in out.stdout
    assert ("--overshoot" in out.stdout) == (command == "attack")  # DeepFool's "2%" help no longer crashes argparse
