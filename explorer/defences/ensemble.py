"""Ensembles of N networks of one architecture, evaluated in one stacked forward.

The members' parameters are stacked with ``torch.func.stack_module_state`` and the forward is
``torch.func.vmap(functional_call)`` over the member axis: one batched call instead of a Python loop over members.

Combinations (``P_m = softmax(z_m)`` for member m; outputs are log-probabilities, i.e. valid logits):

* ``mean``: ``log( (1/N) Σ_m P_m )`` — the honest, differentiable forward (its gradient is exact).
* ``max``: the log-probabilities of the most confident member (largest max-probability) for each input. The
  forward is piecewise: its exact gradient flows through the selected member only.
* ``vote``: ``log`` of the vote shares (plus a tiny smoothing so ties and empty classes stay finite). The vote is
  piecewise constant: its exact gradient is zero everywhere.

``backward``: ``"surrogate"`` (default for the registry models) gives max and vote the gradient of the mean
ensemble by a straight-through estimator, ``out = mean + (combined − mean).detach()``: the value is the combination,
the gradient is the mean ensemble's (BPDA, Athalye et al. 2018). ``"exact"`` keeps autograd's own gradient of the
combination (through the selected member for max; zero for vote: the gradient-masked view a naive attacker sees).
For ``mean`` both are the same.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.func import functional_call, stack_module_state, vmap

from explorer.models.wrapper import Classifier

VOTE_SMOOTHING = 1e-3
GROUPED_MAX_BATCH = 16
"""Above this batch a loop over members is faster on a CPU than grouped convolutions (bench_defences.py: 2.3× faster
than a loop at batch 1 for N = 25 LeNets, 0.5× at batch 64), so larger batches loop."""


class StackedEnsemble(nn.Module):
    """N networks of one architecture (taking normalised inputs) combined by ``combine``; see the module docstring."""

    def __init__(self, members: Sequence[nn.Module], combine: str = "mean", backward: str = "surrogate") -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        if combine not in ("mean", "max", "vote"):
            raise ValueError(f"unknown combination {combine!r} (mean, max or vote)")
        if backward not in ("surrogate", "exact"):
            raise ValueError(f"backward must be 'surrogate' or 'exact', got {backward!r}")
        self.combine = combine
        self.backward = backward
        self.n_members = len(members)
        params, buffers = stack_module_state([m.eval() for m in members])
        self._pnames = list(params)
        self._bnames = list(buffers)
        for i, (k, v) in enumerate(params.items()):
            self.register_buffer(f"p{i}", v.detach().clone())
        for i, (k, v) in enumerate(buffers.items()):
            self.register_buffer(f"b{i}", v.detach().clone())
        self.base = copy.deepcopy(members[0]).eval()  # the architecture; its own weights are never used
        for p in self.base.parameters():
            p.requires_grad_(False)

    def _stacked(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        p = {k: getattr(self, f"p{i}") for i, k in enumerate(self._pnames)}
        b = {k: getattr(self, f"b{i}") for i, k in enumerate(self._bnames)}
        return p, b

    def member_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Every member's logits for a normalised batch: N_members x batch x classes.

        Batches up to ``GROUPED_MAX_BATCH``: plain Conv2d / ReLU / MaxPool2d / Flatten / Linear / Dropout stacks run as grouped layers: the first
        convolution as one convolution with all members' filters (the input is shared), later ones as grouped
        convolutions (``groups = N``), dense layers as one batched matrix product. Any other architecture goes
        through ``torch.func.vmap`` over ``functional_call``.
        """
        if len(z) > GROUPED_MAX_BATCH:
            return self.looped_logits(z)
        if self._groupable():
            return self._grouped(z)
        return self.vmapped_logits(z)

    def looped_logits(self, z: torch.Tensor) -> torch.Tensor:
        """The members' logits by a loop of ``functional_call`` over the stacked parameters (large batches)."""
        params, buffers = self._stacked()
        return torch.stack([functional_call(self.base, ({k: v[i] for k, v in params.items()},
                                                        {k: v[i] for k, v in buffers.items()}), (z,))
                            for i in range(self.n_members)])

    def _groupable(self) -> bool:
        return isinstance(self.base, nn.Sequential) and all(
            isinstance(m, (nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Linear, nn.Dropout))
            for m in self.base) and not any(
            isinstance(m, nn.Conv2d) and (m.groups != 1 or m.padding_mode != "zeros") for m in self.base)

    def _grouped(self, z: torch.Tensor) -> torch.Tensor:
        params, _ = self._stacked()
        m_count = self.n_members
        h = z
        shared, flat = True, False
        for name, layer in self.base.named_children():
            if isinstance(layer, nn.Conv2d):
                w = params[f"{name}.weight"]
                w = w.reshape(-1, *w.shape[2:])
                b = params.get(f"{name}.bias")
                h = F.conv2d(h, w, None if b is None else b.reshape(-1), layer.stride, layer.padding,
                             layer.dilation, 1 if shared else m_count)
                shared = False
            elif isinstance(layer, nn.Flatten):
                if shared:
                    h = h.flatten(1).unsqueeze(0).expand(m_count, -1, -1)
                else:
                    h = h.reshape(h.shape[0], m_count, -1).transpose(0, 1)
                flat = True
            elif isinstance(layer, nn.Linear):
                w = params[f"{name}.weight"]  # M x out x in
                b = params.get(f"{name}.bias")
                if not flat:
                    raise RuntimeError("a dense layer before Flatten")
                h = torch.bmm(h, w.transpose(1, 2)) if b is None else torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
            elif isinstance(layer, nn.Dropout):
                continue  # eval mode
            else:
                h = layer(h)
        if not flat:
            raise RuntimeError("the network has no Flatten")
        return h

    def vmapped_logits(self, z: torch.Tensor) -> torch.Tensor:
        """The members' logits by ``vmap(functional_call)`` over the stacked parameters (any architecture)."""
        params, buffers = self._stacked()

        def one(p, b, x):
            return functional_call(self.base, (p, b), (x,))

        return vmap(one, in_dims=(0, 0, None))(params, buffers, z)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return combine_logits(self.member_logits(z), self.combine, self.backward)

    def with_combine(self, combine: str, backward: str | None = None) -> StackedEnsemble:
        """A view with another combination / backward sharing these stacked tensors (nothing is copied)."""
        other = copy.copy(self)
        other._buffers = dict(self._buffers)
        other._modules = dict(self._modules)
        if combine not in ("mean", "max", "vote"):
            raise ValueError(f"unknown combination {combine!r}")
        other.combine = combine
        other.backward = self.backward if backward is None else backward
        return other


