"""Hugging Face's extended attention masks (``[N, 1, 1, T]``, ``[N, 1, T, T]``, additive with ``finfo.min`` or boolean,
and BERT's 3-D ``[N, T, T]``) passed as ``attention_mask`` were not read as padding: the padded positions were set by
the interventions and counted in the means, in silence. A key left out for every query is padding (``key_padding``);
a causal pattern is not."""
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe, UnitImportanceAudit
from lightning_causal.causal.engine.ablation import key_padding, padding_positions
from tests.causal.test_review_s39_nu94_masks import _Soft

_KEEP = torch.arange(6)[None] < torch.tensor([6, 3, 5, 2])[:, None]
_MIN = torch.finfo(torch.float).min


def _forms(keep: torch.Tensor) -> dict[str, torch.Tensor]:
    n, t = keep.shape
    additive = torch.zeros(n, 1, 1, t).masked_fill(~keep[:, None, None], _MIN)
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    return {"additive [N,1,1,T]": additive, "bool [N,1,1,T]": keep[:, None, None],
            "additive [N,1,T,T]": additive.expand(n, 1, t, t), "int [N,T,T]": keep[:, None].expand(n, t, t).long(),
            "causal bool [N,1,T,T]": (causal & keep[:, None])[:, None], "per head [N,2,T,T]": additive.expand(n, 2, t, t)}


class _Keys(_Soft):
    """Attention over the real keys, whichever form the mask takes (its last row: the last query's keys)."""

    def forward(self, x, attention_mask):
        m = attention_mask
        keep = m.bool() if m.dim() == 2 else (m.flatten(1, -2)[:, -1] == 0 if m.is_floating_point() else m.flatten(1, -2)[:, -1].bool())
        h = self.inp(x)
        a, _ = self.attn(h, h, h, key_padding_mask=~keep, need_weights=False)
        return self.head(a[:, 0])


@pytest.mark.parametrize("form", list(_forms(_KEEP)))
def test_extended_masks_are_read_as_their_key_padding(form):
    mask = _forms(_KEEP)[form]
    x = torch.randn(4, 6, 3, generator=torch.Generator().manual_seed(0)) * _KEEP[..., None]
    torch.testing.assert_close(padding_positions(x, {"attention_mask": mask})[..., 0], ~_KEEP)
    fm = torch.arange(6)[:, None].expand(1, 6, 3)
    model = _Keys().eval()
    plain = InputEffectAudit(feature_mask=fm, target=1).run(model, Probe(x, additional_forward_args={"attention_mask": _KEEP.long()}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # read as the 2-D mask is: nothing to warn
        ext = InputEffectAudit(feature_mask=fm, target=1).run(model, Probe(x, additional_forward_args={"attention_mask": mask}))
    torch.testing.assert_close(ext.vectors["mean_abs_effect"], plain.vectors["mean_abs_effect"])


def test_causal_and_other_patterns_without_padding_read_no_padding():
    causal = torch.ones(6, 6, dtype=torch.bool).tril().expand(4, 1, 6, 6)
    assert key_padding(causal).all()  # the last query sees every key
    additive = torch.zeros(4, 1, 6, 6).masked_fill(~causal, float("-inf"))
    assert not padding_positions(torch.randn(4, 6, 3), {"attention_mask": additive}).any()
    assert key_padding(torch.zeros(4, 1, 6, 6).fill_(-0.5)) is None  # a bias: unread, as before
    assert key_padding(torch.zeros(4, 1, 6, 5)) is None  # queries of another length (cross-attention): unread


def test_observation_mask_of_the_inputs_shape_still_read_entry_by_entry():
    m = torch.tensor([[1, 0, 1], [1, 1, 0], [0, 1, 1]]).expand(2, 3, 3)
    torch.testing.assert_close(padding_positions(torch.ones(2, 3, 3), {"attention_mask": m}), m == 0)


def test_hugging_face_bert_and_gpt2_given_extended_masks_read_as_the_2d_mask():
    transformers = pytest.importorskip("transformers")
    small = dict(vocab_size=40, num_labels=2)
    bert = transformers.BertForSequenceClassification(transformers.BertConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, max_position_embeddings=8, **small))
    gpt2 = transformers.GPT2ForSequenceClassification(transformers.GPT2Config(
        n_embd=16, n_layer=1, n_head=2, n_positions=8, pad_token_id=0, bos_token_id=1, eos_token_id=2, **small))

    class Logits(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).logits

    torch.manual_seed(0)
    ids = torch.randint(5, 40, (4, 6)) * _KEEP
    ext = torch.zeros(4, 1, 1, 6).masked_fill(~_KEEP[:, None, None], _MIN)
    for name, hf in (("bert", bert), ("gpt2", gpt2)):
        model = Logits(hf).eval()
        causal = torch.zeros(6, 6).masked_fill(torch.ones(6, 6).triu(1).bool(), _MIN)  # GPT-2's own, padding beside it
        mask = ext if name == "bert" else (ext + causal).clamp_min(_MIN)
        with torch.no_grad():
            torch.testing.assert_close(model(ids, mask), model(ids, _KEEP.long()))  # the model reads both alike
        layer = "m.bert.encoder.layer.0" if name == "bert" else "m.transformer.h.0"
        results = [UnitImportanceAudit([layer], unit_dim=1, target=1).run(model, Probe(ids, additional_forward_args={"attention_mask": m}))
                   for m in (_KEEP.long(), mask)]
        torch.testing.assert_close(results[1].vectors[f"importance/{layer}"], results[0].vectors[f"importance/{layer}"])
        effects = [InputEffectAudit(feature_mask=torch.arange(6)[None], target=1, baseline=0).run(
            model, Probe(ids, additional_forward_args={"attention_mask": m})) for m in (_KEEP.long(), mask)]
        torch.testing.assert_close(effects[1].vectors["mean_abs_effect"], effects[0].vectors["mean_abs_effect"])


def test_a_bias_beside_the_padding_is_warned_as_unread():
    """ALiBi-like slopes added beside the padding's -inf: which keys are padding cannot be told, and none is read."""
    x = torch.randn(4, 6, 3, generator=torch.Generator().manual_seed(0)) * _KEEP[..., None]
    slopes = -(torch.arange(6)[None, :] - torch.arange(6)[:, None]).abs().float() * 0.5
    bias = (slopes + torch.zeros(4, 1, 6, 6)).masked_fill(~_KEEP[:, None, None], float("-inf"))
    fm = torch.arange(6)[:, None].expand(1, 6, 3)
    with pytest.warns(UserWarning, match=r"`attention_mask` of shape \[4, 1, 6, 6\] holds other values"):
        InputEffectAudit(feature_mask=fm, target=1).run(_Keys().eval(), Probe(x, additional_forward_args={"attention_mask": bias}))
