"""An LSTM classifier reading ``h_n`` (``fc(h[-1])``) audited on ``"lstm"``: the first refusal names the way that works
in one step, the input of the layer that reads ``h_n`` (``'fc:input'``), not ``unit_dim=-1`` (which was refused again,
"apply an nn.Identity to h_n"). Final read B45 F2."""

import pytest
import torch
from torch import nn

from lightning_causal import Probe
from lightning_causal.audits import UnitImportanceAudit
from lightning_causal.causal.effects.unit_effects import unit_effects


class Classifier(nn.Module):
    def __init__(self, mode: str = "h", bidirectional: bool = False) -> None:
        super().__init__()
        self.mode = mode
        self.emb = nn.Embedding(20, 8)
        self.lstm = nn.LSTM(8, 16, batch_first=True, bidirectional=bidirectional)
        self.drop = nn.Dropout(0.1)
        self.fc = nn.Linear(32 if bidirectional else 16, 3)

    def forward(self, x):
        out, (h, _c) = self.lstm(self.emb(x))
        if self.mode == "h":
            return self.fc(h[-1])
        if self.mode == "drop":
            return self.fc(self.drop(h[-1]))
        if self.mode == "cat":
            return self.fc(torch.cat([h[-2], h[-1]], 1))
        return self.fc(out[:, -1])  # "out": element 0 read


def _ids() -> torch.Tensor:
    return torch.randint(0, 20, (12, 7), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("unit_dim", [None, -1])
def test_the_first_refusal_names_the_reader_input_and_following_it_works(unit_dim):
    torch.manual_seed(0)
    model, x = Classifier().eval(), _ids()
    with pytest.raises(ValueError, match="depend on element 0") as err:
        UnitImportanceAudit(["lstm"], unit_dim=unit_dim).run(model, Probe(x))
    msg = str(err.value)
    assert "In one step, name the site 'fc:input'" in msg and "unit_dim=-1" not in msg
    # the advice followed literally: one unit per hidden feature of h_n, each the effect of zeroing it by hand
    effects = unit_effects(model, x, "fc:input")
    with torch.no_grad():
        _, (h, _c) = model.lstm(model.emb(x))
        base = model.fc(h[-1])
        hand = torch.stack([(base - model.fc(h[-1] * (torch.arange(16) != u))) for u in range(16)], 1)
    assert effects.shape == (12, 16)
    torch.testing.assert_close(effects, hand.gather(2, base.argmax(1)[:, None, None].expand(-1, 16, 1))[..., 0])


def test_the_reader_is_the_first_module_taking_a_view_of_h_n_else_the_generic_way():
    model, x = Classifier("drop").eval(), _ids()
    with pytest.raises(ValueError, match="name the site 'drop:input'"):
        unit_effects(model, x, "lstm")
    assert unit_effects(model, x, "drop:input").shape == (12, 16)
    model = Classifier("cat", bidirectional=True).eval()  # a new tensor: no module takes a view of h_n
    with pytest.raises(ValueError, match=r"name the input of the layer that reads it, '<layer>:input'"):
        unit_effects(model, x, "lstm")
    assert unit_effects(model, x, "fc:input").shape == (12, 32)


def test_a_model_reading_element_0_keeps_the_unit_dim_advice():
    model, x = Classifier("out").eval(), _ids()
    with pytest.raises(ValueError, match="Pass `unit_dim=-1`") as err:
        unit_effects(model, x, "lstm")
    assert "element 0" not in str(err.value)
    assert unit_effects(model, x, "lstm", unit_dim=-1).shape == (12, 16)
