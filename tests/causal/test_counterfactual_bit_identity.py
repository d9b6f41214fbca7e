"""The counterfactuals that counterfactual_explanation finds, pinned bit for bit (cfspeed task).

The values were recorded from the search as it stood before its per-step overhead was cut (torch.optim.Adam,
boolean-index bookkeeping): the faster search must find exactly the same points. Cases: a small MLP with bounds;
the same with a random start (``init_noise``, a private generator), ``l2 = 0`` (polishing's knapsack), a mask and
a class per input; a tabular MLP with a one-hot group, integer columns and ``scale`` (a failed row among them);
the digits CNN with bounds [0, 1] (its changed pixels). One thread, so that no reduction splits differently.

Bit for bit holds on one CPU only: a CPU with other vector kernels (AVX-512 against AVX2) rounds the same search's
matrix products differently, and 150 steps carry that rounding to ~5e-7 of the recorded points (measured on an
AVX-512 Xeon). The points are compared within ``_ROUNDING`` (1e-5): a change to the search itself (a step, a
projection, the polish) moves them by far more, which the test still catches.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal.structure.counterfactuals import (
    CounterfactualSettings,
    counterfactual_explanation,
)
from lightning_causal.models import DigitsCNN

_ROUNDING = {"atol": 1e-5, "rtol": 0.0}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _mlp() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    return model, torch.randn(4, 4, generator=torch.Generator().manual_seed(1))


MLP = [[-1.224379301071167, -0.7307369112968445, -2.3035552501678467, -1.1061711311340332],
       [-0.1001671776175499, -0.6091889142990112, -1.765037178993225, -1.6090962886810303],
       [-0.5757278203964233, 0.4569894075393677, -0.9568697810173035, -0.17906929552555084],
       [-0.22227048873901367, 1.6871134042739868, 0.22842517495155334, 0.46763551235198975]]

MLP_NOISE_L2_0 = [[-1.5255959033966064, -0.628870964050293, -0.6539809107780457, -1.6094847917556763],
                  [-0.1001671776175499, 1.219022512435913, -0.9797722697257996, -1.6563485860824585],
                  [-0.7121446132659912, 0.7717461585998535, -0.777314305305481, -0.25145524740219116],
                  [-0.3245355188846588, 1.6871134042739868, 0.22842517495155334, 0.10093316435813904]]

TABULAR = [[0.6613521575927734, 0.266924113035202, 1.0, 0.0, 0.0, 2.0, 1.0],
           [-2.066972494125366, -1.1487095355987549, 0.0, 0.0, 1.0, 3.0, 3.0],
           [-1.6481250524520874, -1.4541358947753906, 0.0, 0.0, 1.0, 1.0, 4.0],
           [-1.522768497467041, 0.38168391585350037, 0.0, 0.0, 1.0, 4.0, 4.0]]


def test_an_mlp_s_counterfactuals_are_the_recorded_ones():
    model, x = _mlp()
    cf = counterfactual_explanation(model, x, 2, CounterfactualSettings(steps=150), bounds=(-3.0, 3.0))
    torch.testing.assert_close(cf.counterfactuals, torch.tensor(MLP), **_ROUNDING)
    assert cf.success.all() and cf.predicted.tolist() == [2, 2, 2, 2]


def test_a_random_start_without_l2_under_a_mask_finds_the_recorded_counterfactuals():
    model, x = _mlp()
    cf = counterfactual_explanation(model, x, torch.tensor([0, 1, 2, 0]), CounterfactualSettings(steps=150, l2=0.0, init_noise=0.1),
                                    mask=torch.tensor([1.0, 1.0, 0.0, 1.0]), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(cf.counterfactuals, torch.tensor(MLP_NOISE_L2_0), **_ROUNDING)
    assert cf.predicted.tolist() == [0, 1, 2, 0]


def test_tabular_counterfactuals_with_categories_integers_and_scale_are_the_recorded_ones():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(7, 8), nn.ReLU(), nn.Linear(8, 2))
    g = torch.Generator().manual_seed(1)
    x = torch.cat([torch.randn(4, 2, generator=g), nn.functional.one_hot(torch.tensor([0, 1, 2, 0]), 3).float(),
                   torch.randint(0, 5, (4, 2), generator=g).float()], 1)
    target = 1 - model(x).argmax(1)
    cf = counterfactual_explanation(model, x, target, CounterfactualSettings(steps=150), categorical=[[2, 3, 4]], integer=[5, 6],
                                    bounds=(-10.0, 10.0), scale=torch.tensor([1.0, 2.0, 1.0, 1.0, 1.0, 3.0, 1.0]))
    torch.testing.assert_close(cf.counterfactuals, torch.tensor(TABULAR), **_ROUNDING)
    assert cf.success.tolist() == [False, True, True, True]  # row 0 reported as not found: x' = x


def test_the_digits_cnn_s_counterfactuals_change_the_recorded_pixels():
    torch.manual_seed(0)
    model = DigitsCNN()
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    cf = counterfactual_explanation(model, x, 3, CounterfactualSettings(steps=100), bounds=(0.0, 1.0))
    d = cf.delta.flatten(1)
    assert d.nonzero().tolist() == [[0, 43], [1, 14], [1, 34], [1, 63]]
    torch.testing.assert_close(d[d != 0], torch.tensor([0.12945443391799927, -0.02426018938422203, -0.28731369972229004, 0.6062698364257812]),
                               **_ROUNDING)
    assert cf.predicted.tolist() == [3, 3]
