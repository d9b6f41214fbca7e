"""Modules that return named tuples (a user's ``NamedTuple``, ``PackedSequence`` from a recurrent
layer on packed input): every path rebuilds them field by field (``type(t)(iterable)`` fails for
named tuples), and the effects equal a brute-force hook."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import pytest
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from lightning_causal.causal import Zero, capture, intervene, unit_effects

G = torch.Generator().manual_seed(0)


class EncOut(NamedTuple):
    hidden: Tensor
    total: Tensor


class Enc(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 6)

    def forward(self, x):
        h = torch.tanh(self.lin(x))
        return EncOut(h, h.sum(1))


class WithEnc(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc, self.act, self.head = Enc(), nn.ReLU(), nn.Linear(7, 2)

    def forward(self, x):
        out = self.enc(x)
        return self.head(torch.cat([self.act(out.hidden), out.total[:, None]], 1))


def _brute(model, x, module, edit, units, target=1):
    with torch.no_grad():
        base, cols = model(x)[:, target], []
        for u in range(units):
            handle = module.register_forward_hook(lambda _m, _i, out, u=u: edit(out, u))
            cols.append(base - model(x)[:, target])
            handle.remove()
    return torch.stack(cols, 1)


def test_a_module_returning_a_named_tuple_is_intervened_on_its_first_field():
    torch.manual_seed(0)
    model, x = WithEnc().double().eval(), torch.randn(5, 4, generator=G, dtype=torch.float64)
    ref = _brute(model, x, model.enc, lambda out, u: EncOut(out.hidden.index_fill(1, torch.tensor([u]), 0.0), out.total), 6)
    for use_suffix in (True, False):
        torch.testing.assert_close(unit_effects(model, x, "enc", Zero(), target=1, use_suffix=use_suffix), ref, atol=1e-12, rtol=0)
    after = _brute(model, x, model.act, lambda out, u: out.index_fill(1, torch.tensor([u]), 0.0), 6)
    torch.testing.assert_close(unit_effects(model, x, "act", Zero(), target=1), after, atol=1e-12, rtol=0)
    with intervene(model, {"enc": Zero(units=[2])}), torch.no_grad():
        got = model(x)[:, 1]
    torch.testing.assert_close(model(x)[:, 1].detach() - got, ref[:, 2], atol=1e-12, rtol=0)
    with capture(model, ["enc"]) as acts:
        model(x)
    torch.testing.assert_close(acts["enc"], torch.tanh(model.enc.lin(x)).detach(), atol=0, rtol=0)


class PackedGRU(nn.Module):
    """A GRU on packed sequences; its last hidden state is explained through an ``nn.Identity``."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn, self.hn, self.head = nn.GRU(3, 4, batch_first=True), nn.Identity(), nn.Linear(4, 2)

    def forward(self, x, lengths):
        _, h = self.rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        return self.head(self.hn(h[-1]))


def test_a_layer_after_a_packed_sequence_equals_the_fallback_and_brute_force():
    torch.manual_seed(0)
    model = PackedGRU().double().eval()
    x, lengths = torch.randn(6, 7, 3, generator=G, dtype=torch.float64), torch.tensor([7, 3, 5, 7, 2, 4])
    with torch.no_grad():
        base = model(x, lengths)[:, 1]
        cols = []
        for u in range(4):
            handle = model.hn.register_forward_hook(lambda _m, _i, out, u=u: out.index_fill(1, torch.tensor([u]), 0.0))
            cols.append(base - model(x, lengths)[:, 1])
            handle.remove()
    ref = torch.stack(cols, 1)
    for use_suffix in (True, False):
        got = unit_effects(model, x, "hn", Zero(), target=1, additional_forward_args=(lengths,), use_suffix=use_suffix)
        torch.testing.assert_close(got, ref, atol=1e-12, rtol=0)


def test_capture_of_a_module_run_several_times_per_pass_keeps_the_last_call_and_warns():
    cell = nn.GRUCell(3, 4)

    class Loop(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cell = cell

        def forward(self, x):
            h = x.new_zeros(x.shape[0], 4)
            for t in range(x.shape[1]):
                h = self.cell(x[:, t], h)
            return h

    model, x = Loop(), torch.randn(2, 5, 3, generator=G)
    with pytest.warns(UserWarning, match="'cell' runs more than once per forward pass"), capture(model, ["cell"]) as acts:
        out = model(x)
    assert torch.equal(acts["cell"], out.detach())  # the last step's state
    once = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with capture(once, ["1"]):
            once(x[:, 0])
            once(x[:, 1])  # two passes of the model, one call each: no warning


def test_a_module_returning_a_hugging_face_model_output_is_intervened_on_its_first_field():
    """`bert.encoder` returns a ModelOutput (last_hidden_state first): it was refused as "not called
    by the forward pass"."""
    from lightning_causal.causal import capture, unit_effects
    from tests.helpers.bert import tiny_bert, token_batch

    model, (ids, mask) = tiny_bert(), token_batch(n=4)
    afa, site = {"attention_mask": mask}, "bert.encoder"
    got = unit_effects(model, ids, site, unit_dim=-1, additional_forward_args=afa)
    module = model.get_submodule(site)
    with torch.no_grad():
        clean = model(ids, attention_mask=mask).logits
        pred = clean.argmax(1)
        want = torch.empty(4, 32, dtype=torch.float64)
        for j in range(32):
            def zero(_m, _i, out, j=j):
                out.last_hidden_state = out.last_hidden_state.clone().index_fill_(-1, torch.tensor([j]), 0.0)
                return out
            handle = module.register_forward_hook(zero)
            try:
                want[:, j] = (clean - model(ids, attention_mask=mask).logits).gather(1, pred[:, None]).squeeze(1)
            finally:
                handle.remove()
    assert float(want.abs().max()) > 1e-3
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-8)
    with capture(model, [site, "bert"]) as acts:
        model(ids, attention_mask=mask)
    assert acts[site].shape == acts["bert"].shape == (4, 7, 32)


def test_a_model_output_whose_first_field_the_model_does_not_read_is_refused_naming_the_fields():
    """`bert` (the BertModel) returns last_hidden_state first, but the sequence classifier reads
    pooler_output: every effect came back exactly 0 with nothing saying why."""
    from tests.helpers.bert import tiny_bert, token_batch

    model, (ids, mask) = tiny_bert(), token_batch(n=4)
    afa = {"attention_mask": mask}
    for use_suffix in (True, False):
        with pytest.raises(ValueError, match=r"field 'last_hidden_state' of module 'bert'.*'pooler_output'"):
            unit_effects(model, ids, "bert", unit_dim=-1, additional_forward_args=afa, use_suffix=use_suffix)
    assert float(unit_effects(model, ids, "bert.pooler", unit_dim=-1, additional_forward_args=afa).abs().max()) > 1e-3
