"""``benchmarks/backdoor_rnp.py --repair`` took every name's config and rule by slicing off its first four characters
(``m[4:]``), as if every name began with ``rnp:``: a name without it (``0.2:0.01:0.2:20@k4``) failed only when its
fold came, with "not enough values to unpack", after the digits were loaded and earlier folds ran, and a rule that is
neither ``t`` nor ``k`` (``@x4``) pruned as ``@k4`` (leftovers_s31c). The names are parsed by one function and
checked before any fold runs."""

from __future__ import annotations

import logging
import sys

import pytest
import torch

from benchmarks import backdoor_rnp as rnp


def test_a_method_gives_its_config_and_rule() -> None:
    assert rnp.method_parts("rnp:0.2:0.01:0.2:20@k4") == ("0.2:0.01:0.2:20", "k4")
    assert rnp.method_parts("rnp:0.5:0.001:0.01:20@t0.1") == ("0.5:0.001:0.01:20", "t0.1")
    assert rnp.config_values("0.5:0.001:0.01:20") == (0.5, 0.001, 0.01, 20)


@pytest.mark.parametrize("name", ["0.2:0.01:0.2:20@k4", "rnp:0.2:0.01:0.2:20", "rnp:0.2:0.01:0.2:20@x4",
                                  "rnp:0.2:0.01:20@k4", "rnp:0.2:0.01:0.2:20@k", "reversed"])
def test_a_name_that_is_no_rnp_method_is_refused_naming_it(name: str) -> None:
    with pytest.raises(ValueError, match=r"Expected each --repair method to be rnp:<floor:unlearn_lr:mask_lr:epochs>"
                                         r"@t<threshold> or @k<k> .* but got " + repr(name).replace(".", r"\.")):
        rnp.method_parts(name)


def test_the_script_refuses_the_name_before_any_fold_runs(monkeypatch, tmp_path, capsys) -> None:
    def no_folds():
        raise AssertionError("the folds started: the name was not checked first")

    monkeypatch.setattr(rnp.bp, "load_all_digits", no_folds)
    monkeypatch.setattr(rnp, "CACHE", tmp_path)
    monkeypatch.setattr(sys, "argv", ["backdoor_rnp.py", "--repair", "0.2:0.01:0.2:20@k4", "--tag", "test"])
    level, threads = logging.getLogger("lightning.pytorch").level, torch.get_num_threads()
    with pytest.raises(SystemExit) as caught:
        rnp.main()
    assert caught.value.code == 2  # argparse's error
    # refused before the run's set-up: Lightning's logs (other tests read them) and torch's threads left as they were
    assert (logging.getLogger("lightning.pytorch").level, torch.get_num_threads()) == (level, threads)
    assert "but got '0.2:0.01:0.2:20@k4'" in capsys.readouterr().err
