"""The user's own model: TorchScript, or architecture + state_dict; validation and refusal of code pickles."""

import io
import json
import os

import pytest
import torch
import torchvision
from safetensors.torch import save as save_safetensors

from explorer.models import get_spec, load_model
from explorer.models.user import UserModelError, UserModelRequest, parse_class_names, register_user_model


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
    (UserModelRequest(b"junk", "x.pt"), "not a TorchScript file"),
    (UserModelRequest(b"junk" * 10, "x.pt", arch="resnet18"), "not a PyTorch checkpoint"),
    (UserModelRequest(b"", "x.pt", arch="not_a_model"), "unknown torchvision architecture"),
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
