"""The Ray executor on a real local Ray (2 CPUs): same numbers as local, retries a killed worker, falls back
cleanly when RAY_ADDRESS does not answer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import explorer.runs.store as store_mod
from explorer.runs import LOCAL
from explorer.runs.evaluate import EvaluateRequest
from explorer.runs.ray_executor import RayExecutor, RayUnavailable, _probe_address

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_ex(tmp_path_factory):
    import ray

    cache = tmp_path_factory.mktemp("ray-cache")
    old = os.environ.get("EXPLORER_CACHE_DIR")
    os.environ["EXPLORER_CACHE_DIR"] = str(cache)  # the workers inherit it (runtime_env)
    store_mod._default = None
    ex = RayExecutor(address="", num_cpus=2)
    ex.start()
    yield ex
    ray.shutdown()
    store_mod._default = None
    if old is None:
        os.environ.pop("EXPLORER_CACHE_DIR", None)
    else:
        os.environ["EXPLORER_CACHE_DIR"] = old


def test_same_numbers_as_local(ray_ex, tmp_path, monkeypatch):
    req = EvaluateRequest(models=("digits-softmax", "digits-mlp"), attacks=("fgsm", "pgd"),
                          eps=(0.0, 0.1, 0.2, 0.3), n=40, steps=3, shard_size=20, probe_n=20)
    seen = []
    on_ray = req.execute(ray_ex, progress=lambda d, t: seen.append(d))
    assert seen[-1] == len(req.shard_digests()) + 2  # shards + one probe per model
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "local"))
    monkeypatch.setattr(store_mod, "_default", None)
    local = req.execute(LOCAL)
    for field in ("pred", "clean_pred", "flip_eps", "example_idx", "examples"):
        assert np.array_equal(getattr(on_ray, field), getattr(local, field)), field
    assert on_ray.probes == local.probes


def test_killed_worker_is_retried(ray_ex, tmp_path):
    marker = str(tmp_path / "pid")

    def slow_once(item: int) -> int:
        import os as _os
        import time as _time
        from pathlib import Path as _Path

        p = _Path(marker)
        if item == 1 and not p.exists():
            p.write_text(str(_os.getpid()))
            _time.sleep(120)
        return item * 2

    killed = []

    def killer() -> None:
        deadline = time.time() + 60
        while time.time() < deadline:
            if os.path.exists(marker) and Path(marker).read_text():
                pid = int(Path(marker).read_text())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.1)

    t = threading.Thread(target=killer)
    t.start()
    out = ray_ex.map(slow_once, [1, 2, 3])
    t.join()
    assert out == [2, 4, 6]
    assert killed
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)


def test_unanswering_address_fails_fast():
    port = free_port()
    t0 = time.perf_counter()
    with pytest.raises(RayUnavailable, match="does not answer"):
        _probe_address(f"127.0.0.1:{port}", timeout=1.0)
    assert time.perf_counter() - t0 < 5


def test_cli_error_and_library_fallback_for_a_dead_address():
    env = {**os.environ, "RAY_ADDRESS": f"127.0.0.1:{free_port()}", "PYTHONPATH": str(ROOT)}
    cli = subprocess.run([sys.executable, "-m", "explorer", "transfer", "--models", "digits-softmax,digits-mlp",
                          "--attack", "fgsm", "--eps", "0.1", "--n", "5"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert cli.returncode == 1
    err = cli.stderr.strip().splitlines()
    assert len(err) == 1 and "does not answer" in err[0] and "Traceback" not in cli.stderr
    code = ("from explorer.runs.ray_executor import executor_or_local; ex, w = executor_or_local(None); "
            "print(ex.name); print(w)")
    lib = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    name, warning = lib.stdout.strip().splitlines()
    assert name == "local" and "does not answer" in warning and "running on this machine" in warning
