"""Load and validate an uploaded model in a separate process, under a time and a memory limit.

The parent (the server) calls ``validate(job, data)``. It writes the file into a fresh private folder and
starts ``python -I sandbox.py`` there, with an empty environment, one thread and no CUDA. The child imports
torch, then limits itself before it touches the upload:

* ``RLIMIT_AS``: its address space after the imports plus ``job.memory_mb`` (EXPLORER_VALIDATE_MEMORY_MB),
  so a huge allocation fails inside the child;
* ``RLIMIT_CPU`` and a wall-clock deadline in the parent (``job.seconds``, EXPLORER_VALIDATE_SECONDS,
  counted from the moment the child is ready): a model that loops is killed;
* ``RLIMIT_FSIZE = 0`` and ``RLIMIT_CORE = 0``: the child cannot write a byte into any file (defence in depth
  behind the TorchScript inspection in ``torchscript_guard``).

It then loads the model (TorchScript: ``check_graphs`` before any forward), and checks that it works:
outputs follow the batch (a batch of 3 and the third image alone give the same row), are finite, are N x K
logits, and that input gradients exist. It answers with one JSON line. Nothing from the child is loaded
into the server: the server loads an accepted file itself afterwards.

This file imports only the standard library at module level: the child runs it by path, without the
``explorer`` package.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

#: seconds the child may take to start (import torch/torchvision) before the validation clock starts
STARTUP_SECONDS = 180


@dataclass(frozen=True)
class SandboxJob:
    """What the sandbox process loads and checks (plain values: it crosses the process boundary as JSON)."""

    kind: str  # "torchscript" | "state_dict"
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    seconds: int
    memory_mb: int
    max_params: int
    arch: str | None = None
    num_classes: int | None = None


@dataclass(frozen=True)
class SandboxResult:
    num_classes: int
    params: int
    seconds: float  # validation time in the child (after its imports)


class SandboxRefused(ValueError):
    """The model was refused in the sandbox; the message is one line saying why."""


# ------------------------------------------------------------------------------------------ parent


def _read_line(proc: subprocess.Popen, buf: bytearray, deadline: float) -> str | None:
    """The next line of the child's stdout, or None at the deadline or end of output."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(timeout=left):
                return None
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                return None
            buf.extend(chunk)
        line, _, rest = bytes(buf).partition(b"\n")
        buf[:] = rest
        return line.decode("utf-8", "replace")
    finally:
        sel.close()


def _memory_message(job: SandboxJob) -> str:
    return (f"the model needs more memory than this server allows for validation "
            f"({job.memory_mb} MB, EXPLORER_VALIDATE_MEMORY_MB)")


def _time_message(job: SandboxJob) -> str:
    return (f"the model did not finish validation within {job.seconds} s (EXPLORER_VALIDATE_SECONDS); "
            "it may loop for too long")


def validate(job: SandboxJob, data: bytes) -> SandboxResult:
    """Load and check ``data`` in a limited child process; raises ``SandboxRefused`` with one line."""
    work = Path(tempfile.mkdtemp(prefix="explorer-sandbox-"))
    try:
        (work / "model.bin").write_bytes(data)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "TMPDIR": str(work),
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2",
               "CUDA_VISIBLE_DEVICES": "", "PYTHONWARNINGS": "ignore", "PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.Popen([sys.executable, "-I", str(Path(__file__).resolve()), json.dumps(asdict(job))],
                                cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        buf = bytearray()
        killed = False
        try:
            line = _read_line(proc, buf, time.monotonic() + STARTUP_SECONDS)
            if line == "ready":
                line = _read_line(proc, buf, time.monotonic() + job.seconds)
            if line is None and proc.poll() is None:
                killed = True
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if killed:
        raise SandboxRefused(_time_message(job))
    if line:
        try:
            answer = json.loads(line)
        except json.JSONDecodeError:
            answer = None
        if isinstance(answer, dict):
            if answer.get("ok"):
                return SandboxResult(int(answer["num_classes"]), int(answer["params"]), float(answer["seconds"]))
            if answer.get("error") == "memory":
                raise SandboxRefused(_memory_message(job))
            raise SandboxRefused(str(answer.get("error") or "the model was refused"))
    rc = proc.returncode
    if rc is not None and rc < 0:
        sig = signal.Signals(-rc)
        if sig == signal.SIGXCPU:
            raise SandboxRefused(_time_message(job))
        raise SandboxRefused(f"the validation process was stopped by {sig.name}: {_memory_message(job)}, "
                             "or the model crashed")
    raise SandboxRefused(f"the validation process failed (exit status {rc})")


# ------------------------------------------------------------------------------------------ child


