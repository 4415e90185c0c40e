"""Lessons as data: one TOML file per lesson under ``lessons/`` at the repository root.

A lesson file::

    title = "Panda → vulture"
    summary = "One line for the Lessons page."

    [[steps]]
    title = "A photo and its label"
    text = "Markdown shown in the lesson bar."
    page = "attack_studio"                       # a page listed in streamlit_app.py (its URL name)
    params = { model = "resnet18", image = "photo:chelsea", attack = "fgsm", eps = "0" }   # every parameter
    highlight = ["eps"]                          # controls to draw attention to (named by their URL parameter)
    hide = ["steps", "target"]                   # controls this step hides (TensorFlow Playground's hide=)

    [steps.offline]                              # optional: when a model of this step is not available offline
    params = { model = "digits-cnn", image = "digits:0" }
    note = "No photo model on this machine: the same idea on the digits model."

    [steps.question]                             # optional
    prompt = "How far did any pixel move?"
    choices = ["1/255", "2/255", "16/255"]
    answer = 1                                   # index into choices (0-based)
    feedback = "ε is the largest change of any pixel (L∞)."

:func:`load_lesson` checks every page name against ``streamlit_app.py``, every parameter, highlight and hide
against the page's declared URL parameters (``explorer.lessons.params``), and the values it can check (model
ids, attacks, numbers); a problem raises :class:`LessonError` naming the file and the step.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from explorer.lessons import params as P

LESSONS_DIR = P.ROOT / "lessons"
NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


class LessonError(ValueError):
    """A lesson file that cannot be used: the message names the file and the step."""


@dataclass(frozen=True)
class LessonQuestion:
    prompt: str
    choices: tuple[str, ...]
    answer: int
    feedback: str = ""


@dataclass(frozen=True)
class Offline:
    """Parameters that replace a step's own when one of its models is not available on this machine."""

    params: tuple[tuple[str, str], ...]
    note: str


@dataclass(frozen=True)
class Step:
    title: str
    text: str
    page: str
    params: tuple[tuple[str, str], ...]  # in file order; values are URL strings
    highlight: tuple[str, ...] = ()
    hide: tuple[str, ...] = ()
    question: LessonQuestion | None = None
    offline: Offline | None = None

    @property
    def param_dict(self) -> dict[str, str]:
        return dict(self.params)


@dataclass(frozen=True)
class Lesson:
    name: str  # the file's stem: the URL's lesson=
    title: str
    summary: str
    steps: tuple[Step, ...]
    path: Path | None = field(default=None, compare=False)

    def step(self, k: int) -> Step:
        """Step ``k``, counted from 1 as in the URL (``step=1`` is the first)."""
        if not 1 <= k <= len(self.steps):
            raise LessonError(f"lesson {self.name!r} has steps 1 to {len(self.steps)}, not {k}")
        return self.steps[k - 1]


@dataclass(frozen=True)
class ResolvedStep:
    """A step made concrete for this machine: the view to open and, if it fell back, why."""

    lesson: str
    k: int
    n: int
    step: Step
    page: str
    params: dict[str, str]
    note: str | None  # the offline note when the fallback was taken

    def url(self, base: str = "") -> str:
        return view_url(self.page, self.params, lesson=self.lesson, step=self.k, hide=self.step.hide, base=base)


# --------------------------------------------------------------------------------------------- values


def _value_problem(key: str, value: str) -> str | None:
    """Why ``value`` is wrong for ``key``, or None (only what can be checked without loading models or data)."""

    def number(lo: float, hi: float, whole: bool = False) -> str | None:
        try:
            v = float(int(value)) if whole else _eps(value)
        except ValueError:
            return f"{key} = {value!r} is not {'a whole number' if whole else 'a number'}"
        if not (math.isfinite(v) and lo <= v <= hi):
            return f"{key} = {value!r} is outside [{lo:g}, {hi:g}]"
        return None

    if key == "model":
        from explorer.models import list_specs

        ids = [s.id for s in list_specs(include_user=False)]
        return None if value in ids else f"unknown model {value!r} (known: {', '.join(ids)})"
    if key == "image":
        return None if re.fullmatch(r"(digits|mnist|photo):[A-Za-z0-9_.-]+", value) else (
            f"image = {value!r} is not a sample id such as digits:3, mnist:8000 or photo:chelsea")
    if key == "attack":
        from explorer.attacks import ATTACKS

        return None if value in ATTACKS else f"unknown attack {value!r} (known: {', '.join(ATTACKS)})"
    if key in ("eps", "lab_eps", "slice_eps", "slice_extent", "lab_noise"):
        return number(0.0, 100.0)
    if key in ("steps", "target", "n", "lab_n", "lab_seed", "lab_depth", "lab_width", "lab_steps", "lab_point",
               "slice_res", "slice_target"):
        return number(0, 100_000, whole=True)
    if key == "tab":
        return None if value in P.BOUNDARY_TABS else f"tab = {value!r} is not one of {', '.join(P.BOUNDARY_TABS)}"
    if key == "proj":
        return None if value in ("pca", "umap", "tsne") else f"proj = {value!r} is not pca, umap or tsne"
    if key == "dataset":
        return None if value in ("digits", "mnist", "photos") else f"dataset = {value!r} is not digits, mnist or photos"
    return None


