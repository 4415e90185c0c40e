"""AppTest of Attack Studio: the slider flips the default digit without recomputing, every attack renders,
targeted and minimal attacks, bad links, the shared attack settings, and a torchvision model with fabricated
weights on the cat photo."""

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.attacks import ATTACKS, GRADIENT_ATTACKS
from explorer.runs import rules
from explorer.models.imagenet import save_random_checkpoint

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
PAGE = "pages/attack_studio.py"


def run_page(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    at.switch_page(PAGE)
    return at.run()


def scrubber(at: AppTest):
    """The ε scrubber element (a ``st.components.v2`` component), or None (minimal attacks have none)."""
    def walk(node):
        for c in getattr(node, "children", {}).values():
            if str(getattr(c, "key", "")).startswith("as_scrub_"):
                return c
            found = walk(c)
            if found is not None:
                return found
        return None
    return walk(at.main)


_FRAMES: dict[str, dict] = {}  # sweep id -> frames, as the browser keeps them between lite updates


def scrub(at: AppTest) -> dict:
    """The data the browser holds: every frame of the sweep, the index shown, the fixed cards. A rerun after a
    slider commit sends a lite update (no frames) that refers to the frames sent before, by sweep id."""
    element = scrubber(at)
    assert element is not None, "no ε scrubber on the page"
    data = json.loads(element.proto.json)
    if data["lite"]:
        assert "frames" not in data and data["sweep"] in _FRAMES, "a lite update for frames never sent"
        return {**data, **_FRAMES[data["sweep"]]}
    _FRAMES[data["sweep"]] = {k: data[k] for k in ("frames", "orig", "chart", "direction")}
    return data


def card(at: AppTest, label: str) -> tuple[str, str]:
    """(value, note) of a summary card: the scrubber's (at its current frame) or a markdown card
    (``:gray[label]`` / ``#### value`` / note)."""
    if scrubber(at) is not None:
        data = scrub(at)
        if label == "Adversarial prediction":
            f = data["frames"][data["index"]]
            return f["label"], f["note"] + f["verdict"]
        for c in data["cards"]:
            if c["label"] == label:
                return c["value"], c["note"]
    for m in at.markdown:
        if m.value.startswith(f":gray[{label}]"):
            _, rest = m.value.split("#### ", 1)
            value, _, note = rest.partition("\n")
            return value, note
    raise AssertionError(f"no card {label!r}")


def charts(at: AppTest) -> dict[str, dict]:
    return {c.proto.id.rsplit("-", 1)[-1]: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def qp(at: AppTest, key: str):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) else value


def move(at: AppTest, eps: float) -> AppTest:
    """What the browser sends when the slider rests on ``eps``: the grid index, as the component's state."""
    data = scrub(at)
    index = min(range(len(data["eps"])), key=lambda i: abs(data["eps"][i] - eps))
    at.session_state[scrubber(at).key] = {"index": index}
    return at.run()


def test_default_digit_flips_when_the_slider_passes_the_flip_eps():
    at = run_page()
    assert not at.exception and not at.error and not at.warning
    assert at.title[0].value == "Attack Studio"
    assert card(at, "True class")[0] == "7"
    flip = float(card(at, "Flip ε")[0])
    grid = rules.eps_grid("fgsm", False, (1, 8, 8))
    data = scrub(at)
    assert data["eps"] == pytest.approx(list(grid)) and data["eps_text"][:2] == ["0", "0.007937"]  # pixel units
    below = max(e for e in grid if e < flip)
    above = min(e for e in grid if e > flip)
    move(at, below)
    assert not at.exception and card(at, "Adversarial prediction")[0] == "7"
    assert "still the true class" in card(at, "Adversarial prediction")[1]
    assert float(qp(at, "eps")) == pytest.approx(below, rel=1e-5)
    move(at, above)
    assert not at.exception and card(at, "Adversarial prediction")[0] != "7"
    assert "label flipped" in card(at, "Adversarial prediction")[1]
    assert float(qp(at, "eps")) == pytest.approx(above, rel=1e-5)
    assert json.loads(scrubber(at).proto.json)["lite"]  # a slider commit does not resend the 64 frames
    frames = scrub(at)["frames"]
    assert len(frames) == len(grid) and all("adv" not in f for f in frames)  # FGSM: the browser draws them
    assert scrub(at)["direction"].startswith("data:image/png;base64,")  # ... from the sign map and the original
    assert scrub(at)["orig"].startswith("data:image/png;base64,")
    # the frames are the sweep: the label flips exactly between the two grid values around the flip ε
    i_below, i_above = list(grid).index(below), list(grid).index(above)
    assert frames[i_below]["pred"] == 7 != frames[i_above]["pred"]
    svg = scrub(at)["chart"]["svg"]
    for legend in ("p(7) · FGSM", "p(7) · PGD (L∞)", "margin · FGSM", "FGSM flips at"):
        assert legend in svg
    assert 'data-role="marker"' in svg


@pytest.mark.parametrize("attack", ATTACKS)
def test_each_attack_renders(attack):
    # DeepFool's steps are its cap: 5 iterations stop short of the boundary on the default digit (a warning
    # says so), the default 10 reach it
    at = run_page(attack=attack, steps="10" if attack == "deepfool" else "5")
    assert not at.exception and not at.error and not at.warning
    assert at.selectbox(key="as_attack").value == attack and qp(at, "attack") == attack
    assert card(at, "Adversarial prediction")[0]
    specs = charts(at)
    if attack in GRADIENT_ATTACKS:
        data = scrub(at)
        assert len(data["frames"]) == len(data["eps"]) == 64 and "<svg" in data["chart"]["svg"]
        if attack == "fgsm":
            assert data["direction"] and all("adv" not in f for f in data["frames"])
        else:  # an iterative attack's frames are its kept adversarials, exact PNGs at the model's resolution
            assert data["direction"] is None
            assert all(f["adv"].startswith("data:image/png;base64,") for f in data["frames"])
        assert [t[0] for t in data["frames"][data["index"]]["top"]][:1] == [data["frames"][data["index"]]["pred"]]
    else:
        assert scrubber(at) is None and {"as_top_clean", "as_top_adv"} <= set(specs)
        assert card(at, "Smallest perturbation found")[0].startswith("L2 ")
    assert ("as_trace" in specs) == (attack != "fgsm")  # per-step loss and margin of iterative attacks
    assert {m.label.split(" (")[0] for m in at.metric} == {"L∞", "L2", "PSNR", "SSIM"}
    command = f"python -m explorer attack --model digits-cnn --image digits:0 --attack {attack}"
    assert at.code[0].value.startswith(command)


def test_targeted_attack_reaches_the_target_at_a_large_eps():
    at = run_page(attack="pgd", target="3")
    assert not at.exception and not at.warning
    assert at.toggle(key="as_targeted").value is True
    assert at.selectbox(key="as_target_small").value == 3
    move(at, rules.eps_grid("pgd", False, (1, 8, 8))[-1])
    value, note = card(at, "Adversarial prediction")
    assert value == "3" and "reached the target" in note
    assert qp(at, "target") == "3" and "--target 3" in at.code[0].value
    at.toggle(key="as_targeted").set_value(False).run()
    assert not at.exception and qp(at, "target") is None


def test_minimal_attacks_report_the_smallest_perturbation():
    at = run_page(attack="deepfool")
    assert not at.exception
    l2 = card(at, "Smallest perturbation found")[0]
    assert 0 < float(l2.split()[1]) < 2
    at.selectbox(key="as_attack").set_value("cw").run()
    assert not at.exception and card(at, "Smallest perturbation found")[0].startswith("L2 ")
    assert "as_trace" in charts(at)


@pytest.mark.parametrize("params, text", [
    ({"eps": "2"}, "outside [0, 1]"), ({"eps": "nope"}, "not a number"), ({"attack": "laser"}, "Unknown attack"),
    ({"steps": "5000"}, "cap of"), ({"steps": "x"}, "not a whole number"), ({"target": "42"}, "target"),
    ({"target": "7"}, "is the true class"),
])
def test_bad_url_values_warn_and_the_page_keeps_running(params, text):
    at = run_page(**params)
    assert not at.exception and not at.error
    assert any(text in w.value for w in at.warning), [w.value for w in at.warning]
    assert card(at, "Adversarial prediction")[0]
    if "eps" in params:
        assert float(qp(at, "eps")) == pytest.approx(0.15, abs=0.005)  # the default, on the grid


def test_steps_cap_comes_from_the_server_setting(monkeypatch):
    monkeypatch.setenv("EXPLORER_MAX_STEPS", "20")
    at = run_page(attack="bim", steps="50")
    assert any("cap of 20" in w.value for w in at.warning)
    assert at.number_input(key="as_steps").value == 10


def test_unavailable_model_is_one_message(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    at = run_page(model="resnet18", image="photo:chelsea", steps="7")
    assert not at.exception
    # ONE card with what to run: the command appears once on the whole page (sidebar included), no error boxes
    texts = [c.value for c in at.code] + [e.value for e in at.error] + [m.value for m in at.markdown] + \
        [c.value for c in at.caption] + [i.value for i in at.info] + [w.value for w in at.warning]
    assert sum("prefetch resnet18" in t for t in texts) == 1, texts
    assert not at.error
    assert any("is not ready on this machine" in m.value for m in at.markdown)
    assert len(at.get("image")) >= 1  # the picked photo is still shown
    assert qp(at, "image") == "photo:chelsea" and qp(at, "steps") == "7"  # the user's other settings stay
    # the picker groups: ready models first, then the ones that need a download, marked as such
    box = at.selectbox(key="model_pick")
    labels = list(box.options)  # AppTest lists the options as the picker shows them
    assert labels.index("Digits CNN") < labels.index("ResNet-18 · needs download"), labels


def test_moving_the_slider_never_recomputes_the_sweep(monkeypatch):
    from explorer.caching import attacks as attack_cache
    from explorer.runs import requests as run_requests  # the cached function runs a SweepRequest

    calls = []
    real = run_requests.sweep

    def counting(*args, **kwargs):
        calls.append(args[3].attack)
        return real(*args, **kwargs)

    attack_cache.eps_sweep.clear()
    monkeypatch.setattr(run_requests, "sweep", counting)
    at = run_page(attack="pgd")
    assert not at.exception and sorted(calls) == ["fgsm", "pgd"]  # the attack and its comparison
    grid = rules.eps_grid("pgd", False, (1, 8, 8))
    for e in (grid[3], grid[40], grid[-1], grid[3]):
        move(at, e)
        assert not at.exception
    assert sorted(calls) == ["fgsm", "pgd"]


def test_shared_settings_reach_gradient_maps():
    at = run_page(attack="bim", steps="7")
    grid = rules.eps_grid("bim", False, (1, 8, 8))
    move(at, grid[25])
    shared = at.session_state["shared_attack"]
    assert shared == {"attack": "bim", "eps": f"{grid[25]:.6g}", "steps": "7", "target": None}
    at.switch_page("pages/gradient_maps.py").run()
    assert not at.exception and not at.warning
    assert at.selectbox(key="gm_attack").value == "bim"
    assert at.slider(key="gm_eps_small").value == pytest.approx(grid[25], abs=1e-4)
    assert at.number_input(key="gm_steps").value == 7


def test_the_page_command_reproduces_the_adversarial(tmp_path):
    """The record's command run through the CLI gives the adversarial the page shows (PGD at a grid ε)."""
    import subprocess
    import sys

    at = run_page(attack="pgd")
    move(at, rules.eps_grid("pgd", False, (1, 8, 8))[12])
    command = at.code[0].value.split()
    assert command[:4] == ["python", "-m", "explorer", "attack"]
    out = subprocess.run([sys.executable, "-m", "explorer", *command[3:], "--json"], cwd=Path(APP).parent,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rec = json.loads(out.stdout)
    assert rec["labels"]["adversarial_prediction"]["name"] == card(at, "Adversarial prediction")[0]
    l2 = {m.label: m.value for m in at.metric}["L2 (length of δ)"]
    assert f"{rec['perturbation']['l2']:.4f}" == l2


def finish_jobs(at: AppTest, timeout: float = 300.0) -> AppTest:
    """Wait for the queued jobs (a photo model's sweep is heavy: it runs on the job queue), then rerun."""
    import time

    from explorer.jobs import job_queue

    q = job_queue()
    end = time.monotonic() + timeout
    while any(j.state in ("queued", "running") for j in list(q._jobs.values())):
        assert time.monotonic() < end, "the queued sweep did not finish"
        time.sleep(0.1)
    return at.run()


def test_torchvision_model_with_fabricated_weights_makes_the_cat_a_vulture(tmp_torch_home):
    save_random_checkpoint("resnet18")
    from explorer.models import get_spec

    vulture = get_spec("resnet18").class_names.index("vulture")
    at = run_page(model="resnet18", image="photo:chelsea", target=str(vulture))
    assert not at.exception
    if scrubber(at) is None:  # the sweep is a queued job: its status is where the slider will be
        assert any("values of ε" in str(p.proto.text) for p in at.get("progress"))
        finish_jobs(at)
    assert not at.exception and not at.error and not at.warning
    assert at.sidebar.selectbox(key="model_pick").value == "resnet18"
    assert at.toggle(key="as_targeted").value is True
    assert at.selectbox(key="as_target_photo").value == vulture
    data = scrub(at)
    assert data["eps"][data["index"]] == pytest.approx(rules.eps_grid("fgsm", True, (3, 224, 224))[31])
    assert data["eps_text"][-1] == "16/255"  # ε in k/255 for photos
    # FGSM on a photo: the original (lossless) and the sign map travel, not 128 frames
    assert data["orig"].startswith("data:image/png;base64,") and data["direction"].startswith("data:image/png")
    assert len(scrubber(at).proto.json) < 1_000_000
    assert at.toggle(key="as_overlay").value is False  # PGD overlay: opt-in for photo models on a CPU
    assert "vulture" in at.code[0].value or f"--target {vulture}" in at.code[0].value
    move(at, rules.eps_grid("fgsm", True, (3, 224, 224))[-1])
    assert not at.exception and qp(at, "target") == str(vulture)
    assert card(at, "Adversarial prediction")[0]


def test_default_eps_is_exactly_the_shared_default_and_the_digit_downloads_twice():
    at = run_page()
    assert not at.exception
    data = scrub(at)
    assert data["eps"][data["index"]] == 0.15  # the other pages' default, not the grid's 0.1508
    assert qp(at, "eps") == "0.15"
    command = next(c.value for c in at.code if "python -m explorer attack" in c.value)
    assert " --eps 0.15 " in command + " ", command
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Adversarial PNG (8×8)" in labels and "Upscaled view (PNG)" in labels, labels


def test_cw_that_misses_its_target_does_not_claim_a_smallest_perturbation():
    # one Adam step with a tiny c cannot move the digit to class 3: the page must say the goal was not reached
    at = run_page(attack="cw", target="3")
    assert not at.exception
    at.number_input(key="as_p_cw_adam_steps").set_value(1)
    at.number_input(key="as_p_cw_c").set_value(0.01).run()
    value, _ = card(at, "Perturbation (goal not reached)")
    assert value.startswith("L2 ")
    assert any("did **not** reach its goal" in w.value and "more Adam steps, a larger c" in w.value
               for w in at.warning)


def number_labels(at: AppTest) -> list[str]:
    """The labels of the page's number boxes (the sidebar's upload form left out)."""
    return [n.label for n in at.number_input if not n.form_id]


@pytest.mark.parametrize("attack, steps_box", [
    ("bim", True), ("pgd", True), ("mifgsm", True), ("apgd", True), ("deepfool", True),
    ("fgsm", True),  # the PGD curve overlaid on FGSM's chart takes the steps
    ("cw", False),  # its steps are the "Adam steps" of each binary-search round
])
def test_the_steps_box_shows_only_for_attacks_that_use_it(attack, steps_box):
    at = run_page(attack=attack, steps="7")
    assert not at.exception
    labels = number_labels(at)
    assert ("Steps" in labels) == steps_box, labels
    assert labels.count("Steps") <= 1, labels
    if steps_box:
        assert at.number_input(key="as_steps").value == 7
    if attack == "cw":
        assert "Adam steps" in labels and "Steps" not in labels


def test_steps_survive_a_detour_through_cw():
    at = run_page(attack="pgd", steps="7")
    at.selectbox(key="as_attack").set_value("cw").run()
    assert not at.exception and "Steps" not in number_labels(at)
    assert qp(at, "steps") == "7"  # the link keeps the shared steps for the pages and attacks that use them
    at.selectbox(key="as_attack").set_value("pgd").run()
    assert not at.exception and at.number_input(key="as_steps").value == 7
    assert "--steps 7" in at.code[0].value


# A link per attack with every parameter away from its default (ε on the sweep's grid, as the page writes it).
FULL_LINKS = {
    "fgsm": {"range": "0.25", "eps": "0.25", "steps": "7"},
    "bim": {"range": "0.25", "eps": "0.25", "steps": "7", "alpha": "0.2", "target": "2"},
    "pgd": {"range": "0.25", "eps": "0.25", "alpha": "0.2", "seed": "7", "target": "2", "steps": "12",
            "random_start": "0"},
    "pgd-l2": {"range": "1", "eps": "0.5", "alpha": "0.3", "seed": "7", "steps": "8"},
    "mifgsm": {"range": "0.25", "eps": "0.25", "alpha": "0.15", "momentum": "0.6", "steps": "9"},
    "apgd": {"range": "0.25", "eps": "0.25", "restarts": "2", "seed": "3", "rho": "0.6", "momentum": "0.5",
             "steps": "6"},
    "apgd-l2": {"range": "1", "eps": "0.5", "restarts": "2", "seed": "3", "rho": "0.6", "momentum": "0.5",
                "steps": "6"},
    "deepfool": {"steps": "20", "overshoot": "0.05", "candidates": "5"},
    "cw": {"c": "2.5", "adam_steps": "30", "lr": "0.05", "kappa": "1", "search_steps": "2", "target": "3"},
}


def test_full_links_cover_every_attack_and_parameter():
    from explorer.attacks import registry

    assert set(FULL_LINKS) == set(registry.names())
    for name, link in FULL_LINKS.items():
        kept_default = {"random_start"} if name == "pgd-l2" else set()  # on, so that its seed is used
        assert {p.name for p in registry.get(name).params} - kept_default <= set(link), name


@pytest.mark.parametrize("attack", list(FULL_LINKS))
def test_a_full_link_reproduces_every_parameter(attack):
    from explorer.attacks import registry

    link = FULL_LINKS[attack]
    at = run_page(attack=attack, **link)
    assert not at.exception and not at.warning and not at.error
    assert {k: qp(at, k) for k in ("attack", *link)} == {"attack": attack, **link}  # the link says the same
    spec = registry.get(attack)
    for p in spec.params:  # and every widget shows the link's value
        if p.name == "steps":
            assert at.number_input(key="as_steps").value == int(link["steps"])
        elif p.kind == "bool":
            assert at.toggle(key=f"as_p_{attack}_{p.name}").value is (link.get(p.name, "1") == "1")
        else:
            assert at.number_input(key=f"as_p_{attack}_{p.name}").value == pytest.approx(float(link[p.name]))
    if "range" in link:
        assert at.selectbox(key=f"as_range_small_{spec.norm}").value == pytest.approx(float(link["range"]))
    if "target" in link:
        assert at.toggle(key="as_targeted").value is True
        assert at.selectbox(key="as_target_small").value == int(link["target"])
    command = at.code[0].value
    assert f"--attack {attack}" in command
    if not spec.minimal:
        assert f"--eps {link['eps']}" in command
