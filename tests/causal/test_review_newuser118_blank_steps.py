"""overlapping_windows checks only the shifts a pair's first step that moved allows: a blank first step (silence, a
margin, left padding) is at every blank step of the sample before, and checking each of those shifts took minutes on a
[64, 512, 512] page probe (review of newuser118's b673d2c6 / 44f8f356). The answers stay those of the plain check."""

import torch

from lightning_causal.causal.engine.overlapping_windows import _candidates, overlapping_windows


def _plain(x: torch.Tensor):
    """The definition, pair by pair and shift by shift: x [N, T, F]."""
    shifts = []
    for i in range(x.shape[0] - 1):
        found = 0
        for s in range(1, x.shape[1] - 1):
            shared = x[i, s:]
            if torch.equal(x[i + 1, :x.shape[1] - s], shared) and bool((shared != shared[:1]).any()):
                found = s
                break
        shifts.append(found)
    shifts = torch.tensor(shifts)
    if not (shifts > 0).any():
        return None
    stride = int(shifts[shifts > 0].mode().values)
    pairs = int((shifts == stride).sum())
    return (pairs, x.shape[0] - 1, stride, 1) if pairs >= 4 and 2 * pairs >= x.shape[0] - 1 else None


def _blank_led(g: torch.Generator, n: int = 12, t: int = 40, f: int = 6) -> torch.Tensor:
    x = torch.randn(n, t, f, generator=g)
    x[:, :15] = -80.0  # silence first (a log-mel's floor), the same in every sample
    return x


def test_a_blank_first_step_gives_no_shift_to_check():
    x = _blank_led(torch.Generator().manual_seed(0))
    assert not _candidates(x).any()  # the first step is at steps 1..14 of every sample before it
    assert overlapping_windows(x) is None


def test_true_pairs_stay_candidates_and_answers_match_the_definition():
    g = torch.Generator().manual_seed(1)
    series = torch.randint(0, 3, (400, 2), generator=g).float()
    series[:10] = 0.0  # the series starts blank: windows whose first steps are one value
    for stride in (1, 2, 5):
        x = series.unfold(0, 16, stride).transpose(1, 2)[:20]  # [20, 16, 2]
        truth = _plain(x)
        assert truth is not None and truth[2] == stride
        assert overlapping_windows(x) == truth
    for seed in range(40):  # few values: chance matches, each pair at some shift
        x = torch.randint(0, 2, (int(3 + seed % 9), int(4 + seed % 7), 1 + seed % 2), generator=g)
        assert overlapping_windows(x) == _plain(x), seed
    x = _blank_led(g)
    assert overlapping_windows(x) == _plain(x) is None