def _eps(value: str) -> float:
    from explorer.runs.rules import parse_eps

    return parse_eps(value)


# --------------------------------------------------------------------------------------------- loading


def _where(path: Path, i: int | None, title: str | None = None) -> str:
    if i is None:
        return str(path)
    return f"{path}, step {i}" + (f" ({title})" if title else "")


def _strings(raw: Any, where: str, what: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise LessonError(f"{where}: {what} must be a list of strings")
    return tuple(raw)


def _params(raw: Any, where: str, what: str = "params") -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise LessonError(f"{where}: {what} must be a table of parameter = value")
    out = []
    for k, v in raw.items():
        if isinstance(v, bool):
            v = "1" if v else "0"
        if not isinstance(v, (str, int, float)):
            raise LessonError(f"{where}: {what}.{k} must be a string or a number")
        out.append((str(k), v if isinstance(v, str) else f"{v:g}" if isinstance(v, float) else str(v)))
    return tuple(out)


def _check_params(params: tuple[tuple[str, str], ...], page: str, where: str) -> None:
    known = P.known_params(page)
    for k, v in params:
        if k in P.LESSON_KEYS:
            raise LessonError(f"{where}: {k!r} is set by the lesson link itself; remove it from the step")
        if k not in known:
            raise LessonError(f"{where}: unknown parameter {k!r} for page {page!r} (known: {', '.join(known)})")
        problem = _value_problem(k, v)
        if problem:
            raise LessonError(f"{where}: {problem}")


def parse_lesson(data: dict[str, Any], path: Path, pages: dict[str, str] | None = None) -> Lesson:
    pages = P.app_pages() if pages is None else pages
    name = path.stem
    if not NAME_RE.fullmatch(name):
        raise LessonError(f"{path}: a lesson file name is lowercase letters, digits and '-' (it is the URL's lesson=)")
    extra = set(data) - {"title", "summary", "steps"}
    if extra:
        raise LessonError(f"{path}: unknown field(s) {', '.join(sorted(extra))} (a lesson has title, summary, steps)")
    title, summary = data.get("title"), data.get("summary", "")
    if not isinstance(title, str) or not title.strip():
        raise LessonError(f"{path}: a lesson needs a title")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise LessonError(f"{path}: a lesson needs at least one [[steps]]")
    steps = []
    for i, s in enumerate(raw_steps, start=1):
        where = _where(path, i, s.get("title") if isinstance(s, dict) else None)
        if not isinstance(s, dict):
            raise LessonError(f"{where}: a step is a table")
        extra = set(s) - {"title", "text", "page", "params", "highlight", "hide", "question", "offline"}
        if extra:
            raise LessonError(f"{where}: unknown field(s) {', '.join(sorted(extra))}")
        for f in ("title", "text", "page"):
            if not isinstance(s.get(f), str) or not s[f].strip():
                raise LessonError(f"{where}: a step needs a {f}")
        page = s["page"]
        if page not in pages:
            raise LessonError(f"{where}: unknown page {page!r} (streamlit_app.py lists: {', '.join(pages)})")
        if page not in P.PAGE_PARAMS:
            raise LessonError(f"{where}: page {page!r} declares no URL parameters in explorer/lessons/params.py")
        params = _params(s.get("params"), where)
        _check_params(params, page, where)
        highlight = _strings(s.get("highlight"), where, "highlight")
        hide = _strings(s.get("hide"), where, "hide")
        for what, names in (("highlight", highlight), ("hide", hide)):
            for c in names:
                if c not in P.controls(page):
                    raise LessonError(f"{where}: cannot {what} {c!r} on page {page!r} "
                                      f"(controls: {', '.join(P.controls(page))})")
        both = set(highlight) & set(hide)
        if both:
            raise LessonError(f"{where}: {', '.join(sorted(both))} is both highlighted and hidden")
        question = None
        if s.get("question") is not None:
            q = s["question"]
            if not isinstance(q, dict) or set(q) - {"prompt", "choices", "answer", "feedback"}:
                raise LessonError(f"{where}: a question has prompt, choices, answer and feedback")
            choices = _strings(q.get("choices"), where, "question.choices")
            if not isinstance(q.get("prompt"), str) or not q["prompt"].strip():
                raise LessonError(f"{where}: a question needs a prompt")
            if not 2 <= len(choices) <= 12:
                raise LessonError(f"{where}: a question needs 2 to 12 choices")
            answer = q.get("answer")
            if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < len(choices):
                raise LessonError(f"{where}: question.answer must be the index (0 to {len(choices) - 1}) of the "
                                  "right choice")
            question = LessonQuestion(q["prompt"], choices, answer, str(q.get("feedback", "")))
        offline = None
        if s.get("offline") is not None:
            o = s["offline"]
            if not isinstance(o, dict) or set(o) - {"params", "note"} or not isinstance(o.get("note"), str):
                raise LessonError(f"{where}: offline has params and a note")
            oparams = _params(o.get("params"), where, "offline.params")
            _check_params(oparams, page, where + " [offline]")
            offline = Offline(oparams, o["note"])
        steps.append(Step(s["title"], s["text"], page, params, highlight, hide, question, offline))
    return Lesson(name, title, str(summary), tuple(steps), path)


def load_lesson(path_or_name: str | Path, directory: Path | None = None,
                pages: dict[str, str] | None = None) -> Lesson:
    """A lesson by file path, or by name from ``lessons/`` (``LessonError`` if missing or invalid)."""
    path = Path(path_or_name)
    if path.suffix != ".toml":
        name = str(path_or_name)
        if not NAME_RE.fullmatch(name):
            raise LessonError(f"{name!r} is not a lesson name (lowercase letters, digits and '-')")
        path = (directory or LESSONS_DIR) / f"{name}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = ", ".join(lesson_names(directory)) or "none"
        raise LessonError(f"no lesson {path.stem!r} (lessons: {known})") from None
    except tomllib.TOMLDecodeError as exc:
        raise LessonError(f"{path}: not valid TOML: {exc}") from None
    return parse_lesson(data, path, pages)


def lesson_names(directory: Path | None = None) -> list[str]:
    d = directory or LESSONS_DIR
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def list_lessons(directory: Path | None = None) -> list[Lesson]:
    """Every lesson in ``lessons/`` (each validated; the first bad file raises)."""
    pages = P.app_pages()
    return [load_lesson(name, directory, pages) for name in lesson_names(directory)]


# --------------------------------------------------------------------------------------------- URLs


def view_url(page: str, params: dict[str, str], *, lesson: str | None = None, step: int | None = None,
             hide: tuple[str, ...] | list[str] = (), base: str = "") -> str:
    """``attack_studio?model=...&eps=...&lesson=NAME&step=k&hide=a,b`` (the default page is the root URL)."""
    query = dict(params)
    if lesson is not None:
        query["lesson"] = lesson
    if step is not None:
        query["step"] = str(step)
    if hide:
        query["hide"] = ",".join(hide)
    path = "" if page == P.default_page() else page
    qs = urlencode(query, safe=":/,")
    return f"{base.rstrip('/')}/{path}?{qs}" if base else f"{path}?{qs}"


def _model_ok(model_id: str) -> bool:
    from explorer.models import Status, availability

    try:
        return availability(model_id).status in (Status.AVAILABLE, Status.NEEDS_TRAINING)
    except KeyError:
        return False


def _image_ok(sample_id: str) -> bool:
    from explorer.images.samples import sample_available

    return sample_available(sample_id)


def resolve_step(lesson: Lesson, k: int, available=_model_ok, image_available=_image_ok) -> ResolvedStep:
    """Step ``k`` (from 1) for this machine: its own parameters, or its offline fallback (with the note) when
    the model it names is not available here (``available(model_id)``, default: weights present or trainable)
    or its image is not (``image_available(sample_id)``: MNIST's folder or a photo package missing, even where
    the model's weights were kept)."""
    step = lesson.step(k)
    params = step.param_dict
    note = None
    model = params.get("model")
    image = params.get("image")
    missing = (model is not None and not available(model)) or (image is not None and not image_available(image))
    if step.offline is not None and missing:
        params = {**params, **dict(step.offline.params)}
        note = step.offline.note
    return ResolvedStep(lesson.name, k, len(lesson.steps), step, step.page, params, note)


def parse_hide(raw: str | None, page: str) -> tuple[str, ...]:
    """The ``hide=`` of a URL: known control names of ``page`` (unknown ones are ignored)."""
    if not raw:
        return ()
    allowed = P.controls(page)
    return tuple(c for c in (x.strip() for x in raw.split(",")) if c in allowed)
