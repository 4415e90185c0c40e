"""The user's own model: TorchScript, or architecture + state_dict; validation and refusal of code pickles."""

import io
import json
import os

import pytest
import torch
import torchvision
from safetensors.torch import save as save_safetensors

from explorer.models import get_spec, load_model
from explorer.models.user import (
    LINK_NOTICE,
    UserModelError,
    UserModelRequest,
    forget_session,
    link_notice,
    owns,
    parse_class_names,
    register_user_model,
    session_models,
)


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/explorer-pwned",))


def _state_bytes(net) -> bytes:
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    return buf.getvalue()


def tiny_net(k=3):
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, k))


def test_torchscript_model_is_wrapped_and_validated():
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(tiny_net()), buf)
    spec = register_user_model(UserModelRequest(buf.getvalue(), "tiny.pt", input_shape=(3, 16, 16),
                                                class_names=("a", "b", "c"), mean=(0.5,), std=(0.5,)))
    assert spec.id.startswith("user:") and get_spec(spec.id).class_names == ("a", "b", "c")
    model = load_model(spec.id)
    assert model(torch.rand(2, 3, 16, 16)).shape == (2, 3)


def test_torchvision_arch_with_state_dict_and_safetensors():
    net = torchvision.models.resnet18(num_classes=4)
    for blob in (_state_bytes(net), save_safetensors({k: v.contiguous() for k, v in net.state_dict().items()})):
        spec = register_user_model(UserModelRequest(blob, "r18", arch="resnet18", input_shape=(3, 32, 32)))
        assert len(spec.class_names) == 4
        assert load_model(spec.id)(torch.rand(1, 3, 32, 32)).shape == (1, 4)


def test_pickle_that_runs_code_is_refused(tmp_path):
    buf = io.BytesIO()
    torch.save({"fc.weight": RunsCode()}, buf)
    with pytest.raises(UserModelError, match="refused"):
        register_user_model(UserModelRequest(buf.getvalue(), "evil.pt", arch="resnet18"))
    assert not os.path.exists("/tmp/explorer-pwned")


@pytest.mark.parametrize("req, message", [
    (UserModelRequest(b"junk", "x.pt"), "not a model file"),
    (UserModelRequest(b"junk" * 10, "x.pt", arch="resnet18"), "not a model file"),
    (UserModelRequest(b"", "x.pt", arch="not_a_model"), "unknown torchvision architecture"),
    (UserModelRequest(b"", "x.pt", arch="fasterrcnn_resnet50_fpn"), "not an image classification architecture"),
])
def test_bad_files_are_refused_with_one_line(req, message):
    with pytest.raises(UserModelError, match=message) as exc:
        register_user_model(req)
    assert "\n" not in str(exc.value)


def test_wrong_class_count_and_input_shape_are_reported():
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(tiny_net(3)), buf)
    with pytest.raises(UserModelError, match="3 outputs but 2 class names"):
        register_user_model(UserModelRequest(buf.getvalue(), "t.pt", input_shape=(3, 16, 16), class_names=("a", "b")))
    with pytest.raises(UserModelError, match="fails on a 3x20x20 input"):
        register_user_model(UserModelRequest(buf.getvalue(), "t.pt", input_shape=(3, 20, 20)))
    net = torchvision.models.resnet18(num_classes=4)
    with pytest.raises(UserModelError, match="do not fit resnet34"):
        register_user_model(UserModelRequest(_state_bytes(net), "r", arch="resnet34", input_shape=(3, 32, 32)))


def test_class_names_from_text_and_json():
    assert parse_class_names("cat\ndog\n\n") == ("cat", "dog")
    assert parse_class_names(json.dumps(["a", "b"])) == ("a", "b")
    assert parse_class_names(json.dumps({"1": ["n1", "dog"], "0": ["n0", "cat"]})) == ("cat", "dog")
    with pytest.raises(UserModelError, match="invalid JSON"):
        parse_class_names("[1, 2")


def test_squeezenet_conv_head_class_count_is_read():
    """SqueezeNet's classifier is a 1x1 conv (4-D weight): a valid 10-class state_dict is accepted."""
    net = torchvision.models.squeezenet1_1(num_classes=10)
    blob = save_safetensors({k: v.contiguous() for k, v in net.state_dict().items()})
    spec = register_user_model(UserModelRequest(blob, "sq", arch="squeezenet1_1", input_shape=(3, 64, 64)))
    assert len(spec.class_names) == 10
    assert load_model(spec.id)(torch.rand(2, 3, 64, 64)).shape == (2, 10)


