"""Defences benchmark: side by side in one run, interleaved, printed as a table of ratios.

1. Training throughput (images/s) of clean, FGSM-AT and PGD-AT (PGD-7) batches with ``explorer.defences.training
   .train_batch`` against a plain PyTorch loop doing the same arithmetic (LeNet on 28x28, batch 64).
2. Ensemble forward of N = 25 small CNNs: one stacked forward (``torch.func.stack_module_state`` + ``vmap``) against
   a Python loop over members (target ≥ 2×), batch 64 and batch 1.
3. Noise averaging (n = 16) per image against n plain forwards of the base model.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_defences.py`` (the machine is shared: ratios within one run hold,
absolute times are noisy).
"""

from __future__ import annotations

import copy
import sys

import torch
from torch.nn import functional as F

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from benchmarks._common import format_table, timed_interleaved  # noqa: E402
from explorer.defences.ensemble import StackedEnsemble, loop_member_logits  # noqa: E402
from explorer.defences.noise import noise_averaged  # noqa: E402
from explorer.defences.training import AdvTrainConfig, make_lenet, train_batch  # noqa: E402
from explorer.models.wrapper import Classifier  # noqa: E402

MEAN, STD = 0.1307, 0.3081


def _net(seed: int):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make_lenet(28)


def plain_step(net, opt, x, y, method: str, eps: float, steps: int, gen: torch.Generator) -> float:
    """The reference: the textbook loop, written out inline."""
    if method != "clean":
        net.eval()
        if method == "fgsm":
            xa = x.clone().requires_grad_(True)
            loss = F.cross_entropy(net((xa - MEAN) / STD), y, reduction="sum")
            g = torch.autograd.grad(loss, xa)[0]
            adv = torch.clamp(x + eps * g.sign(), 0, 1)
        else:
            a = 2.5 * eps / steps
            adv = torch.clamp(x + (torch.rand(x.shape, generator=gen) * 2 - 1) * eps, 0, 1)
            for _ in range(steps):
                xa = adv.clone().requires_grad_(True)
                g = torch.autograd.grad(F.cross_entropy(net((xa - MEAN) / STD), y, reduction="sum"), xa)[0]
                adv = torch.clamp(x + torch.clamp(adv + a * g.sign() - x, -eps, eps), 0, 1)
        net.train()
        loss = F.cross_entropy(net((adv.detach() - MEAN) / STD), y)
        if method == "fgsm":
            loss = 0.5 * F.cross_entropy(net((x - MEAN) / STD), y) + 0.5 * loss
    else:
        loss = F.cross_entropy(net((x - MEAN) / STD), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def bench_training(rows: list, repeats: int) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    for method, label, mix in (("clean", "clean", 0.0), ("fgsm", "FGSM-AT", 0.5), ("pgd", "PGD-AT (PGD-7)", 0.0)):
        cfg = AdvTrainConfig(method=method, eps=0.3, steps=7, mix=mix)
        n1, n2 = _net(0), _net(0)
        o1, o2 = torch.optim.Adam(n1.parameters(), 1e-3), torch.optim.Adam(n2.parameters(), 1e-3)
        f = lambda t, n=n1: n((t - MEAN) / STD)  # noqa: E731
        g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
        (t_ours, t_plain), _ = timed_interleaved([
            lambda: train_batch(n1, o1, f, x, y, cfg, 0.3, g1),
            lambda: plain_step(n2, o2, x, y, method, 0.3, 7, g2),
        ], repeats)
        rows.append([f"training batch of 64: {label}", f"{64 / t_ours:.0f} img/s", f"{64 / t_plain:.0f} img/s",
                     "plain PyTorch loop", f"{t_plain / t_ours:.2f}×"])


def bench_ensemble(rows: list, repeats: int, n: int = 25) -> None:
    members = [_net(i).eval() for i in range(n)]
    for p in (q for m in members for q in m.parameters()):
        p.requires_grad_(False)
    ens = StackedEnsemble(members)
    members_cl = [copy.deepcopy(m).to(memory_format=torch.channels_last) for m in members]
    for bs in (1, 8, 16, 64):
        z = torch.rand(bs, 1, 28, 28, generator=torch.Generator().manual_seed(2))

        def stacked():
            with torch.inference_mode():
                return ens._grouped(z)

        def loop():
            with torch.inference_mode():
                return loop_member_logits(members, z)

        def vmapped():
            with torch.inference_mode():
                return ens.vmapped_logits(z)

        def loop_cl():  # the stronger peer: the same loop with channels_last members and input (oneDNN convs)
            with torch.inference_mode():
                return loop_member_logits(members_cl, z.contiguous(memory_format=torch.channels_last))

        (t_s, t_l, t_v, t_c), outs = timed_interleaved([stacked, loop, vmapped, loop_cl], repeats, rotate=True)
        assert torch.allclose(outs[0], outs[1], atol=1e-4) and torch.allclose(outs[2], outs[1], atol=1e-4)
        rows.append([f"ensemble forward N = {n}, batch {bs} (grouped layers)", f"{t_s * 1e3:.1f} ms",
                     f"{t_l * 1e3:.1f} ms", "Python loop over members", f"{t_l / t_s:.2f}×"])
        rows.append([f"ensemble forward N = {n}, batch {bs} (vmap)", f"{t_v * 1e3:.1f} ms",
                     f"{t_l * 1e3:.1f} ms", "Python loop over members", f"{t_l / t_v:.2f}×"])
        best = min(t_s, t_v)
        rows.append([f"ensemble forward N = {n}, batch {bs} (best stacked)", f"{best * 1e3:.1f} ms",
                     f"{t_c * 1e3:.1f} ms", "loop, channels_last members", f"{t_c / best:.2f}×"])
    z = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(3))

    def grad_stacked():
        zz = z.clone().requires_grad_(True)
        return torch.autograd.grad(torch.logsumexp(torch.log_softmax(ens.member_logits(zz), -1), 0)[:, 0].sum(), zz)[0]

    def grad_loop():
        zz = z.clone().requires_grad_(True)
        lg = loop_member_logits(members, zz)
        return torch.autograd.grad(torch.logsumexp(torch.log_softmax(lg, -1), 0)[:, 0].sum(), zz)[0]

    (t_s, t_l), _ = timed_interleaved([grad_stacked, grad_loop], repeats)
    rows.append([f"ensemble input gradient N = {n}, batch 64", f"{t_s * 1e3:.1f} ms", f"{t_l * 1e3:.1f} ms",
                 "Python loop over members", f"{t_l / t_s:.2f}×"])


