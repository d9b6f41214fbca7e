"""A boolean square attention mask whose rows are all alike in each sample (a key-padding mask expanded to [N, T, T],
[N, 1, T, T] or [N, H, T, T]) has no diagonal to tell its sense: it was decided by what the probe held, and a Hugging
Face mask with one sample all padding beside padded ones, or one of torch's sense padding every sample, read every real
position as padding in silence. It is read in the sense whose padding holds the pad id, else not read, with a warning."""
import warnings

import pytest
import torch

from lightning_causal.causal.engine.ablation import key_padding, padding_positions

T, N = 5, 3


def _ids(keep, pad_id):
    ids = torch.randint(5, 50, keep.shape, generator=torch.Generator().manual_seed(0))
    return ids.masked_fill(~keep, pad_id)


@pytest.mark.parametrize("pad_id", [0, 1, 50256])
@pytest.mark.parametrize("expand", ["3d", "4d1", "4dh"])
def test_hf_sense_with_an_empty_sample(pad_id, expand):
    keep = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    mask = {"3d": keep[:, None].expand(N, T, T), "4d1": keep[:, None, None].expand(N, 1, T, T),
            "4dh": keep[:, None, None].expand(N, 4, T, T)}[expand]
    read = padding_positions(_ids(keep, pad_id), {"attention_mask": mask})
    assert torch.equal(read.view(N, T), ~keep)


@pytest.mark.parametrize("pad_id", [0, 1, 50256])
def test_torch_sense_every_sample_padded(pad_id):
    keep = torch.arange(T)[None] < torch.tensor([4, 3, 2])[:, None]
    mask = (~keep[:, None]).expand(N, T, T)  # True = left out
    assert torch.equal(padding_positions(_ids(keep, pad_id), {"attention_mask": mask}).view(N, T), ~keep)
    x = torch.randn(N, T, 4).masked_fill(~keep[..., None], 0.5)  # a sequence padded with one row
    assert torch.equal(padding_positions(x, {"attention_mask": mask}).view(N, T), ~keep)


def test_undecided_is_not_read_and_warned():
    keep = torch.arange(T)[None] < torch.tensor([4, 3, 2])[:, None]
    mask = (~keep[:, None]).expand(N, T, T)
    x = torch.randn(N, T, 4)  # padding holds no one value: neither reading tells
    with pytest.warns(UserWarning, match=r"no diagonal to tell its sense.*keep mask `attention_mask` \[N, T\]"):
        assert padding_positions(x, {"attention_mask": mask}) is None
    with pytest.warns(UserWarning, match="no diagonal"):
        assert key_padding(mask[1:]) is None  # no inputs at hand (another mask: each is warned of once)


def test_ordinary_masks_read_as_before():
    keep = torch.arange(T)[None] < torch.tensor([5, 3, 2])[:, None]
    ids = _ids(keep, 0)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    additive = torch.zeros(N, 1, 1, T).masked_fill(~keep[:, None, None], torch.finfo(torch.float).min)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for mask in (keep.long(), keep, additive, additive.expand(N, 1, T, T), (causal & keep[:, None])[:, None],
                     keep[:, None, None].expand(N, 1, T, T), (~keep[:, None]).expand(N, T, T) | ~causal):
            assert torch.equal(padding_positions(ids, {"attention_mask": mask}).view(N, T), ~keep)
        assert torch.equal(key_padding(torch.ones(N, 1, T, T, dtype=torch.bool)), torch.ones(N, T, dtype=torch.bool))


class _Masked(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2 * T, 2)

    def forward(self, x, attention_mask):
        return self.lin(x.flatten(1))


def test_an_unread_boolean_mask_is_warned_as_of_no_telling_sense():
    """A boolean mask no reading tells (torch's sense, a causal one with a sample all padding) was warned as a bias
    'holding other values than 0 beside -inf'."""
    from lightning_causal.audits import InputEffectAudit, Probe

    keep = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    mask = ~(torch.ones(T, T, dtype=torch.bool).tril() & keep[:, None])
    x = torch.randn(N, T, 2, generator=torch.Generator().manual_seed(0))
    fm = torch.arange(T)[:, None].expand(1, T, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        InputEffectAudit(feature_mask=fm, target=1).run(_Masked().eval(), Probe(x, additional_forward_args={"attention_mask": mask}))
    said = " ".join(str(w.message) for w in caught)
    assert "[3, 5, 5] is boolean, but its sense cannot be told" in said and "keep mask `attention_mask` [N, T]" in said
    assert "holds other values" not in said


def test_a_square_mask_is_read_once_per_call(monkeypatch):
    """padding_positions read a 4-D mask's keys three times (a [16, 12, 256, 256] mask a few hundred ms each, paid by
    the fairness term at every step): once now, the same padding read."""
    import lightning_causal.causal.engine.ablation as ablation
    from lightning_causal.causal.engine.ablation import input_padding

    calls = []
    real = ablation.key_padding
    monkeypatch.setattr(ablation, "key_padding", lambda *a: calls.append(1) or real(*a))
    keep = torch.arange(T)[None] < torch.tensor([5, 3, 2])[:, None]
    mask = (torch.ones(T, T, dtype=torch.bool).tril() & keep[:, None])[:, None].expand(N, 2, T, T)
    ids = _ids(keep, 0)
    assert torch.equal(padding_positions(ids, {"attention_mask": mask}).view(N, T), ~keep) and len(calls) == 1
    assert torch.equal(input_padding((ids,), {"attention_mask": mask})[0].view(N, T), ~keep) and len(calls) == 2


def test_an_undecided_rows_alike_mask_is_warned_once_by_the_audit():
    from lightning_causal.audits import InputEffectAudit, Probe
    from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning

    keep = torch.arange(T)[None] < torch.tensor([4, 2, 1])[:, None]  # a mask no other test warns of (once per mask)
    mask = (~keep[:, None]).expand(N, T, T)
    x = torch.randn(N, T, 2, generator=torch.Generator().manual_seed(0))  # padding holds no one value
    fm = torch.arange(T)[:, None].expand(1, T, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's: a warning once per place and text
        InputEffectAudit(feature_mask=fm, target=1).run(_Masked().eval(), Probe(x, additional_forward_args={"attention_mask": mask}))
    told = [w for w in caught if "sense" in str(w.message) and "attention_mask" in str(w.message)]
    assert len(told) == 1 and issubclass(told[0].category, ProbeContentsWarning), [str(w.message)[:80] for w in told]
    assert "no diagonal to tell its sense" in str(told[0].message)  # the engine's words; the audit adds none
