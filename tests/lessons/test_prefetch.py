"""prefetch --lesson: models made available, step results computed into the result store by digest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from explorer.cli import main
from explorer.lessons import load_lesson
from explorer.lessons import prefetch as lp
from explorer.runs import Request
from explorer.runs.store import MemoryStore, storable

LESSON = """
title = "Tiny"
[[steps]]
title = "FGSM on a digit"
text = "t"
page = "attack_studio"
params = { model = "digits-cnn", image = "digits:4", attack = "fgsm", eps = "0.2" }
[[steps]]
title = "Broken"
text = "t"
page = "attack_studio"
params = { model = "digits-cnn", image = "digits:4", attack = "fgsm", eps = "7" }
[[steps]]
title = "Elsewhere"
text = "t"
page = "boundaries"
params = { tab = "2-D lab" }
"""


@storable
@dataclass(frozen=True)
class Probs:
    probs: np.ndarray


@dataclass(frozen=True)
class FgsmProbs(Request):
    kind: ClassVar[str] = "test-lesson-fgsm"
    model: str
    image: str
    eps: float

    def validate(self) -> None:
        if not 0 <= self.eps <= 1:
            raise ValueError(f"eps must be in [0, 1], got {self.eps}")

    def execute(self, executor) -> Probs:
        import torch

        from explorer.attacks import fgsm
        from explorer.images import load_sample, to_model_input
        from explorer.inference import predict_proba
        from explorer.models import get_spec, load_model

        model = load_model(self.model)
        img = load_sample(self.image)
        x = torch.from_numpy(to_model_input(img, get_spec(self.model).input_shape))[None]
        adv = fgsm(model, x, torch.tensor([img.label]), self.eps)
        adv = getattr(adv, "adversarial", adv)
        return Probs(predict_proba(model, adv.detach().numpy()))


def build(params: dict[str, str]) -> list[Request]:
    return [FgsmProbs(params["model"], params["image"], float(params["eps"]))]


@pytest.fixture
def builder():
    before = lp.request_builders()
    lp.register_request_builder("attack_studio", build)
    yield
    lp._BUILDERS.clear()
    lp._BUILDERS.update(before)


def test_prefetch_computes_each_step_once_into_the_store(tmp_path, builder):
    path = tmp_path / "tiny.toml"
    path.write_text(LESSON)
    lesson = load_lesson(path)
    store = MemoryStore()
    r = lp.prefetch_lesson(lesson, store=store)
    assert r.models == {"digits-cnn": "ready"}
    assert r.computed == 1 and r.cached == 0
    assert r.failed == ["step 2: eps must be in [0, 1], got 7.0"]
    assert r.no_builder == ["step 3 (boundaries)"]
    assert not r.ok
    got = store.get(build(lesson.steps[0].param_dict)[0].digest())
    assert got.probs.shape == (1, 10) and abs(float(got.probs.sum()) - 1) < 1e-5
    again = lp.prefetch_lesson(lesson, store=store)
    assert again.computed == 0 and again.cached == 1


def test_cli_prefetch_lesson_reports_unknown_lessons(capsys):
    assert main(["prefetch", "--lesson", "no-such-lesson"]) == 1
    err = capsys.readouterr().err
    assert "no lesson 'no-such-lesson'" in err and "panda-vulture" in err