def combine_logits(member_logits: torch.Tensor, combine: str, backward: str = "surrogate") -> torch.Tensor:
    """Combine ``M x N x K`` member logits into ``N x K`` log-probabilities (see the module docstring)."""
    m = member_logits.shape[0]
    logp = torch.log_softmax(member_logits, dim=-1)
    mean = torch.logsumexp(logp, dim=0) - math.log(m)
    if combine == "mean":
        return mean
    if combine == "max":
        conf = logp.max(dim=-1).values  # M x N: log of each member's top probability
        sel = conf.argmax(dim=0)  # N
        out = logp[sel, torch.arange(logp.shape[1], device=logp.device)]
    elif combine == "vote":
        k = member_logits.shape[-1]
        votes = torch.nn.functional.one_hot(member_logits.argmax(dim=-1), k).sum(0).to(member_logits.dtype)
        out = torch.log((votes / m + VOTE_SMOOTHING) / (1 + k * VOTE_SMOOTHING))
        if backward == "exact":
            return out + 0.0 * mean  # keeps the graph: the exact gradient of a vote is zero
    else:
        raise ValueError(f"unknown combination {combine!r}")
    if backward == "surrogate":
        return mean + (out - mean).detach()  # straight-through: value of the combination, gradient of the mean
    return out


def loop_member_logits(members: Sequence[nn.Module], z: torch.Tensor) -> torch.Tensor:
    """The same ``M x N x K`` logits by a Python loop over members (the benchmark's peer; tests compare)."""
    return torch.stack([mem(z) for mem in members])


def ensemble_classifier(members: Sequence[nn.Module], combine: str, *, model_id: str, class_names: Sequence[str],
                        input_shape: tuple[int, int, int], mean: float, std: float,
                        backward: str = "surrogate") -> Classifier:
    """A frozen registry-style Classifier around a stacked ensemble (normalisation inside, [0, 1] in, logits out)."""
    return Classifier(StackedEnsemble(members, combine, backward), model_id=model_id, class_names=class_names,
                      input_shape=input_shape, mean=(mean,), std=(std,))


def mean_surrogate(model: Classifier) -> Classifier:
    """The mean ensemble of an ensemble Classifier (same members, same normalisation): the BPDA surrogate."""
    net = model.net
    if not isinstance(net, StackedEnsemble):
        raise TypeError(f"{model.model_id} is not an ensemble")
    return Classifier(net.with_combine("mean"), model_id=f"{model.model_id}~mean", class_names=model.class_names,
                      input_shape=model.input_shape, mean=model.mean.flatten().tolist(),
                      std=model.std.flatten().tolist())


def with_backward(model: Classifier, backward: str) -> Classifier:
    """The same ensemble Classifier with another backward (``"exact"`` or ``"surrogate"``)."""
    net = model.net
    if not isinstance(net, StackedEnsemble):
        raise TypeError(f"{model.model_id} is not an ensemble")
    return Classifier(net.with_combine(net.combine, backward), model_id=f"{model.model_id}~{backward}",
                      class_names=model.class_names, input_shape=model.input_shape,
                      mean=model.mean.flatten().tolist(), std=model.std.flatten().tolist())
