"""EvaluateRequest / TransferRequest: digests, the result store, resume after a cancel, transfer reuse."""

import numpy as np
import pytest

import explorer.runs.store as store_mod
from explorer.runs import LOCAL, Cancelled, run
from explorer.runs.evaluate import EvaluateRequest, TransferRequest, transfer_for

EPS = (0.0, 0.1, 0.2, 0.3)


@pytest.fixture
def fresh_store(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(store_mod, "_default", None)
    yield store_mod.default_store()
    store_mod._default = None


def small(**kw) -> EvaluateRequest:
    return EvaluateRequest(**{"models": ("digits-softmax",), "attacks": ("fgsm", "pgd"), "eps": EPS, "n": 30,
                              "steps": 3, "shard_size": 10, "probe": False, **kw})


def test_digest_is_stable_and_covers_every_setting():
    a = small()
    assert a.digest() == small().digest()
    assert a.digest() != small(seed=1).digest() != small(eps=(0.0, 0.1)).digest()
    assert small(device="cpu").digest() == a.digest()  # where it runs does not change the numbers


def test_result_is_stored_on_disk_and_reused(fresh_store, tmp_path):
    req = small()
    ev = run(req)
    assert ev.pred.shape == (1, 2, len(EPS), 30)
    assert list((tmp_path / "cache" / "results").rglob(f"{req.digest()}.res"))
    store_mod._default = None  # a new process: memory empty, the disk copy answers
    again = run(req)
    assert np.array_equal(again.pred, ev.pred) and np.array_equal(again.flip_eps, ev.flip_eps)
    assert again.seconds == ev.seconds  # read back, not recomputed


def test_cancel_keeps_finished_shards_and_resumes(fresh_store):
    req = small()
    digests = req.shard_digests()
    assert len(digests) == 6  # 1 model x 2 attacks x 3 batches
    done = []
    with pytest.raises(Cancelled):
        req.execute(LOCAL, progress=lambda d, t: done.append(d), cancelled=lambda: len(done) >= 2)
    stored = [d for d in digests if fresh_store.get(d) is not None]
    assert len(stored) == 2
    computed = []
    import explorer.runs.evaluate as ev_mod

    original = ev_mod.run_eval_shard

    def counting(item):
        if fresh_store.get(item.digest) is None:
            computed.append(item.digest)
        return original(item)

    ev = req.execute(type("Counting", (), {"name": "local", "map": lambda self, fn, items, **kw: [
        counting(i) for i in items]})())
    assert len(computed) == 4 and not set(computed) & set(stored)
    fresh_store_full = run(small())
    assert np.array_equal(ev.pred, fresh_store_full.pred)


def test_progress_reaches_total(fresh_store):
    seen = []
    small().execute(LOCAL, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] == 6


def test_transfer_reuses_source_adversarials(fresh_store):
    a = TransferRequest(models=("digits-softmax", "digits-mlp"), attack="fgsm", eps=0.2, n=30, shard_size=30)
    ra = run(a)
    b = TransferRequest(models=("digits-softmax", "digits-mlp", "digits-cnn"), attack="fgsm", eps=0.2, n=30,
                        shard_size=30)
    from explorer.runs.evaluate import run_transfer_shard

    items_reused = []
    rb = b.execute(type("Spy", (), {"name": "local", "map": lambda self, fn, items, **kw: [
        (lambda r: (items_reused.append(r.reused), r)[1])(run_transfer_shard(i)) for i in items]})())
    assert items_reused[:2] == [True, True]  # the softmax and MLP sources were attacked by the first run
    assert not items_reused[2]
    assert np.array_equal(ra.accuracy(), rb.accuracy()[:2, :2])
    acc = rb.accuracy()
    assert np.all(np.diag(acc) <= acc.max(axis=0))
    assert rb.valid.all()


def test_transfer_for_uses_the_strongest_iterative_attack():
    t = transfer_for(small(attacks=("fgsm", "pgd")))
    assert t.attack == "pgd" and t.eps == 0.2
    assert transfer_for(small(attacks=("fgsm",))).attack == "fgsm"
