"""The declared URL parameters of each page match what the pages read (read from their source)."""

from __future__ import annotations

import re

from explorer.lessons import params as P


def _page_source(name: str) -> str:
    return (P.ROOT / P.app_pages()[name]).read_text()


def test_every_listed_page_declares_its_parameters():
    assert set(P.app_pages()) <= set(P.PAGE_PARAMS), "a page in streamlit_app.py has no entry in PAGE_PARAMS"


def test_every_url_key_a_page_reads_is_declared():
    state_src = (P.ROOT / "explorer" / "state.py").read_text()
    shared_reads = set(re.findall(r'shared_value\("(\w+)"\)', state_src)) | {"target"}
    assert shared_reads <= set(P.SHARED_ATTACK)
    for page in P.app_pages():
        src = _page_source(page)
        reads = set(re.findall(r'state\.query\("(\w+)"', src))
        reads |= set(re.findall(r'^\s*"((?:lab|slice)_\w+)": Param\(', src, re.M))
        reads |= set(re.findall(r'key="(\w+)", bind="query-params"', src))
        if re.search(r"read_shared_attack|shared_attack_name|shared_eps|shared_steps", src):
            reads |= {"attack", "eps", "steps"}
        if "shared_target" in src or "num_classes=" in src:
            reads.add("target")
        undeclared = reads - set(P.known_params(page))
        assert not undeclared, f"pages/{page}.py reads {sorted(undeclared)} from the URL: declare them in PAGE_PARAMS"
