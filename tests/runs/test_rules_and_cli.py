"""``python -m explorer attack`` / ``sweep``: output, JSON records, one-line errors, the same numbers as the page."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer.runs import rules

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "explorer", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)


# ----------------------------------------------------------------------------------------- shared rules


@pytest.mark.parametrize("text, value", [("8/255", 8 / 255), ("0.03", 0.03), (" 3e-2 ", 0.03), ("1", 1.0)])
def test_parse_eps(text, value):
    assert rules.parse_eps(text) == pytest.approx(value, rel=0, abs=0)


@pytest.mark.parametrize("text", ["", "eight", "1/0", "nan", "inf", "8/"])
def test_parse_eps_rejects_with_one_line(text):
    with pytest.raises(ValueError) as err:
        rules.parse_eps(text)
    assert "\n" not in str(err.value)


def test_parse_target_by_index_name_and_prefix():
    from explorer.models import get_spec

    names = get_spec("resnet18").class_names
    assert rules.parse_target("vulture", names) == names.index("vulture")
    assert rules.parse_target("VULTURE", names) == names.index("vulture")
    assert rules.parse_target("23", names) == 23
    assert rules.parse_target(None, names) is None
    with pytest.raises(ValueError, match="out of range"):
        rules.parse_target("1000", names)
    with pytest.raises(ValueError, match="several classes"):
        rules.parse_target("gold", names)
    with pytest.raises(ValueError, match="not a class"):
        rules.parse_target("unicorn", names)


def test_grid_and_sweep_settings():
    grid = rules.eps_grid("fgsm", True, (3, 224, 224))
    assert len(grid) == 64 and grid[0] == 0.0 and grid[-1] == pytest.approx(16 / 255)
    assert rules.eps_grid("pgd-l2", False, (1, 8, 8))[-1] == 2.0  # an L2 radius may exceed 1
    with pytest.raises(ValueError, match="largest ε"):
        rules.eps_grid("fgsm", False, (1, 8, 8), eps_max=2.0)
    from explorer.attacks import AttackConfig

    assert rules.sweep_config("fgsm", 0.5) == AttackConfig("fgsm")  # the Home page's sweep: one cache entry
    c = rules.sweep_config("pgd", 0.5, alpha_frac=0.1)
    assert rules.point_config(c, 0.2).alpha == pytest.approx(0.02)


# ----------------------------------------------------------------------------------------- commands


def test_attack_json_record_and_png(tmp_path):
    out = tmp_path / "adv.png"
    r = cli("attack", "--model", "digits-cnn", "--image", "digits:0", "--attack", "pgd", "--eps", "0.2",
            "--steps", "10", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["model"] == "digits-cnn" and rec["image"]["id"] == "digits:0" and len(rec["image"]["digest"]) == 64
    assert rec["attack"] == "pgd" and rec["parameters"]["eps"] == 0.2 and rec["parameters"]["steps"] == 10
    assert rec["seed"] == 0 and rec["labels"]["true"] == {"class": 7, "name": "7", "source": "dataset label"}
    assert rec["success"] and rec["labels"]["adversarial_prediction"]["class"] != 7
    assert rec["perturbation"]["linf"] == pytest.approx(0.2, abs=1e-6)
    assert len(rec["probabilities"]["adversarial_top5"]) == 5
    assert set(rec["eight_bit"]) >= {"prediction", "survives"} and rec["noise_baseline"]["draws"] == 8
    assert rec["command"].startswith("python -m explorer attack --model digits-cnn --image digits:0 --attack pgd")
    from explorer.attacks.quantize import from_png_bytes

    png = from_png_bytes(out.read_bytes())
    assert png.shape == (1, 8, 8) and png.min() >= 0 and png.max() <= 1


def test_attack_table_with_a_target_name_and_fractional_eps():
    r = cli("attack", "--model", "digits-cnn", "--image", "digits:0", "--attack", "bim", "--eps", "96/255",
            "--target", "3")
    assert r.returncode == 0, r.stderr
    assert "ε = 0.3765" in r.stdout and "(target 3)" in r.stdout and "8-bit PNG" in r.stdout
    assert "random ±" in r.stdout and "adversarial  prob" in r.stdout


def test_sweep_table_prints_the_flip_eps_and_every_grid_row():
    r = cli("sweep", "--model", "digits-cnn", "--image", "digits:0", "--attack", "fgsm", "--n", "32")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1].startswith("flip ε: 0.0806") and "7 -> 8" in lines[1]
    assert lines[2].split()[:3] == ["eps", "eps", "(human)"]
    assert len(lines) == 4 + 32


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_cli_sweep_and_the_page_cached_sweep_agree(attack):
    """Same preprocessing, label, grid and settings: the CLI and the page's cached function give the same flip ε."""
    from explorer.caching.attacks import eps_sweep
    from explorer.digest import array_digest
    from explorer.images import load_sample, to_model_input
    from explorer.models import get_spec

    r = cli("sweep", "--model", "digits-mlp", "--image", "digits:5", "--attack", attack, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    spec = get_spec("digits-mlp")
    image = load_sample("digits:5")
    x = to_model_input(image, spec.input_shape, resize=spec.resize)
    grid = rules.eps_grid(attack, False, spec.input_shape)
    config = rules.sweep_config(attack, grid[-1])
    sw = eps_sweep("digits-mlp", array_digest(x), int(image.label), config, grid, None, x,
                   keep_images=attack != "fgsm")
    assert out["image"]["digest"] == array_digest(x) and out["label"]["class"] == image.label
    assert out["eps"] == list(grid)
    assert out["flip_eps"] == sw.flip_eps and out["flip_eps"] is not None
    np.testing.assert_allclose(out["true_prob"], sw.true_prob, rtol=0, atol=1e-6)


def test_a_file_without_a_dataset_label_is_attacked_against_the_clean_prediction(tmp_path):
    from PIL import Image

    from explorer.images import load_sample

    path = tmp_path / "three.png"
    Image.fromarray(load_sample("digits:3").pixels[..., 0]).save(path)
    r = cli("sweep", "--model", "digits-cnn", "--image", str(path), "--attack", "fgsm", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["label"]["source"] == "clean prediction"


@pytest.mark.parametrize("args, message", [
    (("attack", "--model", "digits-cnn", "--image", "digits:0", "--attack", "fgsm", "--eps", "2"), "between 0 and 1"),
    (("attack", "--model", "digits-cnn", "--image", "digits:0", "--attack", "fgsm", "--eps", "x/255"),
     "not a number"),
    (("attack", "--model", "digits-cnn", "--image", "digits:0", "--attack", "laser"), "invalid choice"),
    (("attack", "--model", "digits-cnn", "--image", "digits:0", "--attack", "pgd", "--steps", "30"), "cap of 20"),
    (("attack", "--model", "digits-cnn", "--image", "digits:0", "--attack", "pgd", "--target", "7"),
     "is the true class"),
    (("sweep", "--model", "digits-cnn", "--image", "digits:0", "--attack", "cw"), "invalid choice"),
    (("sweep", "--model", "resnet18", "--image", "photo:chelsea", "--attack", "fgsm"), "prefetch resnet18"),
    (("sweep", "--model", "nope", "--image", "digits:0", "--attack", "fgsm"), "unknown model"),
])
def test_errors_are_one_line_without_traceback(args, message, tmp_path):
    env = {**os.environ, "EXPLORER_MAX_STEPS": "20", "TORCH_HOME": str(tmp_path / "torch")}
    r = cli(*args, env=env)
    assert r.returncode != 0
    assert message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("attack", ["bim", "pgd", "mifgsm"])
@pytest.mark.parametrize("alpha_frac", [None, 0.3])
def test_point_config_reproduces_the_sweep_row(attack, alpha_frac):
    """The page shows a sweep row and the per-step trace of ``point_config`` at that ε: the same adversarial."""
    from explorer.attacks import run_attack, sweep
    from explorer.images import load_sample, to_model_input
    from explorer.models import get_spec, load_model

    spec = get_spec("digits-cnn")
    image = load_sample("digits:0")
    x = to_model_input(image, spec.input_shape)
    model = load_model("digits-cnn")
    grid = rules.eps_grid(attack, False, spec.input_shape)
    config = rules.sweep_config(attack, grid[-1], steps=5, alpha_frac=alpha_frac)
    sw = sweep(model, x[None], image.label, config, list(grid), images_at="grid")
    for i in (3, 17, 63):
        res = run_attack(model, x[None], image.label, rules.point_config(config, grid[i]))
        np.testing.assert_array_equal(res.adversarial[0].numpy(), sw.images[i])
        assert res.trace.steps == 5
