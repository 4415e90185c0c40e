"""explorer.urlstate without a page: escaping, number parsing and typed parameters."""

import re

import pytest

from explorer import urlstate
from explorer.urlstate import BadValue, escape_md, parse_float, parse_int, unescape_md

PAYLOADS = ["[Session expired - log in again](http://x.example)", "<img src=x onerror=alert(1)>", "**b** _i_",
            ":red[x] :material/home:", "$x^2$", "`code`", "www.evil.example", "a@b.example", "- item", "1. item",
            "# head", "> quote", "~~s~~", "a|b", "&lt;", "back\\slash", "great_white_shark"]


@pytest.mark.parametrize("text", PAYLOADS)
def test_escape_md_keeps_the_text_and_defuses_the_markup(text):
    out = escape_md(text)
    assert unescape_md(out) == text  # a reader sees exactly what was typed
    assert not re.search(r"(?<!\\)[\[\]<>*_`$~|&@:]", out)  # every markup character is escaped
    assert not re.search(r"(?<!\\)\.(?=[A-Za-z])", out)  # no bare domain or file-name dot


def test_escape_md_flattens_newlines_and_leaves_plain_numbers_alone():
    assert escape_md("a\n\n# b") == "a \\# b"
    assert escape_md("0.33") == "0.33" and escape_md("-4") == "-4"


@pytest.mark.parametrize("text", ["1" * 20_000, "12.5", "1e3", "", " ", "0x10", "٣", "--1", "nan"])
def test_bad_whole_numbers_get_one_clean_error(text):
    with pytest.raises(BadValue, match="^not a whole number$"):
        parse_int(text)


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e999", "9" * 5000, "1/0", "abc", ""])
def test_bad_numbers_get_one_clean_error(text):
    with pytest.raises(BadValue, match="^not a (finite )?number$"):
        parse_float(text)


def test_good_numbers():
    assert parse_int(" +12 ") == 12 and parse_int("-3") == -3
    assert parse_float("8/255") == pytest.approx(8 / 255) and parse_float(".5") == 0.5


def test_typed_parameters_parse_check_and_drop_defaults():
    n = urlstate.integer("n", 300, 50, 1000, step=50)
    assert n.parse("350") == 350 and n.text(300) is None and n.text(350) == "350"
    for bad in ("351", "0", "2000", "many"):
        with pytest.raises(ValueError):
            n.parse(bad)
    wd = urlstate.choice("wd", 0.0, (0.0, 1e-5, 1e-4))
    assert wd.parse("1e-4") == 1e-4 and wd.parse("0.0001") == 1e-4 and wd.text(1e-4) == "0.0001"
    eps = urlstate.number("eps", 0.3, 0.05, 1.0, step=0.05)
    assert eps.parse("0.35") == pytest.approx(0.35) and eps.text(0.3) is None
    with pytest.raises(ValueError):
        eps.parse("0.33")
    flag = urlstate.flag("adv", False)
    assert flag.parse("on") is True and flag.text(True) == "1" and flag.text(False) is None
    models = urlstate.members("models", ("a", "b"), ("a", "b", "c"), most=2)
    assert models.parse("c,a") == ("c", "a") and models.text(["a", "b"]) is None and models.text(["c"]) == "c"
    with pytest.raises(ValueError):
        models.parse("a,b,c")
