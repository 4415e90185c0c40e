"""The ensemble blog's reproduction in --quick mode on real MNIST (slow: trains 12 small CNNs, minutes on 2 cores)."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import needs_mnist


@pytest.mark.slow
@needs_mnist
def test_quick_reproduction_keeps_the_qualitative_order(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))  # quick mode trains in memory: nothing cached
    from explorer.cli import main

    out = tmp_path / "blog.json"
    assert main(["reproduce", "ensemble-blog", "--quick", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "baseline CNN" in printed and "(blog)" in printed and "adaptive" in printed
    res = json.loads(out.read_text())
    rows = {r["model"]: r for r in res["rows"]}
    base = rows["baseline CNN"]
    assert base["clean"] > 0.9 and base["own_fgsm"] < 0.5  # FGSM at ε = 0.3 breaks an undefended CNN
    assert rows["FGSM adversarial training"]["own_fgsm"] > base["own_fgsm"]
    ens = [r for r in res["rows"] if r["model"].startswith("ensemble")]
    assert len(ens) == 2 * 2 * 2  # uniform/bootstrap × mean/max × N = 3, 5
    for r in ens:
        assert r["clean"] > 0.8  # one-epoch members on 3,000 images reach about 0.9
        assert r["white_box"] <= r["transfer"]  # the white-box attack is no weaker than transfer
        assert r["adaptive"] <= r["white_box"]  # adaptive is the per-sample worst case
    for n in (3, 5):
        # bootstrap-max is at least uniform-max on transfer, within the sampling noise of 400 images (±0.05)
        assert rows[f"ensemble bootstrap max ×{n}"]["transfer"] >= rows[f"ensemble uniform max ×{n}"]["transfer"] - 0.05
    stored = tmp_path / "cache" / "results" / "reproductions" / "ensemble-blog-quick.json"
    assert json.loads(stored.read_text())["rows"] == res["rows"]  # where the Robustness lab page reads it
    assert not (tmp_path / "cache" / "weights").exists() or not any((tmp_path / "cache" / "weights").iterdir())


def test_reproduce_command_is_registered():
    from explorer.cli import build_parser, main

    main.__module__  # noqa: B018
    from explorer.cli import _load_command_modules

    _load_command_modules()
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["reproduce", "no-such-experiment"])
    assert parser.parse_args(["reproduce", "madry"]).experiment == "madry"
    assert "explorer.defences.cli" in sys.modules
