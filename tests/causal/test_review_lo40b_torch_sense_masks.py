"""Review of 40302046: a boolean attention mask of torch's sense (``True`` = left out, ``nn.MultiheadAttention``'s
``attn_mask``) passed as ``attention_mask`` ``[N, T, T]`` was read in Hugging Face's (``True`` = attend): its causal
mask's first column (every query attends key 0) was taken for padding in every sample, step 0's effects set to 0 and
left out of the means, in silence. A real query attends its own key in any mask of Hugging Face's sense: where the read
leaves that out, the mask is read in torch's."""
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.causal.engine.ablation import key_padding, padding_positions

_T = 5
_KEEP = torch.arange(_T)[None] < torch.tensor([5, 3, 4])[:, None]
_LEFT_OUT = torch.ones(_T, _T, dtype=torch.bool).triu(1)  # torch's causal attn_mask: True = not allowed


class _TorchMask(nn.Module):
    """One-head attention given torch's boolean attn_mask ``[N, T, T]``, or a keep mask ``[N, T]`` it builds that from."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.attn, self.head = nn.Linear(4, 8), nn.MultiheadAttention(8, 1, batch_first=True), nn.Linear(8, 2)

    def forward(self, x, attention_mask):
        m = attention_mask
        if m.dim() == 2:
            m = _LEFT_OUT | ~m.bool()[:, None]
        h = self.inp(x)
        a, _ = self.attn(h, h, h, attn_mask=m, need_weights=False)
        return self.head(a[:, 0] + a[:, 2])


def test_torch_sense_causal_mask_reads_no_padding_and_its_padded_columns_as_padding():
    x = torch.randn(3, _T, 4, generator=torch.Generator().manual_seed(5))
    assert not padding_positions(x, {"attention_mask": _LEFT_OUT.expand(3, _T, _T)}).any()  # key 0 was padding
    padded = _LEFT_OUT | ~_KEEP[:, None]
    torch.testing.assert_close(key_padding(padded), _KEEP)
    torch.testing.assert_close(key_padding(padded[:, None].expand(3, 2, _T, _T)), _KEEP)  # one per head
    torch.testing.assert_close(key_padding(~padded), _KEEP)  # Hugging Face's sense read as before
    assert key_padding(torch.zeros(3, _T, _T, dtype=torch.bool)) is not None  # all attend in torch's sense: no padding
    assert key_padding(torch.zeros(3, _T, _T, dtype=torch.bool)).all()


def test_torch_sense_mask_audited_as_its_keep_mask():
    x = torch.randn(3, _T, 4, generator=torch.Generator().manual_seed(5)) * _KEEP[..., None]
    fm = torch.arange(_T)[:, None].expand(1, _T, 4)
    model = _TorchMask().eval()
    for keep, mask in ((torch.ones(3, _T, dtype=torch.bool), _LEFT_OUT.expand(3, _T, _T)), (_KEEP, _LEFT_OUT | ~_KEEP[:, None])):
        with torch.no_grad():
            torch.testing.assert_close(model(x, mask), model(x, keep))  # the model reads both alike
        plain = InputEffectAudit(feature_mask=fm, target=1).run(model, Probe(x, additional_forward_args={"attention_mask": keep}))
        torch_sense = InputEffectAudit(feature_mask=fm, target=1).run(model, Probe(x, additional_forward_args={"attention_mask": mask}))
        torch.testing.assert_close(torch_sense.vectors["mean_abs_effect"], plain.vectors["mean_abs_effect"])
        assert float(torch_sense.vectors["mean_abs_effect"][0]) > 0  # step 0 is real


def test_a_sample_all_padding_in_hugging_faces_sense_still_read():
    keep = _KEEP.clone()
    keep[1] = False  # an empty sequence among the probe's
    mask = ~_LEFT_OUT & keep[:, None]  # Hugging Face's causal mask with padding
    torch.testing.assert_close(key_padding(mask), keep)
    torch.testing.assert_close(key_padding(mask[:, None]), keep)