def bench_noise(rows: list, repeats: int, n: int = 16) -> None:
    base = Classifier(_net(0).eval(), model_id="lenet", class_names=[str(i) for i in range(10)],
                      input_shape=(1, 28, 28), mean=(MEAN,), std=(STD,))
    avg = noise_averaged(base, n=n, sigma=0.25)
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(4))

    def averaged():
        with torch.inference_mode():
            return avg(x)

    def n_plain():
        with torch.inference_mode():
            return [base(x) for _ in range(n)]

    (t_a, t_p), _ = timed_interleaved([averaged, n_plain], repeats)
    rows.append([f"noise averaging n = {n}, per image (batch 8)", f"{t_a / 8 * 1e3:.2f} ms", f"{t_p / 8 * 1e3:.2f} ms",
                 f"{n} plain forwards", f"{t_p / t_a:.2f}×"])


def main() -> None:
    torch.set_grad_enabled(True)
    rows: list = []
    bench_training(rows, repeats=15)
    bench_ensemble(rows, repeats=15)
    bench_noise(rows, repeats=30)
    print(format_table(["measurement", "explorer", "peer", "peer is", "speed-up (peer time / ours)"], rows))
    print(f"\ntorch {torch.__version__}, threads {torch.get_num_threads()}; medians of interleaved runs")


if __name__ == "__main__":
    main()
