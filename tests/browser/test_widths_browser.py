"""Every page at projector and laptop widths (800, 1024, 1280, 1400 px): no overlapping boxes, no cut labels.

Each page is rendered once at 1400 px, then the viewport is narrowed (a pure re-layout in the browser: the script
does not rerun). At each width a full-page screenshot goes to ``$ARTIFACTS_DIR/widths/`` and two checks run over
the visible elements inside the main block:

* **overlap**: images, image captions, metrics, buttons, page links, headings and captions whose boxes intersect
  (by more than 4 px both ways; an element and its own ancestor/descendant are not compared);
* **truncation**: an element that clips its text (``scrollWidth > clientWidth`` with ``text-overflow: ellipsis``
  or hidden overflow on a text element): metric labels and values, buttons, select values, tab and page-link
  labels;
* **plot text**: Plotly titles and panel titles that overlap one another or run out of their chart.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

WIDTHS = (800, 1024, 1280, 1400)
HEIGHT = 900
PAGES = {
    "home": "",
    "attack_studio": "attack_studio",
    "gradient_maps": "gradient_maps",
    "boundaries": "boundaries",
    "projections": "projections",
    # a model that needs its weights (none on a fresh or offline machine): the one card with the picked photo
    "offline_card": "attack_studio?model=vit_b_16&image=photo:astronaut",
}

# Everything a reader must see whole. Selectors are Streamlit's data-testids (stable across 1.4x-1.6x).
_CHECK_JS = """
() => {
  const main = document.querySelector('[data-testid="stMainBlockContainer"]');
  const visible = (el) => {
    if (!el || el.getClientRects().length === 0) return false;
    const s = getComputedStyle(el);
    if (s.visibility === 'hidden' || s.display === 'none' || parseFloat(s.opacity) === 0) return false;
    const r = el.getBoundingClientRect();
    if (r.width < 2 || r.height < 2) return false;
    // inside a collapsed expander or an inactive tab: not shown
    for (let p = el; p && p !== main; p = p.parentElement) {
      if (p.getAttribute && p.getAttribute('hidden') !== null) return false;
      if (p.tagName === 'DETAILS' && !p.open && !(p.firstElementChild && p.firstElementChild.contains(el))) return false;
    }
    return true;
  };
  const describe = (el) => {
    const tid = el.getAttribute('data-testid') || el.closest('[data-testid]')?.getAttribute('data-testid') || '';
    const text = (el.innerText || el.getAttribute('alt') || el.value || '').replace(/\\s+/g, ' ').trim().slice(0, 60);
    return `${el.tagName.toLowerCase()}[${tid}] "${text}"`;
  };
  const boxSel = [
    '[data-testid="stImage"] img', '[data-testid="stImageCaption"]', '[data-testid="stMetric"]',
    '[data-testid="stButton"] button', '[data-testid="stDownloadButton"] button', '[data-testid="stPageLink"] a',
    '[data-testid="stHeading"] h1', '[data-testid="stHeading"] h2', '[data-testid="stHeading"] h3',
    '[data-testid="stHeading"] h4', '[data-testid="stCaptionContainer"]', '[data-testid="stPlotlyChart"]',
    '[data-testid="stAlert"]',
    // Attack Studio's ε scrubber (a component: its own elements)
    '.ae-scrub .ae-card', '.ae-scrub figure img', '.ae-scrub figure canvas', '.ae-scrub figcaption', '.ae-scrub .ae-bars', '.ae-scrub .ae-chart',
    '.ae-scrub .ae-head', '.ae-scrub .ae-caption',
  ].join(',');
  const els = Array.from(main.querySelectorAll(boxSel)).filter(visible);
  const overlaps = [];
  for (let i = 0; i < els.length; i++) {
    const a = els[i].getBoundingClientRect();
    for (let j = i + 1; j < els.length; j++) {
      if (els[i].contains(els[j]) || els[j].contains(els[i])) continue;
      const b = els[j].getBoundingClientRect();
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > 4 && h > 4) overlaps.push(`${describe(els[i])} overlaps ${describe(els[j])} (${w.toFixed(0)}x${h.toFixed(0)} px)`);
    }
  }
  const textSel = [
    '[data-testid="stMetricLabel"] *', '[data-testid="stMetricValue"] *', '[data-testid="stMetricDelta"] *',
    '[data-testid="stMetricLabel"]', '[data-testid="stMetricValue"]', '[data-testid="stMetricDelta"]',
    '[data-testid="stButton"] button *', '[data-testid="stDownloadButton"] button *', '[data-testid="stPageLink"] a *',
    '[data-testid="stWidgetLabel"] *', '[data-testid="stSelectbox"] [data-baseweb="select"] div',
    '[data-testid="stTab"] *', 'button[role="tab"] *', '[data-testid="stImageCaption"]',
    '[data-testid="stRadio"] label *', '[data-testid="stCheckbox"] label *',
    '.ae-scrub .ae-card *', '.ae-scrub .ae-eps', '.ae-scrub .ae-label', '.ae-scrub .ae-bars-title',
  ].join(',');
  const truncated = [];
  for (const el of main.querySelectorAll(textSel)) {
    if (!visible(el) || !(el.innerText || '').trim()) continue;
    if (el.scrollWidth <= el.clientWidth + 1) continue;
    const s = getComputedStyle(el);
    const clips = s.textOverflow === 'ellipsis' || ((s.overflow === 'hidden' || s.overflowX === 'hidden') && s.whiteSpace === 'nowrap');
    if (clips) truncated.push(`${describe(el)} cut (${el.scrollWidth} > ${el.clientWidth} px)`);
  }
  // Plotly titles and panel titles (annotations) must not overlap one another nor run out of their chart.
  for (const chart of main.querySelectorAll('[data-testid="stPlotlyChart"]')) {
    if (!visible(chart)) continue;
    const c = chart.getBoundingClientRect();
    const texts = Array.from(chart.querySelectorAll('.gtitle, .annotation-text, .g-xtitle text, .g-ytitle text'))
      .filter((t) => (t.textContent || '').trim() && t.getClientRects().length > 0);
    const name = (t) => `plot text "${(t.textContent || '').trim().slice(0, 50)}"`;
    for (let i = 0; i < texts.length; i++) {
      const a = texts[i].getBoundingClientRect();
      if (a.left < c.left - 2 || a.right > c.right + 2 || a.top < c.top - 2) truncated.push(`${name(texts[i])} runs out of its chart`);
      for (let j = i + 1; j < texts.length; j++) {
        const b = texts[j].getBoundingClientRect();
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > 2 && h > 2) overlaps.push(`${name(texts[i])} overlaps ${name(texts[j])}`);
      }
    }
  }
  return {overlaps, truncated, checked: els.length};
}
"""


@pytest.mark.parametrize("name", list(PAGES))
def test_page_reads_cleanly_at_every_width(name, page, app_server, wait_for_app, screenshot):
    page.set_viewport_size({"width": 1400, "height": HEIGHT})
    page.goto(f"{app_server}/{PAGES[name]}")
    wait_for_app(page)
    problems: list[str] = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": HEIGHT})
        page.wait_for_timeout(500)  # re-layout, Plotly's resize handler
        # Streamlit scrolls inside its main section, so a "full page" shot is one viewport: make the viewport as
        # tall as the content to capture (and check) the whole page at this width.
        tall = page.evaluate("() => Math.max(...Array.from(document.querySelectorAll("
                             "'[data-testid=\"stMain\"], [data-testid=\"stAppScrollToBottomContainer\"]'))"
                             ".map((e) => e.scrollHeight), 0)")
        page.set_viewport_size({"width": width, "height": int(min(max(HEIGHT, tall + 40), 8000))})
        page.wait_for_timeout(500)
        screenshot(page, f"widths/{name}-{width}")
        found = page.evaluate(_CHECK_JS)
        assert found["checked"] > 0, f"{name} at {width}px: no elements found in the main block"
        problems += [f"{width}px: {p}" for p in found["overlaps"] + found["truncated"]]
    assert not problems, f"{name}: layout problems\n" + "\n".join(problems)
