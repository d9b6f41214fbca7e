"""Session 45, final read D45 F1: 6828768d reads category codes of a probe under 64 rows on rows drawn column by column;
columns drawn apart can build an index past an embedding table (hierarchical codes: index 10 of a table of 8). On the CPU
that IndexError is passed by, but on CUDA it is a device-side assert that every later call of the fit repeats. Rows are
drawn only for a probe on the CPU (here a probe on the meta device stands for a GPU's: this machine has none)."""
from types import SimpleNamespace

import torch

from lightning_causal.audits.base import Probe
from lightning_causal.audits.category_codes import _drawn_rows


def test_rows_are_drawn_on_the_cpu_only():
    x = torch.tensor([[0, 1], [2, 0], [1, 3]])
    drawn = _drawn_rows(Probe(x))
    assert drawn is not None and drawn.inputs.shape == (64, 2)
    assert set(drawn.inputs[:, 0].tolist()) <= {0, 1, 2} and set(drawn.inputs[:, 1].tolist()) <= {0, 1, 3}
    # a Probe refuses meta tensors: the two fields _drawn_rows reads, on a device that is not the CPU
    assert _drawn_rows(SimpleNamespace(inputs=x.to("meta"), additional_forward_args=None)) is None
