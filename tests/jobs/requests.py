"""Requests for the job tests: real torch work (an FGSM ε sweep on the digits CNN) and a gated spinner with
cancellation points, both following the run layer's contract (frozen dataclass, validate, digest, execute)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from explorer.jobs import check_cancelled, report_progress
from explorer.runs import Request
from explorer.runs.store import storable

EXECUTIONS: Counter = Counter()  # digest -> how many times it was executed
_COUNT_LOCK = threading.Lock()
GATES: dict[str, threading.Event] = {}
STARTED: dict[str, threading.Event] = {}


def _count(digest: str) -> None:
    with _COUNT_LOCK:
        EXECUTIONS[digest] += 1


@storable
@dataclass(frozen=True)
class SweepOut:
    eps: np.ndarray
    pred: np.ndarray
    flip_eps: float | None


@dataclass(frozen=True)
class DigitsSweep(Request):
    """An FGSM sweep over 64 ε on one digits sample (real torch work through explorer.attacks.sweep)."""

    kind: ClassVar[str] = "test-digits-sweep"
    sample: int = 0
    eps_max: float = 0.5

    def validate(self) -> None:
        if not 0 <= self.sample < 1797:
            raise ValueError(f"sample must be 0..1796, got {self.sample}")

    def execute(self, executor) -> SweepOut:
        import torch

        from explorer.attacks import AttackConfig, sweep
        from explorer.images import load_sample, to_model_input
        from explorer.models import get_spec, load_model

        _count(self.digest())
        model = load_model("digits-cnn")
        img = load_sample(f"digits:{self.sample}")
        x = to_model_input(img, get_spec("digits-cnn").input_shape)
        report_progress(0.1, "gradient")
        r = sweep(model, torch.from_numpy(x), int(img.label), AttackConfig(attack="fgsm", eps=self.eps_max),
                  np.linspace(0, self.eps_max, 64))
        report_progress(1.0, "done")
        return SweepOut(r.eps, r.pred, r.flip_eps)


@storable
@dataclass(frozen=True)
class SpinOut:
    key: str
    loops: int


@dataclass(frozen=True)
class Spin(Request):
    """Loops (with a cancellation point and a progress report each 10 ms) until its gate opens."""

    kind: ClassVar[str] = "test-spin"
    key: str = "a"
    fail: bool = False
    limit_s: float = 20.0

    def validate(self) -> None:
        if not self.key:
            raise ValueError("key must not be empty")

    def execute(self, executor) -> SpinOut:
        _count(self.digest())
        STARTED.setdefault(self.key, threading.Event()).set()
        gate = GATES.setdefault(self.key, threading.Event())
        loops = 0
        t0 = time.monotonic()
        while not gate.wait(0.01):
            check_cancelled()
            loops += 1
            report_progress(min(0.99, loops / 100), f"loop {loops}")
            if time.monotonic() - t0 > self.limit_s:
                raise TimeoutError("spin limit reached")
        if self.fail:
            raise RuntimeError("the model exploded\nsecond line of detail")
        return SpinOut(self.key, loops)


@dataclass(frozen=True)
class Light(Request):
    kind: ClassVar[str] = "test-light"
    heavy: ClassVar[bool] = False
    value: int = 1

    def validate(self) -> None:
        pass

    def execute(self, executor) -> SpinOut:
        _count(self.digest())
        return SpinOut("light", self.value)


def open_gate(key: str) -> None:
    GATES.setdefault(key, threading.Event()).set()


def wait_started(key: str, timeout: float = 10.0) -> bool:
    return STARTED.setdefault(key, threading.Event()).wait(timeout)



def until(pred, timeout: float = 10.0, every: float = 0.01) -> bool:
    t = time.monotonic() + timeout
    while time.monotonic() < t:
        if pred():
            return True
        time.sleep(every)
    return pred()
