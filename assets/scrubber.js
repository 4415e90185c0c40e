// The ε scrubber of Attack Studio (explorer/scrubber.py): every frame of a sweep is in `data`, so moving the
// slider swaps images, labels, bars and the chart marker in the browser, with no server round trip. The chosen
// grid index goes back to the server (setStateValue('index')) once the slider rests, for the share link and
// the numbers only the server computes (size metrics, 8-bit check, noise baseline).
// Every model- or user-supplied text is set with textContent, never as markup; the chart SVG comes escaped.

const COMMIT_MS = 400;
const FRAMES = new Map(); // sweep id -> the heavy part of its data (frames, images, chart), kept across reruns
const HEAVY = ["frames", "orig", "chart", "direction"];

function el(tag, cls, parent, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function pct(p) { return (p * 100).toFixed(1) + "%"; }

function bars(box, title, top, names, highlight) {
  box.replaceChildren();
  el("div", "ae-bars-title", box, title);
  for (const [idx, p] of top) {
    const row = el("div", "ae-bar-row" + (idx === highlight ? " ae-true" : ""), box);
    el("span", "ae-bar-name", row, names[String(idx)] ?? String(idx)).title = names[String(idx)] ?? "";
    const track = el("span", "ae-bar-track", row);
    el("span", "ae-bar-fill", track).style.width = Math.max(0.5, p * 100).toFixed(2) + "%";
    el("span", "ae-bar-value", row, pct(p));
  }
}

function build(root, data) {
  root.replaceChildren();
  const d = data;
  const ui = {};
  const head = el("div", "ae-head", root);
  const lab = el("label", "ae-label", head, d.text.slider_label);
  ui.slider = el("input", "ae-slider", head);
  Object.assign(ui.slider, { type: "range", min: 0, max: d.eps.length - 1, step: 1 });
  ui.slider.id = "ae-scrub-" + d.sweep;
  lab.htmlFor = ui.slider.id;
  ui.slider.setAttribute("data-testid", "scrub-slider");
  ui.slider.setAttribute("aria-label", d.text.slider_label);
  ui.value = el("output", "ae-eps", head);
  ui.value.setAttribute("data-testid", "scrub-eps");
  ui.grid = el("div", "ae-caption", root);
  ui.grid.setAttribute("data-testid", "scrub-grid-caption");

  const cards = el("div", "ae-cards", root);
  const card = (c, testid) => {
    const box = el("div", "ae-card", cards);
    if (testid) box.setAttribute("data-testid", testid);
    const parts = { label: el("div", "ae-card-label", box, c ? c.label : ""),
                    value: el("div", "ae-card-value", box, c ? c.value : ""),
                    note: el("div", "ae-card-note", box, c ? c.note : "") };
    return parts;
  };
  card(d.cards[0]);
  card(d.cards[1]);
  ui.advCard = card(null, "scrub-adv-card");
  ui.advCard.label.textContent = "Adversarial prediction";
  card(d.cards[2]);

  const images = el("div", "ae-images", root);
  const figure = (testid, drawn) => {
    const f = el("figure", "ae-figure" + (d.pixelated ? " ae-pixelated" : ""), images);
    if (testid) f.setAttribute("data-testid", testid);
    const img = el(drawn ? "canvas" : "img", "", f); // FGSM's frames are drawn here, from the sign map
    img.setAttribute("role", "img");
    const cap = el("figcaption", "", f);
    return { fig: f, img, cap };
  };
  const orig = figure("scrub-orig");
  orig.img.src = d.orig;
  orig.img.alt = "original image";
  orig.cap.textContent = d.text.orig_caption;
  ui.pert = figure("scrub-pert", !!d.direction);
  ui.pert.img.setAttribute("aria-label", "perturbation, amplified");
  ui.adv = figure("scrub-adv", !!d.direction);
  ui.adv.img.setAttribute("aria-label", "adversarial image");
  ui.adv.cap.setAttribute("data-testid", "scrub-adv-caption");

  const barRow = el("div", "ae-bar-cols", root);
  bars(el("div", "ae-bars", barRow), "Clean image: top 5", d.clean_top, d.names, d.y);
  ui.bars = el("div", "ae-bars", barRow);
  ui.bars.setAttribute("data-testid", "scrub-adv-bars");

  el("h3", "ae-subheader", root, "Confidence against ε");
  ui.chart = el("div", "ae-chart", root);
  ui.chart.innerHTML = d.chart.svg; // built and escaped in explorer/plots/scrub.py
  ui.chart.setAttribute("data-testid", "scrub-chart");
  ui.svg = ui.chart.querySelector("svg");
  ui.marker = ui.chart.querySelector('[data-role="marker"]');
  ui.markerLabel = ui.chart.querySelector('[data-role="marker-label"]');
  return ui;
}

function decode(src) {
  return new Promise((resolve, reject) => {
    const im = new Image();
    im.onload = () => {
      const c = document.createElement("canvas");
      c.width = im.naturalWidth;
      c.height = im.naturalHeight;
      const g = c.getContext("2d");
      g.drawImage(im, 0, 0);
      resolve(g.getImageData(0, 0, c.width, c.height));
    };
    im.onerror = reject;
    im.src = src;
  });
}

// FGSM at ε: clip(x + ε·sign) per channel, and the perturbation amplified around mid-grey (as the server's
// perturbation_image): the same pixels as the server's frames to within one 8-bit level of rounding.
function paintDirection(ui, pix, eps) {
  const { orig, dir } = pix, n = orig.data.length;
  const adv = new ImageData(orig.width, orig.height), pert = new ImageData(orig.width, orig.height);
  const step = eps * 255;
  let peak = 0;
  for (let k = 0; k < n; k += 4) {
    for (let c = 0; c < 3; c++) {
      const s = dir.data[k + c] > 191 ? 1 : dir.data[k + c] < 64 ? -1 : 0;
      const v = Math.min(255, Math.max(0, orig.data[k + c] + step * s));
      adv.data[k + c] = Math.round(v);
      const delta = v - orig.data[k + c];
      if (Math.abs(delta) > peak) peak = Math.abs(delta);
    }
    adv.data[k + 3] = 255;
  }
  const scale = peak > 0 ? 127.5 / peak : 0;
  for (let k = 0; k < n; k += 4) {
    for (let c = 0; c < 3; c++) pert.data[k + c] = Math.round(127.5 + scale * (adv.data[k + c] - orig.data[k + c]));
    pert.data[k + 3] = 255;
  }
  for (const [box, data] of [[ui.adv.img, adv], [ui.pert.img, pert]]) {
    box.width = data.width;
    box.height = data.height;
    box.getContext("2d").putImageData(data, 0, 0);
  }
}

function show(root, i) {
  const d = root._data, ui = root._ui, f = d.frames[i];
  root._index = i;
  ui.slider.value = String(i);
  ui.slider.setAttribute("aria-valuetext", d.eps_text[i]);
  ui.value.textContent = "ε = " + d.eps_text[i];
  const spacing = d.eps_text.length > 1 ? d.eps_text[1] : d.eps_text[0];
  ui.grid.textContent = `Grid ε used: ${d.eps_text[i]} = ${Number(d.eps[i].toPrecision(6))} in [0, 1] pixel units `
    + `(point ${i + 1} of ${d.eps.length}, spacing ${spacing}). ${d.attack_name}: ${d.text.summary}`;
  ui.advCard.value.textContent = f.label;
  ui.advCard.note.replaceChildren();
  el("span", "", ui.advCard.note, f.note);
  el("span", "ae-" + f.tone, ui.advCard.note, f.verdict);
  if (d.direction) {
    if (root._pixels) paintDirection(ui, root._pixels, d.eps[i]);
    else root._decoding.then(() => { if (root._index === i) paintDirection(ui, root._pixels, d.eps[i]); });
  } else {
    ui.pert.img.src = f.pert;
    ui.adv.img.src = f.adv;
  }
  ui.pert.cap.textContent = f.pert_caption;
  ui.adv.cap.textContent = f.adv_caption;
  ui.adv.fig.setAttribute("data-frame", String(i));
  bars(ui.bars, f.bars_title, f.top, d.names, d.y);
  if (ui.marker) {
    const c = d.chart, span = (c.xmax - c.xmin) || 1;
    const x = c.x0 + (d.eps_x[i] - c.xmin) / span * (c.x1 - c.x0);
    ui.marker.setAttribute("x1", x.toFixed(1));
    ui.marker.setAttribute("x2", x.toFixed(1));
    const right = x > (c.x0 + c.x1) / 2;
    ui.markerLabel.setAttribute("x", (x + (right ? -5 : 5)).toFixed(1));
    ui.markerLabel.setAttribute("text-anchor", right ? "end" : "start");
    ui.markerLabel.textContent = `current ε = ${Number(d.eps_x[i].toPrecision(3))}${d.x_suffix}`;
  }
}

export default function (component) {
  const { parentElement, setStateValue, setTriggerValue } = component;
  let data = component.data;
  if (!data) return;
  if (data.lite) {
    const heavy = FRAMES.get(data.sweep);
    if (!heavy) { setTriggerValue("need_frames", true); return; } // the server sends them on the next run
    data = { ...data, ...heavy };
  } else {
    FRAMES.clear(); // one sweep at a time per page: the last one is all a lite update can refer to
    FRAMES.set(data.sweep, Object.fromEntries(HEAVY.map((k) => [k, data[k]])));
  }
  let root = parentElement.querySelector(":scope > .ae-scrub");
  if (!root) root = el("div", "ae-scrub", parentElement);
  root.setAttribute("data-testid", "scrub");
  const fresh = root._sweep !== data.sweep;
  root._data = data;
  if (fresh) {
    root._sweep = data.sweep;
    root._committed = data.index;
    root._ui = build(root, data);
    root._pixels = null;
    root._decoding = data.direction
      ? Promise.all([decode(data.orig), decode(data.direction)]).then(([orig, dir]) => { root._pixels = { orig, dir }; })
      : Promise.resolve();
    const commit = () => {
      clearTimeout(root._timer);
      root._timer = setTimeout(() => {
        if (root._committed !== root._index) {
          root._committed = root._index;
          setStateValue("index", root._index);
        }
      }, COMMIT_MS);
    };
    root._ui.slider.addEventListener("input", () => { show(root, Number(root._ui.slider.value)); commit(); });
    root._ui.svg?.addEventListener("click", (ev) => {
      const c = data.chart, box = root._ui.svg.getBoundingClientRect();
      const sx = (ev.clientX - box.left) / box.width * root._ui.svg.viewBox.baseVal.width;
      const ex = c.xmin + (sx - c.x0) / (c.x1 - c.x0) * (c.xmax - c.xmin);
      let best = 0;
      data.eps_x.forEach((v, k) => { if (Math.abs(v - ex) < Math.abs(data.eps_x[best] - ex)) best = k; });
      show(root, best);
      root._ui.slider.focus();
      commit();
    });
    show(root, data.index);
  } else if (data.index !== root._serverIndex && data.index !== root._committed) {
    show(root, data.index); // the server moved it (a shared link, a lesson step, the presenter)
    root._committed = data.index;
  }
  root._serverIndex = data.index;
}
