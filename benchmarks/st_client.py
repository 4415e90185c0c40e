"""A lightweight Streamlit client: speaks the app's websocket protocol (``/_stcore/stream``, protobuf
``BackMsg`` / ``ForwardMsg`` from ``streamlit.proto``) the way the browser does, without a browser.

* ``open(page, query)``: connect, send ``rerun_script`` with the page name and query string (a deep link), read
  ``ForwardMsg`` deltas until the run finishes; elements are kept by their delta path (a later delta at the same
  path replaces the element, as in the browser).
* ``set_widget(state)``: send a widget change (a ``WidgetState``: e.g. a select_slider's option index as
  ``double_array_value``), i.e. what moving a slider sends, and read the rerun.
* ``auto_rerun`` messages (``st.fragment(run_every=...)``) are honoured: the client sends the fragment reruns at the
  interval, as the browser does, while it waits for a marker.

Only for 127.0.0.1 (the load test refuses other hosts).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

FINISHED_OK = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_SUCCESSFULLY")
FINISHED_FRAGMENT = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_FRAGMENT_RUN_SUCCESSFULLY")


@dataclass
class RunResult:
    seconds: float  # send -> script finished (final)
    marker_s: float | None  # send -> the first delta containing the marker
    errors: list[str]


@dataclass
class Client:
    port: int
    host: str = "127.0.0.1"
    ws: Any = None
    elements: dict[tuple, Any] = field(default_factory=dict)
    page_hash: str = ""
    page_name: str = ""
    query: str = ""
    auto: dict[str, float] = field(default_factory=dict)  # fragment id -> interval
    widget_values: dict[str, WidgetState] = field(default_factory=dict)
    _frames: dict[str, dict] = field(default_factory=dict)  # sweep id -> the scrubber's frames (as a browser keeps)

    async def connect(self) -> None:
        if self.host not in ("127.0.0.1", "localhost"):
            raise ValueError("the load test only talks to 127.0.0.1")
        self.ws = await websockets.connect(f"ws://{self.host}:{self.port}/_stcore/stream", subprotocols=["streamlit"],
                                           max_size=None, open_timeout=30, ping_interval=None)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def _send_rerun(self, widget_states: list[WidgetState] | None = None, fragment_id: str = "",
                          auto: bool = False) -> None:
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query
        cs.page_name = self.page_name
        cs.page_script_hash = self.page_hash
        if fragment_id:
            cs.fragment_id = fragment_id
            cs.is_auto_rerun = auto
        states = WidgetStates()
        for s in widget_states or []:
            states.widgets.append(s)
        cs.widget_states.CopyFrom(states)
        await self.ws.send(msg.SerializeToString())

    def _apply(self, fm: ForwardMsg, errors: list[str]) -> str | None:
        kind = fm.WhichOneof("type")
        if kind == "delta":
            path = tuple(fm.metadata.delta_path)
            d = fm.delta
            if d.WhichOneof("type") == "new_element":
                el = d.new_element
                self.elements[path] = el
                t = el.WhichOneof("type")
                if t == "exception":
                    errors.append(f"exception: {el.exception.type}: {el.exception.message}")
                elif t == "alert" and el.alert.format == 1:  # ERROR
                    errors.append(f"error: {el.alert.body}")
                return _text_of(el)
            if d.WhichOneof("type") == "add_block":
                # a new block at this path drops what was under it
                for p in [p for p in self.elements if p[:len(path)] == path and p != path]:
                    del self.elements[p]
        elif kind == "navigation":
            self.page_hash = fm.navigation.page_script_hash
            for p in fm.navigation.app_pages:
                if p.page_script_hash == self.page_hash:
                    self.page_name = p.url_pathname
        elif kind == "new_session":
            if fm.new_session.page_script_hash:
                self.page_hash = fm.new_session.page_script_hash
            self.elements.clear()
        elif kind == "page_info_changed":
            self.query = fm.page_info_changed.query_string
        elif kind == "auto_rerun":
            self.auto[fm.auto_rerun.fragment_id] = fm.auto_rerun.interval
        elif kind == "stop_auto_rerun":
            self.auto.clear()
        return None

    async def _read_run(self, t0: float, marker: re.Pattern | None, timeout: float) -> RunResult:
        errors: list[str] = []
        marker_s = None
        next_auto = {f: time.perf_counter() + i for f, i in self.auto.items()}
        deadline = t0 + timeout
        while True:
            now = time.perf_counter()
            if now > deadline:
                errors.append(f"timeout after {timeout:.0f} s")
                return RunResult(now - t0, marker_s, errors)
            wait = min([deadline - now] + [max(0.0, t - now) for t in next_auto.values()])
            try:
                raw = await asyncio.wait_for(self.ws.recv(), timeout=max(wait, 0.01))
            except asyncio.TimeoutError:
                for f, t in list(next_auto.items()):
                    if time.perf_counter() >= t:
                        await self._send_rerun(fragment_id=f, auto=True)
                        next_auto[f] = time.perf_counter() + self.auto.get(f, 0.5)
                continue
            fm = ForwardMsg()
            fm.ParseFromString(raw)
            text = self._apply(fm, errors)
            if marker is not None and marker_s is None and text and marker.search(text):
                marker_s = time.perf_counter() - t0
            for f, i in self.auto.items():
                next_auto.setdefault(f, time.perf_counter() + i)
            if fm.WhichOneof("type") == "script_finished":
                if fm.script_finished == FINISHED_OK and (marker is None or marker_s is not None or not self.auto):
                    return RunResult(time.perf_counter() - t0, marker_s, errors)
                # a rerun follows (st.rerun / navigation), or a fragment keeps polling: keep reading

    async def open(self, page: str, query: str, marker: str | None = None, timeout: float = 300) -> RunResult:
        self.page_name, self.query, self.page_hash = page, query, ""
        t0 = time.perf_counter()
        await self._send_rerun()
        return await self._read_run(t0, re.compile(marker) if marker else None, timeout)

    async def set_widget(self, state: WidgetState, marker: str | None = None, timeout: float = 120) -> RunResult:
        t0 = time.perf_counter()
        await self._send_rerun([state])
        return await self._read_run(t0, re.compile(marker) if marker else None, timeout)

    # ------------------------------------------------------------------------------------ reading the page
    def texts(self) -> list[str]:
        return [t for el in self.ordered() if (t := _text_of(el))]

    def ordered(self) -> list[Any]:
        return [self.elements[p] for p in sorted(self.elements)]

    def find_scrubber(self) -> Any | None:
        """Attack Studio's ε scrubber (a ``bidi_component``), or None."""
        for el in self.ordered():
            if el.WhichOneof("type") == "bidi_component" and el.bidi_component.component_name.endswith("eps_scrubber"):
                return el.bidi_component
        return None

    def scrub_data(self) -> dict | None:
        """The scrubber's data as the browser holds it: a lite update (after a slider commit) refers to the frames
        an earlier run sent, by sweep id."""
        comp = self.find_scrubber()
        if comp is None:
            return None
        data = json.loads(comp.json)
        if data.get("lite"):
            return {**data, **self._frames.get(data["sweep"], {})}
        self._frames = {data["sweep"]: {k: data.get(k) for k in ("frames", "orig", "chart", "direction")}}
        return data

    def card(self, label: str) -> str | None:
        """The value of an Attack Studio card: the scrubber's (the adversarial prediction at its current frame)
        or a markdown card (``:gray[label]`` then ``#### value``)."""
        data = self.scrub_data()
        if data is not None:
            if label == "Adversarial prediction" and "frames" in data:
                return data["frames"][data["index"]]["label"]
            for c in data.get("cards", []):
                if c["label"] == label:
                    return c["value"]
        for t in self.texts():
            m = re.search(r":gray\[" + re.escape(label) + r"\]\s*\n#### (.+)", t)
            if m:
                return m.group(1).strip()
        return None


def scrub_state(component: Any, index: int) -> WidgetState:
    """The ε scrubber resting on grid ``index``: what the browser sends (the component's state as JSON)."""
    return WidgetState(id=component.id, json_value=json.dumps({"index": int(index)}))


def _text_of(el: Any) -> str | None:
    t = el.WhichOneof("type")
    if t == "markdown":
        return el.markdown.body
    if t == "alert":
        return el.alert.body
    if t == "heading":
        return el.heading.body
    if t == "plotly_chart":
        return "<plotly_chart>"
    if t == "bidi_component":
        return f"<component {el.bidi_component.component_name}>"
    if t == "imgs":
        return "<image>"
    return None
