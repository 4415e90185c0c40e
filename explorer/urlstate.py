"""One URL-state mechanism for every page: typed parameters with validation, defaults, and one-line notices.

A page setting that can be shared lives in the URL only while it differs from its default. Each one is a
``Param``: its URL key, its default, and a parser that turns the URL's text into a checked value (or raises
``ValueError``). ``Param.read()`` gives the value: the URL's, else the value this session last wrote (the
*memory*, see below), else the default; a malformed value shows one escaped line (``key = '…' in the link is
not <what>; using <default>.``) and gives the default. ``write({param: value, ...})`` puts values back, dropping
defaults from the URL.

Why a memory: Streamlit drops the query string when the user clicks another page in the navigation, and it
drops a widget's state when the widget is not drawn in a run (a page stopped early on an unavailable model).
Every value written here is also kept in ``st.session_state`` (``_url_memory``), and ``read`` falls back to it
when the URL lacks the key, so settings follow the user across pages and detours, and the next write puts
them back into the URL. A fresh browser has no memory: there the URL alone decides, which is what makes a
link reproduce a view.

Why not Streamlit's ``bind="query-params"`` (1.55+): it drops a bad value silently (we owe the visitor a
notice), a bound selectbox writes the option's *label* (our model labels change with availability), a value
bound on one page is filtered out of the URL on a page switch, and a bound key cannot be written through
``st.query_params`` (the shared attack keys are written by several pages). The tab row of Boundaries still
uses it: a tab has none of these problems.

Nothing user-supplied is rendered as markup: ``escape_md`` escapes Markdown and HTML, ``shown`` quotes and
truncates a raw URL value for a message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

MEMORY = "_url_memory"  # session key: {url key: last written string, None = default}
MAX_SHOWN = 40  # characters of a raw URL value quoted in a message
MAX_NUMBER_CHARS = 32  # longer text is not a number we accept (a 20,000-digit "steps" included)

# Characters that start markup anywhere in a line (emphasis, code, links, HTML, strike-through, LaTeX, Streamlit's
# ``:icon:`` / ``:color[…]`` directives and ``http:`` autolinks, tables, entities, e-mail autolinks); a dot
# between a word and a letter (``www.x.com`` autolinks, file names); and at the start of a line, list, quote
# and heading markers.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>~$:|#&@])|(?<=\w)\.(?=[A-Za-z])")
_MD_LINE_START = re.compile(r"^(\s*(?:\d+)?)([-+>.)])(?=\s|$)|^(\s*)(>)")


def escape_md(text: object) -> str:
    """``text`` as literal characters in ``st.markdown`` / ``st.warning`` / captions / metric labels: Markdown
    and HTML characters backslash-escaped (links, emphasis, ``<tags>``, ``:material/…:`` icons, ``:red[…]``
    colour directives and autolinks all come out as typed), newlines flattened to spaces."""
    flat = " ".join(str(text).split())
    out = _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), flat)
    return _MD_LINE_START.sub(lambda m: (m.group(1) or m.group(3) or "") + "\\" + (m.group(2) or m.group(4)), out)


def unescape_md(text: str) -> str:
    """The text ``escape_md`` escaped, as a reader sees it (for tests and logs)."""
    return re.sub(r"\\(.)", r"\1", text)


def shown(raw: object, limit: int = MAX_SHOWN) -> str:
    """A raw value as a message quotes it: repr-quoted, cut to ``limit`` characters, escaped."""
    text = str(raw)
    if len(text) > limit:
        return escape_md(f"'{text[:limit]}…' ({len(text):,} characters)")
    return escape_md(repr(text))


# ------------------------------------------------------------------------------------------ raw access
def _memory() -> dict[str, str | None]:
    return st.session_state.setdefault(MEMORY, {})


def raw(key: str) -> str | None:
    """The URL's text for ``key``; without one, what this session last wrote for it (None: default)."""
    value = st.query_params.get(key)
    if value:
        return value
    if key in st.query_params:  # ``?key=`` (empty) asks for the default
        return None
    return _memory().get(key)


