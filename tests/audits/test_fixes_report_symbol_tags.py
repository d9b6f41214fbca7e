"""Class and feature names made of symbols (carried fault): ``tag_safe`` made every character other than letters,
digits, ``_``, ``.`` and ``-`` an ``_``, so an income class pair ``"<50K"``/``">50K"`` both gave the tag ``50K`` and was
refused as a clash, and a sentiment class ``"+"`` was logged as ``anomaly_index/_``. Signs are now spelled out, and a
name with no letter or digit left is spelled character by character."""

from __future__ import annotations

import unicodedata

import pytest
import torch
from torch import nn

from lightning_causal import BackdoorAudit
from lightning_causal.audits.options import check_distinct_tags, tag_safe
from lightning_causal.callbacks.posthoc import audit_model


@pytest.mark.parametrize(("names", "tags"), [
    (["-", "0", "+"], ["minus", "0", "plus"]),
    (["<50K", ">50K", "<=50K", ">=50K"], ["lt_50K", "gt_50K", "le_50K", "ge_50K"]),
    (["?", "!", "\u2605"], ["question_mark", "exclamation_mark", "black_star"]),
    (["hours/week", "capital gain", "C++", "50%"], ["hours_week", "capital_gain", "C_plus_plus", "50_pct"]),
])
def test_names_of_symbols_give_distinct_readable_tags(names, tags):
    assert [tag_safe(n) for n in names] == tags
    check_distinct_tags("class_names", names, "anomaly_index/<name>", "class")  # no clash refused


def test_the_backdoor_audit_logs_one_readable_series_per_symbol_class():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    result, = audit_model(model, BackdoorAudit(steps=1), torch.rand(8, 4), class_names=["<50K", ">50K", "-"])
    assert sorted(k for k in result.scalars if k.startswith("anomaly_index/")) == [
        "anomaly_index/gt_50K", "anomaly_index/lt_50K", "anomaly_index/minus"]


def test_names_that_still_make_one_tag_are_refused_naming_both():
    with pytest.raises(ValueError, match="'a\\+b' and 'a plus b' both give the scalar tag anomaly_index/a_plus_b"):
        check_distinct_tags("class_names", ["a+b", "a plus b"], "anomaly_index/<name>", "class")


@pytest.mark.parametrize("name", ["क्षत्रिय", "தமிழ்", "cafe\u0301"])  # a virama, a vowel sign, a decomposed accent
def test_letters_keep_their_combining_marks(name):
    """Combining marks are no letters to ``str.isalnum`` (category M): they were made ``_``, so Devanagari and Tamil
    names lost their vowel signs (``क_षत_र_य``) and a decomposed ``café`` gave ``cafe``'s tag."""
    assert tag_safe(name) == name
    bare = "".join(c for c in name if not unicodedata.category(c).startswith("M"))  # a name of other letters
    check_distinct_tags("class_names", [bare, name], "anomaly_index/<name>", "class")  # no clash refused
