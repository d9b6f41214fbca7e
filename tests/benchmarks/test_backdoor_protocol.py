"""The backdoor benchmark's pre-registered split: the test set is the committed one."""

import torch

from benchmarks import backdoor_protocol as bp

#: The test set as committed before it was first measured (issue 17). Changing a test case means a
#: new test set: it must be committed on its own, before it is measured, with a new digest here.
COMMITTED_TEST_SET_SHA256 = "586bbf1e98fe68fd2a01f6714b93e701c586b76e7e7c267ec289a8ea5aa7bd02"


def test_test_set_is_the_committed_one():
    assert bp.cases_digest(bp.TEST_CASES) == COMMITTED_TEST_SET_SHA256 == bp.TEST_SET_SHA256
    assert len(bp.TEST_CASES) == 30
    assert bp.TEST_CASES[0] == bp.Case("patch", 1000, 3, 0.01, "dot1", (0, 7), "corner")


def test_case_lists_are_the_documented_draws_and_disjoint():
    assert bp.draw_cases(17, 12, 4, 2, 100) == bp.DEV_CASES
    assert bp.draw_cases(1717, 20, 6, 4, 1000) == bp.TEST_CASES
    assert not {c.seed for c in bp.DEV_CASES} & {c.seed for c in bp.TEST_CASES}
    dev2 = {c.seed for c in bp.DEV2_CASES}
    assert len(dev2) == 24 and not dev2 & {c.seed for c in bp.DEV_CASES + bp.TEST_CASES}
    assert bp.cases_digest(bp.DEV_CASES) != bp.TEST_SET_SHA256


def test_test_set_covers_the_trigger_families():
    patches = [c for c in bp.TEST_CASES if c.family == "patch"]
    pixels = {int(c.trigger().mask.sum()) for c in patches}
    assert pixels == set(range(1, 10))
    assert {c.where for c in patches} == {"corner", "edge", "centre", "anywhere"}
    assert {c.rate for c in bp.TEST_CASES if c.family != "clean"} == {0.01, 0.1}
    blends = [c for c in bp.TEST_CASES if c.family == "blended"]
    assert sorted(c.opacity for c in blends) == [0.1, 0.1, 0.15, 0.15, 0.2, 0.2]
    assert sum(c.family == "clean" for c in bp.TEST_CASES) * bp.FOLDS == 20  # 20 clean models
    assert len({c.target for c in bp.TEST_CASES if c.target is not None}) >= 8


def test_folds_cover_every_digit_once_and_repair_sets_are_nested():
    folds = bp.fold_indices(1797)
    assert sorted(torch.cat(folds).tolist()) == list(range(1797)) and [len(f) for f in folds] == [360, 360, 359, 359, 359]
    digits = (torch.rand(50, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.arange(50) % 10)
    data = bp.fold_data(bp.DEV_CASES[1], 2, digits)
    assert len(data.y_eval) == 10 and len(data.y_train) == 40
    assert int((data.y_train != data.y_clean).sum()) == 4  # 10% of 40 poisoned and relabelled to the target 8
    small, large = bp.repair_rows(data, 0.05), bp.repair_rows(data, 0.2)
    assert len(small) == 2 and len(large) == 8 and torch.equal(large[:2], small)