def from_link(key: str) -> str | None:
    """The URL's text for ``key`` when this session did not write it: a value a link (or the visitor) brought."""
    value = st.query_params.get(key)
    if not value:
        return None
    memory = _memory()
    return value if memory.get(key) != value else None


def put(**values: str | None) -> None:
    """Write URL texts (None removes the key: the default) to the URL and to this session's memory;
    unchanged values are not rewritten."""
    memory = _memory()
    for key, value in values.items():
        memory[key] = None if value is None else str(value)
        if value is None:
            if key in st.query_params:
                del st.query_params[key]
        elif st.query_params.get(key) != str(value):
            st.query_params[key] = str(value)


def forget(*keys: str) -> None:
    """Drop keys from the URL and the memory (a setting that no longer applies)."""
    put(**{k: None for k in keys})


def notice(key: str, value: object, what: str, using: str, where: Any = None) -> None:
    """The one-line notice for a bad URL value: ``key = '…' in the link is not <what>; using <using>.``
    ``key`` is one of ours (a registered parameter's name) and ``what``/``using`` are Markdown already; the value
    is the visitor's and is quoted, cut and escaped."""
    (where or st).warning(f"{key} = {shown(value)} in the link is not {what}; using {using}.")


# ------------------------------------------------------------------------------------------ numbers
class BadValue(ValueError):
    """A URL value that does not parse or is out of range (the message says what it should be)."""


def parse_int(text: str) -> int:
    """A whole number written plainly (``12``, ``+3``, ``-1``); anything else, including a number too long
    to be sensible, raises ``BadValue`` (never Python's own conversion messages)."""
    t = str(text).strip()
    if len(t) > MAX_NUMBER_CHARS or not re.fullmatch(r"[+-]?[0-9]+", t):
        raise BadValue("not a whole number")
    return int(t)


def parse_float(text: str) -> float:
    """A finite decimal number (``0.3``, ``3e-2``, ``.5``), or a fraction ``8/255``; else ``BadValue``."""
    t = str(text).strip()
    if len(t) > MAX_NUMBER_CHARS or not t:
        raise BadValue("not a number")
    try:
        if "/" in t:
            num, den = t.split("/", 1)
            value = float(num) / float(den)
        else:
            value = float(t)
    except (ValueError, ZeroDivisionError, OverflowError):
        raise BadValue("not a number") from None
    if not math.isfinite(value):
        raise BadValue("not a finite number")
    return value


