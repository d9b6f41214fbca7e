"""Review of the change (git diff 8e7989a): what the baseline of integer inputs other than token ids (uint8 pixels,
int8/int16 samples) takes was worded twice, by the engine (``check_baselines``, b704777) and by CaptumBaseline's own
refusal (83d5a21), and the two disagreed: CaptumBaseline refused a float with its wording (no range, advice for every
kind at once) but took a bool tensor, which the engine then refused in its own words; the engine took integers that no
embedding indexes (uint16) for token ids, where ``token_ids.INDEX_DTYPES`` (int64, int32) names the only token ids.
CaptumBaseline now refuses such baselines through ``check_baselines``: one message, the engine's."""

import pytest
import torch
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.audits import Probe
from lightning_causal.causal.engine.ablation import check_baselines


class _Cast(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        return self.fc(x.float() / 100)


def _refusal(run) -> str:
    with pytest.raises(ValueError) as err:
        run()
    return str(err.value)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16])
@pytest.mark.parametrize("baseline", [0.0, 0.5, torch.full((1, 6), 0.5), torch.tensor([0.5])])
def test_captum_refuses_a_non_integer_baseline_of_pixels_or_samples_in_the_engines_words(dtype, baseline):
    x = torch.arange(48).view(8, 6).remainder(7).to(dtype)
    engine = _refusal(lambda: check_baselines((x,), baseline))
    assert engine.startswith(f"Expected argument `baseline` to be an int in [{torch.iinfo(dtype).min}, ")
    assert _refusal(lambda: CaptumBaseline(("FeatureAblation",), baseline=baseline, target=1).run(_Cast(), Probe(x))) == engine


def test_captum_refuses_a_bool_tensor_baseline_of_pixels_before_it_runs():
    """The engine's refusal, named by the masks' note, from CaptumBaseline's checks (it took it before)."""
    from lightning_causal.audits import captum_checks

    x = torch.zeros(8, 6, dtype=torch.uint8)
    audit = CaptumBaseline(("FeatureAblation",), baseline=torch.zeros(1, 6, dtype=torch.bool), target=1)
    message = _refusal(lambda: captum_checks.check_token_options(audit, x))
    assert "but got a torch.bool tensor [1, 6] (False and True are the baselines of bool inputs, masks)" in message


def test_a_one_element_tensor_is_shown_by_its_value():
    message = _refusal(lambda: check_baselines((torch.zeros(2, 3, dtype=torch.uint8),), torch.tensor([0.5])))
    assert "but got tensor([0.5000]): " in message  # was 'a torch.float32 tensor [1]'


def test_integers_that_no_embedding_indexes_are_values_not_token_ids():
    message = _refusal(lambda: check_baselines((torch.zeros(2, 3, dtype=torch.uint16),), 0.5))
    assert "an int in [0, 65535]" in message and "a raw value, e.g. `baseline=0`" in message
    assert "token id)" not in message and "[MASK]" not in message


def test_bool_masks_still_refuse_the_float_default_naming_false_and_true():
    x = torch.zeros(8, 6, dtype=torch.bool)
    message = _refusal(lambda: CaptumBaseline(("FeatureAblation",), target=1).run(_Cast(), Probe(x)))
    assert message.startswith("Expected argument `baseline` to be an int for torch.bool inputs (masks) but got 0.0, the "
                              "default for float inputs: False or True (0 or 1)")
    assert "uint8" not in message and "int16" not in message
