"""InputEffectAudit read the probe's padding positions (``padding_positions``: the ``attention_mask``, or a ``lengths``
scan of the time axis) up to four times per run: for its real groups, again inside ``unnamed_padding``, again to
blank the effect map, again for the top tokens. It reads them once and passes them down; the results are unchanged
(the same figures as a hand check of what padding means)."""

import pytest
import torch
from torch import nn

import lightning_causal.audits.input_effects as audit_module
import lightning_causal.causal.engine.ablation as ablation
from lightning_causal.audits import InputEffectAudit
from lightning_causal.audits.base import Probe
from tests.helpers.text import PAD, tiny_bert_classifier, token_batch


def _counted(monkeypatch: pytest.MonkeyPatch) -> list:
    calls: list = []
    real = ablation.padding_positions

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    for module in (audit_module, ablation):
        monkeypatch.setattr(module, "padding_positions", counted)
    return calls


class _Steps(nn.Module):
    """A sum over the real steps of ``[N, T, F]``: steps ``t >= lengths[n]`` have no effect."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        real = (torch.arange(x.shape[1]) < lengths[:, None]).unsqueeze(-1)
        return self.linear(x * real).sum(1)


def test_tokens_with_an_attention_mask_are_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_bert_classifier(seed=3, classes=3)
    ids, att = token_batch(4, 8, seed=2)
    ids = torch.cat([ids, torch.full((4, 3), PAD)], 1)
    att = torch.cat([att, torch.zeros(4, 3, dtype=att.dtype)], 1)
    calls = _counted(monkeypatch)
    result = InputEffectAudit(baseline=PAD, ace_values=None, top_k=3).run(model, Probe(ids, additional_forward_args={"attention_mask": att}))
    assert len(calls) == 1
    assert bool((result.maps["effect"][att == 0] == 0).all())
    rows = result.tables["top_tokens"]
    assert rows and all(row["count"] == int(((ids == row["token"]) & (att == 1)).sum()) for row in rows)  # padding not counted


def test_steps_with_lengths_are_read_once_and_padding_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = _Steps().eval()
    x, lengths = torch.randn(5, 6, 3), torch.tensor([6, 4, 2, 5, 3])
    calls = _counted(monkeypatch)
    result = InputEffectAudit(ace_values=None, top_k=2).run(model, Probe(x, additional_forward_args=(lengths,)))
    assert len(calls) == 1
    padded = (torch.arange(6) >= lengths[:, None]).unsqueeze(-1).expand_as(x)
    assert bool((result.maps["effect"][padded] == 0).all()) and bool((result.maps["effect"][~padded] != 0).any())


def test_an_unnamed_node_mask_is_still_told(monkeypatch: pytest.MonkeyPatch) -> None:
    from lightning_causal.audits.base import ProbeContentsWarning

    class Nodes(nn.Module):
        def forward(self, x: torch.Tensor, node_mask: torch.Tensor) -> torch.Tensor:
            return (x * node_mask.unsqueeze(-1)).sum((1, 2)).unsqueeze(1).repeat(1, 2) * torch.tensor([1.0, -1.0])

    x, mask = torch.randn(3, 4, 2), torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]])
    x[mask == 0] = 0
    calls = _counted(monkeypatch)
    with pytest.warns(ProbeContentsWarning, match="'node_mask' is 0 where the inputs are all zero"):
        InputEffectAudit(ace_values=None).run(Nodes(), Probe(x, additional_forward_args={"node_mask": mask}))
    assert len(calls) == 1