def encode(value: Any) -> str:
    """The URL text of a value: ``1``/``0`` for booleans, ``%g``-style floats (6 significant digits)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise BadValue("not on or off")


# ------------------------------------------------------------------------------------------ parameters
@dataclass(frozen=True)
class Param:
    """A setting that lives in the URL (only when it differs from its default).

    ``parse`` turns the URL text into the value and raises ``ValueError`` when it is not acceptable; ``what``
    completes "… is not <what>" in the notice; ``encode`` gives the URL text back.
    """

    key: str
    default: Any
    parse: Callable[[str], Any]
    what: str
    encode: Callable[[Any], str] = encode

    def read(self, where: Any = None, notify: bool = True) -> Any:
        """The URL's (else this session's) value, checked; a notice and the default when it is bad.
        ``notify=False``: no notice unless a link brought the value (a setting that depends on the model, say,
        stops fitting when the visitor switches model: that is no bad link)."""
        text = raw(self.key)
        if text is None:
            return self.default
        try:
            return self.parse(text)
        except (ValueError, TypeError, OverflowError, ZeroDivisionError):
            if notify or from_link(self.key) is not None:
                notice(self.key, text, self.what,
                       "none" if self.default is None else escape_md(self.encode(self.default)), where)
            if self.key in st.query_params:
                del st.query_params[self.key]
            _memory().pop(self.key, None)
            return self.default

    def seed(self, widget_key: str | None = None, scale: float = 1.0, notify: bool = True) -> None:
        """Give a widget (``widget_key``, default: the URL key) its starting value the first time it is drawn,
        and again after a run that did not draw it (Streamlit then forgets a widget's state). Never pass the
        widget a ``value``/``index`` as well: that is Streamlit's "default value and Session State" warning."""
        key = widget_key or self.key
        if key not in st.session_state:
            value = self.read(notify=notify)
            if isinstance(value, tuple):  # a list of options: widgets hold lists
                value = list(value)
            st.session_state[key] = round(value * scale, 6) if (scale != 1.0 and value is not None) else value

    def text(self, value: Any) -> str | None:
        """The URL text of ``value``; None for the default (dropped from the URL)."""
        if value is None:
            return None
        if self.default is not None and _same(value, self.default):
            return None
        return self.encode(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    return a == b


def write(values: Mapping[Param, Any]) -> None:
    """Write each parameter's value to the URL and the memory (defaults removed from the URL)."""
    put(**{p.key: p.text(v) for p, v in values.items()})


def _checked(convert: Callable[[str], Any], ok: Callable[[Any], bool]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = convert(text)
        if not ok(value):
            raise BadValue("out of range")
        return value

    return parse


def integer(key: str, default: int | None, lo: int, hi: int | None = None, *, step: int = 1,
            what: str | None = None) -> Param:
    """A whole number in [lo, hi] (a multiple of ``step`` from ``lo``)."""
    top = "" if hi is None else f" to {hi}"
    what = what or (f"a whole number from {lo}{top}" if step == 1 else f"a multiple of {step} from {lo}{top}")
    return Param(key, default, _checked(parse_int, lambda v: v >= lo and (hi is None or v <= hi)
                                        and (v - lo) % step == 0), what)


def number(key: str, default: float, lo: float, hi: float, *, step: float | None = None,
           what: str | None = None) -> Param:
    """A finite number in [lo, hi] (on the grid ``lo + k·step`` when ``step`` is given)."""
    def ok(v: float) -> bool:
        if not lo - 1e-9 <= v <= hi + 1e-9:
            return False
        return step is None or abs((v - lo) / step - round((v - lo) / step)) < 1e-6

    return Param(key, default, _checked(parse_float, ok), what or f"a number from {lo:g} to {hi:g}")


def choice(key: str, default: Any, options: Sequence[Any], *, what: str | None = None) -> Param:
    """One of ``options`` (compared as URL text: ``str(option)``)."""
    by_text = {encode(o): o for o in options}
    numeric = all(isinstance(o, (int, float)) and not isinstance(o, bool) for o in options)

    def parse(text: str) -> Any:
        if text in by_text:
            return by_text[text]
        if numeric:  # 1e-4 and 0.0001 name the same option
            value = parse_float(text)
            for o in options:
                if _same(float(o), value):
                    return o
        raise BadValue("not an option")

    return Param(key, default, parse, what or f"one of {', '.join(by_text)}")


def members(key: str, default: Sequence[str], options: Sequence[str], *, most: int | None = None) -> Param:
    """A list of options, written comma-separated (``digits-cnn,digits-mlp``); unknown members are refused."""
    known = set(options)

    def parse(text: str) -> list[str]:
        items = [t for t in text.split(",") if t]
        if not items or any(t not in known for t in items) or (most is not None and len(items) > most):
            raise BadValue("not a list of options")
        return tuple(dict.fromkeys(items))

    what = f"a comma-separated list of up to {most} of {', '.join(options)}" if most else \
        f"a comma-separated list of {', '.join(options)}"
    return Param(key, tuple(default), parse, escape_md(what), lambda v: ",".join(v))


def flag(key: str, default: bool) -> Param:
    """On or off (``1``/``0``, also true/false, yes/no, on/off)."""
    return Param(key, default, _bool, "on or off (1 / 0)")
