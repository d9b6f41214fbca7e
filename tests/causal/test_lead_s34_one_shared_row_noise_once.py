"""Final read of 1c5e06ca: on a layer holding one row for the whole batch (a hypernetwork's weights) the prefix cache is
refused first and the shared path taken after, and both read the model's noise: two noise checks and the same warning
twice per call. The shared path now takes the noise the caller read."""

import warnings

import torch

from lightning_causal.causal.effects.unit_effects import unit_effects

from .test_leftovers_s34a_shared_units import OnePrompt, hand_effects, probe


class NoisyOnePrompt(OnePrompt):
    def forward(self, x):
        out = super().forward(x)
        return out + 0.1 * torch.randn_like(out)


def test_one_shared_row_of_a_noisy_model_warns_once_and_equals_the_plain_model():
    x = probe(6)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got, info = unit_effects(NoisyOnePrompt().double().eval(), x, "lin", target=0, return_info=True)
    assert info.path == "shared"
    assert len([w for w in seen if "random numbers" in str(w.message)]) == 1
    model = OnePrompt().double().eval()  # common random numbers: the effects of the model without its noise
    torch.testing.assert_close(got, hand_effects(model, x, "lin", range(6), torch.zeros_like, torch.zeros(6, dtype=torch.long)),
                               rtol=0, atol=1e-12)
