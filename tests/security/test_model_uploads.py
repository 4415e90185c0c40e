"""Hostile model uploads: each payload is refused before it runs, no marker file appears, and the limits hold.

Every refusal test would fail with its guard removed: the payloads are real (run outside the guard, they write
the marker, leak the file, or take the time/memory), and each test checks the message and the marker.
"""

from __future__ import annotations

import io
import os
import time
import warnings
from typing import Tuple

import pytest
import torch

from explorer.models import load_model
from explorer.models.user import UserModelError, UserModelRequest, register_user_model

warnings.filterwarnings("ignore")
SHAPE = (3, 16, 16)


def _scripted(module: torch.nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(module), buf)
    return buf.getvalue()


def _upload(blob: bytes, **kw) -> object:
    return register_user_model(UserModelRequest(blob, "evil.pt", input_shape=SHAPE, **kw))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "marker"
    yield str(path)
    assert not path.exists(), "the payload ran: the marker file appeared"


class WriteInForward(torch.nn.Module):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.from_file(self.path, shared=True, size=16, dtype=torch.uint8)  # creates and writes the file
        t.fill_(65)
        return x.flatten(1)[:, :3] + t[:3].float() * 0


class WriteInSetstate(torch.nn.Module):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.flag = torch.zeros(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :3]

    @torch.jit.export
    def __getstate__(self) -> Tuple[str, bool]:
        return (self.path, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[str, bool]) -> None:  # runs inside torch.jit.load
        self.path = state[0]
        self.training = state[1]
        t = torch.from_file(self.path, shared=True, size=4, dtype=torch.uint8)
        t.fill_(66)
        self.flag = t.float().sum()


class ReadIntoLogits(torch.nn.Module):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        leak = torch.from_file(self.path, shared=False, size=3, dtype=torch.uint8).float()
        return x.flatten(1)[:, :3] * 0 + leak


class LoopsForLong(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.flatten(1)[:, :3]
        for _ in range(200_000_000):  # a constant bound: passes inspection, only the time limit stops it
            y = y + 0.0
        return y


class AllocatesHuge(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        big = torch.empty(268_435_456)  # 1 GiB of address space (untouched: cheap when nothing limits it)
        return x.flatten(1)[:, :3] + big[:3] * 0


class ScriptedCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))
        x = torch.nn.functional.max_pool2d(x, 2)
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


def test_payloads_are_real(tmp_path):
    """Control: outside the guard the payloads do what the tests below say they cannot do."""
    target = tmp_path / "written"
    module = torch.jit.load(io.BytesIO(_scripted(WriteInSetstate(str(target)))))  # __setstate__ runs here
    assert target.read_bytes() == b"BBBB"
    target.unlink()
    module = torch.jit.load(io.BytesIO(_scripted(WriteInForward(str(target)))))
    module(torch.rand(1, *SHAPE))
    assert target.exists()
    secret = tmp_path / "secret"
    secret.write_bytes(b"\x07\x08\x09")
    leak = torch.jit.load(io.BytesIO(_scripted(ReadIntoLogits(str(secret)))))(torch.rand(1, *SHAPE))
    assert leak[0].tolist() == [7.0, 8.0, 9.0]


def test_file_write_in_forward_is_refused_before_it_runs(marker):
    with pytest.raises(UserModelError, match="aten::from_file") as exc:
        _upload(_scripted(WriteInForward(marker)))
    assert "\n" not in str(exc.value)


def test_file_write_in_setstate_is_refused_before_load(marker):
    with pytest.raises(UserModelError, match="__setstate__"):
        _upload(_scripted(WriteInSetstate(marker)))


def test_file_read_into_logits_is_refused(tmp_path, marker):
    secret = tmp_path / "secret"
    secret.write_bytes(b"\x07\x08\x09")
    with pytest.raises(UserModelError, match="aten::from_file"):
        _upload(_scripted(ReadIntoLogits(str(secret))))
    with pytest.raises(UserModelError, match="aten::from_file"):
        _upload(_scripted(ReadIntoLogits("/etc/passwd")))


@pytest.mark.parametrize("source, op", [
    ("    print(x)\n", "print"),
    ("    _0 = torch.save(x, 'f')\n", "aten::save"),
    ("    _0 = ops.myns.run(x)\n", "ops.myns.run"),
    ("    _0 = __torch__.torch.classes.ns.Cls()\n", "torch.classes"),
    ("    _0 = open('f')\n", "open"),
])
def test_hand_written_archive_code_is_refused_naming_the_call(source, op):
    """The serialized code can be edited by hand: names outside the allowlist are refused wherever they appear."""
    import zipfile

    blob = _scripted(torch.nn.Flatten())
    src, out = zipfile.ZipFile(io.BytesIO(blob)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("code/__torch__/torch/nn/modules/flatten.py"):
                text = data.decode()
                i = text.index("    input: Tensor) -> Tensor:\n") + len("    input: Tensor) -> Tensor:\n")
                data = (text[:i] + source.replace("    ", "    ", 1) + text[i:]).encode()
            dst.writestr(info, data)
    with pytest.raises(UserModelError, match="refused") as exc:
        _upload(out.getvalue())
    assert op in str(exc.value)


def test_an_endless_loop_is_stopped_by_the_time_limit(monkeypatch):
    monkeypatch.setenv("EXPLORER_VALIDATE_SECONDS", "2")
    start = time.perf_counter()
    with pytest.raises(UserModelError, match="EXPLORER_VALIDATE_SECONDS"):
        _upload(_scripted(LoopsForLong()))
    assert time.perf_counter() - start < 120  # startup of the child + 2 s, never the loop's minutes


def test_a_huge_allocation_is_stopped_by_the_memory_limit(monkeypatch):
    monkeypatch.setenv("EXPLORER_VALIDATE_MEMORY_MB", "400")
    with pytest.raises(UserModelError, match="EXPLORER_VALIDATE_MEMORY_MB"):
        _upload(_scripted(AllocatesHuge()))


def test_a_legitimate_scripted_cnn_is_accepted_and_runs():
    spec = _upload(_scripted(ScriptedCNN()), class_names=("a", "b", "c", "d"))
    model = load_model(spec.id)
    assert model(torch.rand(5, *SHAPE)).shape == (5, 4)


def test_torchscript_is_off_with_its_setting(monkeypatch, marker):
    monkeypatch.setenv("EXPLORER_ALLOW_TORCHSCRIPT", "0")
    with pytest.raises(UserModelError, match="EXPLORER_ALLOW_TORCHSCRIPT=0"):
        _upload(_scripted(ScriptedCNN()))
    monkeypatch.delenv("EXPLORER_ALLOW_TORCHSCRIPT")
    monkeypatch.setenv("EXPLORER_PROFILE", "hosted")
    with pytest.raises(UserModelError, match="EXPLORER_ALLOW_TORCHSCRIPT=0"):
        _upload(_scripted(WriteInForward(marker)))


def test_control_flow_on_pixel_values_is_refused():
    """A loop count or branch taken from tensor values could differ between validation and later forwards."""
    class DataLoop(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = x.flatten(1)[:, :3]
            for _ in range(int(x.sum() * 1000)):
                y = y + 1.0
            return y

    with pytest.raises(UserModelError, match="aten::Int on a tensor"):
        _upload(_scripted(DataLoop()))


def test_random_bytes_are_not_a_model_file():
    for arch in (None, "resnet18"):
        with pytest.raises(UserModelError, match=r"not a model file \(neither safetensors"):
            register_user_model(UserModelRequest(os.urandom(4096), "r.pt", arch=arch))
