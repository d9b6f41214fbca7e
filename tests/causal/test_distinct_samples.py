"""distinct_samples (the causal graph's repeated-samples warning, the layer map's row count) tells rows apart by a
random projection, then compares only the rows whose projections coincide: the count equals torch.unique's over a
float64 copy of the probe, which it no longer makes."""

import torch

from lightning_causal.causal.structure.layer_trace import distinct_samples


def _reference(xs):
    n = xs[0].shape[0]
    return int(torch.unique(torch.cat([x.reshape(n, -1).double() for x in xs], 1), dim=0).shape[0])


def test_counts_equal_torch_unique_over_the_whole_probe():
    g = torch.Generator().manual_seed(0)
    for trial in range(40):
        n = int(torch.randint(2, 30, (1,), generator=g))
        base = torch.randint(0, 3, (n, 5), generator=g).float() / 2  # few values: many equal rows
        picks = torch.randint(0, n, (n,), generator=g)
        x = base[picks]
        ids = torch.randint(0, 2, (n, 3), generator=g)  # a second input: rows equal in x may differ here
        half = x.half()
        for xs in ((x,), (x, ids), (half,), (ids,)):
            assert distinct_samples(xs) == _reference(xs), (trial, [t.dtype for t in xs])


def test_rows_that_differ_in_one_element_of_an_image_are_told_apart():
    x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    x[5] = x[2]
    x[6] = x[2]
    x[6, 1, 7, 7] += 1e-6  # one element apart from row 2
    assert distinct_samples((x,)) == 7
