"""Figures hand matplotlib NumPy arrays: a torch tensor given to ``imshow`` raised NumPy's
DeprecationWarning ("__array__ implementation doesn't accept a copy keyword") about 20 times per audit."""

import warnings

import pytest
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from lightning_causal.audits import CaptumBaseline, CounterfactualAudit, InputEffectAudit, Probe
from lightning_causal.reporting import TensorBoardRenderer


@pytest.mark.parametrize(("shape", "kind"), [((3, 40), "sequence"), ((1, 8, 8), None), ((3, 8, 8), None)])
def test_rendering_image_and_sequence_audits_raises_no_deprecation_warning(tmp_path, shape, kind):
    torch.manual_seed(0)
    size = int(torch.tensor(shape).prod())
    model = nn.Sequential(nn.Flatten(), nn.Linear(size, 3)).eval()
    x, y = torch.rand(12, *shape), torch.randint(0, 3, (12,))
    results = [a.run(model, Probe(x, y)) for a in (InputEffectAudit(ace_values=None), CounterfactualAudit(max_samples=2),
                                                   CaptumBaseline(methods=["Saliency"]))]
    writer = SummaryWriter(str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        TensorBoardRenderer(figure_kind=kind).render(writer, 0, results, x, probe_labels=y)
    writer.close()