def test_architecture_size_is_checked_before_building():
    """53 KB of resnet18 tensors declared as vit_h_14 (632 M parameters): refused from the metadata alone,
    and, with the cap raised, from the shapes of the architecture built on the meta device."""
    small = {k: v for k, v in list(torchvision.models.resnet18(num_classes=3).state_dict().items())[:5]}
    blob = _state_bytes_of(small)
    with pytest.raises(UserModelError, match=r"vit_h_14 has 632 M parameters.*EXPLORER_MAX_MODEL_PARAMS_M"):
        register_user_model(UserModelRequest(blob, "v", arch="vit_h_14"))
    os.environ["EXPLORER_MAX_MODEL_PARAMS_M"] = "1000"
    try:
        with pytest.raises(UserModelError, match=r"do not fit vit_h_14: \d+ tensors missing"):
            register_user_model(UserModelRequest(blob, "v", arch="vit_h_14"))
    finally:
        del os.environ["EXPLORER_MAX_MODEL_PARAMS_M"]


def test_file_size_cap(monkeypatch):
    monkeypatch.setenv("EXPLORER_MAX_MODEL_MB", "1")
    with pytest.raises(UserModelError, match="EXPLORER_MAX_MODEL_MB"):
        register_user_model(UserModelRequest(b"\0" * (2 * 2**20), "big.pt", arch="resnet18"))


def _state_bytes_of(state) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


class IgnoresBatch(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:1].flatten(1)[:, :3]


class MixesBatch(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :3] - x.mean()


class ReturnsNaN(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :3] * float("nan")


class Fails(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x.flatten(1), torch.zeros(3, 5))


@pytest.mark.parametrize("net, message", [
    (IgnoresBatch(), "do not follow the batch: a batch of 3"),
    (MixesBatch(), "different logits alone and in a batch of 3"),
    (ReturnsNaN(), "NaN or infinite logits"),
    (Fails(), r"fails on a 3x8x8 input: mat1 and mat2 shapes cannot be multiplied \(3x192 and 5x3\)"),
])
def test_broken_models_are_refused_with_the_full_reason(net, message):
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(net), buf)
    with pytest.raises(UserModelError, match=message) as exc:
        register_user_model(UserModelRequest(buf.getvalue(), "b.pt", input_shape=(3, 8, 8)))
    assert "TorchScript interpreter" not in str(exc.value) and "\n" not in str(exc.value)


def _tiny_script(k=3) -> bytes:
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, k))), buf)
    return buf.getvalue()


def _named(blob: bytes, tag: str) -> UserModelRequest:
    """The same weights under other class names: another model id (validated once for the file)."""
    return UserModelRequest(blob, f"{tag}.pt", input_shape=(1, 4, 4), mean=(0.0,), std=(1.0,),
                            class_names=(f"{tag}-a", f"{tag}-b", f"{tag}-c"))


def test_thirty_sessions_each_keep_their_model_and_the_quota_is_per_session(monkeypatch):
    monkeypatch.setenv("EXPLORER_SESSION_MODELS", "2")
    blob = _tiny_script()
    ids = {f"s{i}": register_user_model(_named(blob, f"s{i}"), session=f"s{i}").id for i in range(30)}
    assert len(set(ids.values())) == 30
    for s, mid in ids.items():
        assert session_models(s) == (mid,) and get_spec(mid).class_names[0] == f"{s}-a"
    # one session uploads two more: its oldest goes, nobody else's does
    second = register_user_model(_named(blob, "s0-2"), session="s0").id
    third = register_user_model(_named(blob, "s0-3"), session="s0").id
    assert session_models("s0") == (second, third)
    with pytest.raises(KeyError):
        get_spec(ids["s0"])
    assert all(session_models(s) == (ids[s],) for s in ids if s != "s0")
    # a session that ends drops its uploads
    assert forget_session("s1") == 1 and session_models("s1") == ()
    with pytest.raises(KeyError):
        get_spec(ids["s1"])
    for s in ids:
        forget_session(s)


def test_sharing_rule_a_link_opens_only_in_a_session_that_uploaded_the_same_file():
    blob = _tiny_script()
    mid = register_user_model(_named(blob, "alice"), session="alice").id
    assert link_notice("alice", mid) is None
    assert link_notice("bob", mid) == LINK_NOTICE and "another session" in LINK_NOTICE
    assert link_notice("bob", "digits-cnn") is None
    # bob uploads the same file with the same settings: the same id, instantly his too
    assert register_user_model(_named(blob, "alice"), session="bob").id == mid
    assert owns("bob", mid) and link_notice("bob", mid) is None
    # alice leaves: bob keeps it
    forget_session("alice")
    assert get_spec(mid) and load_model(mid)(torch.rand(1, 1, 4, 4)).shape == (1, 3)
    forget_session("bob")
    with pytest.raises(KeyError):
        get_spec(mid)
