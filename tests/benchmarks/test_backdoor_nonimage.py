"""The non-image Neural Cleanse benchmark's split: the test set is the committed one, disjoint from
the development set, and its triggers stamp what they say."""

import hashlib
import json

import torch

from benchmarks import bench_backdoor_nonimage as bn

#: The test set as committed before it was first measured. Changing a test case means a new test
#: set, committed on its own before it is measured, with a new digest here.
COMMITTED_TEST_SET_SHA256 = "161305ce64b827abfd453ff51e600e4ccc09885bfda383119b3858b201c3c12e"


def test_test_set_is_the_committed_one_and_disjoint_from_the_development_set():
    assert hashlib.sha256(json.dumps(bn.CASES["test"]).encode()).hexdigest() == COMMITTED_TEST_SET_SHA256
    assert not {c[3] for c in bn.CASES["dev"]} & {c[3] for c in bn.CASES["test"]}
    for name in ("dev", "test"):  # every family has clean and poisoned cases
        for family in ("freq", "bump", "blobs", "cancer", "wine"):
            assert {p for f, _, p, _ in bn.CASES[name] if f == family} == {False, True}, (name, family)


def test_triggers_stamp_a_window_of_a_signal_or_features_of_a_row():
    x = torch.zeros(4, 1, 48)
    stamp, what = bn.stamp_of("bump", x.shape, torch.Generator().manual_seed(5))
    changed = (stamp(x) != 0).any(0).squeeze(0).nonzero().squeeze(1)
    width, start = (int(v) for v in what.split()[1].split("@"))
    assert changed.tolist() == list(range(start, start + width)) and 3 <= width <= 5
    assert stamp(x).abs().max() == 2.5 and torch.equal(x, torch.zeros(4, 1, 48))  # a copy
    rows = torch.zeros(3, 10)
    stamp, what = bn.stamp_of("blobs", rows.shape, torch.Generator().manual_seed(6))
    out = stamp(rows)
    cols = (out != 0).any(0).nonzero().squeeze(1)
    assert 1 <= len(cols) <= 3 and set(out[:, cols].abs().flatten().tolist()) == {3.0}