def reason(exc: BaseException) -> str:
    """The one line that says why ``exc`` happened: the cause line of a TorchScript error, not its preamble."""
    text = str(exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return exc.__class__.__name__
    if "TorchScript interpreter" in text or "Traceback of TorchScript" in text:
        line = lines[-1]
    else:
        line = lines[0]
    for prefix in ("RuntimeError: ", "builtins.", "torch.jit.Error: "):
        if line.startswith(prefix):
            line = line[len(prefix):]
    return line if len(line) <= 600 else line[:600] + "…"


def _is_memory_error(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, MemoryError) or "can't allocate memory" in text or "not enough memory" in text \
        or "std::bad_alloc" in text


def _set_limits(job: dict) -> None:
    import resource

    with open("/proc/self/status") as fh:
        vm = next(int(ln.split()[1]) * 1024 for ln in fh if ln.startswith("VmSize:"))
    cap = vm + int(job["memory_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    used = int(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]))
    cpu = used + int(job["seconds"]) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _read_state_dict(data: bytes):  # noqa: ANN202
    import io

    import torch

    if len(data) > 9 and data[8:9] == b"{":
        from safetensors.torch import load

        return load(data)
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    return state


def _build(job: dict, data: bytes):  # noqa: ANN202
    import io

    import torch

    if job["kind"] == "torchscript":
        import torchscript_guard

        net = torch.jit.load(io.BytesIO(data), map_location="cpu")
        torchscript_guard.check_graphs(net)  # before any forward
    else:
        from torchvision.models import get_model

        kwargs = {"num_classes": job["num_classes"]} if job.get("num_classes") else {}
        net = get_model(job["arch"], weights=None, **kwargs)
        try:
            net.load_state_dict(_read_state_dict(data))
        except RuntimeError as exc:
            lines = [ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()]
            raise SandboxRefused(f"the weights do not fit {job['arch']}: {'; '.join(lines[:3])[:600]}") from None
    net.eval()
    params = sum(p.numel() for p in net.parameters()) + sum(b.numel() for b in net.buffers())
    if params > job["max_params"]:
        raise SandboxRefused(f"the model has {params / 1e6:.1f} M parameters; this server accepts up to "
                             f"{job['max_params'] / 1e6:.0f} M (EXPLORER_MAX_MODEL_PARAMS_M)")
    for p in net.parameters():
        p.requires_grad_(False)
    return net, params


def _logits(out, rows: int, what: str):  # noqa: ANN001, ANN202
    import torch

    if not isinstance(out, torch.Tensor):
        raise SandboxRefused(f"the model must return a tensor of logits (it returned {type(out).__name__})")
    if out.dim() != 2 or not out.is_floating_point():
        raise SandboxRefused(f"the model must return float logits of shape N x K (it returned shape "
                             f"{tuple(out.shape)} for {what})")
    if out.shape[0] != rows:
        raise SandboxRefused(f"the model's outputs do not follow the batch: {what} gave {out.shape[0]} rows")
    if not bool(torch.isfinite(out).all()):
        raise SandboxRefused(f"the model returns NaN or infinite logits for {what}")
    return out


def _check(net, job: dict) -> int:  # noqa: ANN001
    import torch

    c, h, w = job["input_shape"]
    mean = torch.tensor(job["mean"], dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(job["std"], dtype=torch.float32).view(-1, 1, 1)
    size = "x".join(map(str, job["input_shape"]))

    def forward(x):  # noqa: ANN001, ANN202
        try:
            return net((x - mean) / std)
        except SandboxRefused:
            raise
        except Exception as exc:
            if _is_memory_error(exc):
                raise
            raise SandboxRefused(f"the model fails on a {size} input: {reason(exc)}") from None

    x = torch.rand(3, c, h, w, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        out3 = _logits(forward(x), 3, f"a batch of 3 {size} images")
        out1 = _logits(forward(x[2:3]), 1, "one image")
        _logits(forward(torch.zeros(1, c, h, w)), 1, "a black image")
    if out1.shape[1] != out3.shape[1]:
        raise SandboxRefused(f"the number of outputs changes with the batch size ({out3.shape[1]} for 3 images, "
                             f"{out1.shape[1]} for one)")
    tol = 1e-4 + 1e-3 * float(out1.abs().max())
    if not torch.allclose(out3[2], out1[0], rtol=1e-3, atol=tol):
        raise SandboxRefused("the model's outputs do not follow the batch: an image gives different logits "
                             "alone and in a batch of 3")
    xg = x[:2].clone().requires_grad_(True)  # the branch attacks take: gradients enabled, input requires grad
    out = _logits(forward(xg), 2, "a batch of 2 with gradients")
    try:
        (grad,) = torch.autograd.grad(torch.log_softmax(out, 1)[:, 0].sum(), xg)
    except Exception as exc:
        if _is_memory_error(exc):
            raise
        raise SandboxRefused(f"the model cannot be differentiated with respect to its input: {reason(exc)}") \
            from None
    if not bool(torch.isfinite(grad).all()):
        raise SandboxRefused("the model's input gradients are NaN or infinite")
    return int(out3.shape[1])


def _child() -> None:
    job = json.loads(sys.argv[1])
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # torchscript_guard, without the explorer package
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(1)
    refused: type[Exception] = SandboxRefused
    if job["kind"] == "state_dict":
        import safetensors.torch  # noqa: F401
        import torchvision  # noqa: F401
    else:
        import torchscript_guard

        refused = torchscript_guard.RefusedModel
    data = Path("model.bin").read_bytes()
    Path("model.bin").unlink()
    _set_limits(job)
    print("ready", flush=True)
    start = time.perf_counter()
    try:
        net, params = _build(job, data)
        k = _check(net, job)
        answer = {"ok": True, "num_classes": k, "params": params, "seconds": time.perf_counter() - start}
    except (SandboxRefused, refused) as exc:
        answer = {"ok": False, "error": str(exc)}
    except BaseException as exc:  # noqa: BLE001 (everything becomes one line for the parent)
        if _is_memory_error(exc):
            answer = {"ok": False, "error": "memory"}
        else:
            answer = {"ok": False, "error": f"the model cannot be loaded: {reason(exc)}"}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    _child()
