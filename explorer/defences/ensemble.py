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
from torch.func import functional_call, stack_module_state, vmap

from explorer.models.wrapper import Classifier

VOTE_SMOOTHING = 1e-3


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
        """Every member's logits for a normalised batch: N_members x batch x classes (one vmapped call)."""
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
