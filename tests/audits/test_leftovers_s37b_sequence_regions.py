"""The Sobol' tags and top-group rows of a sequence ``[N, T, C]`` whose shape reads as no signal (``T < 4C``) name its
steps and channels/features under a sequence figure kind or beside an observation mask, not an image's rows and cols;
images keep rows/cols."""

import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe, SobolAudit
from lightning_causal.audits.group_regions import figure_axes
from lightning_causal.reporting.tensorboard import scalar_tags

N, T, C = 32, 12, 4


def _sobol_tags(x: torch.Tensor, mask: torch.Tensor, kind: str | None) -> list[str]:
    model = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), 2)).eval()
    with figure_axes(kind):
        r = SobolAudit(feature_mask=mask, n=32, n_bootstrap=0, target=1, top_k=2).run(model, Probe(x))
    return sorted(t.split("/S/")[1] for t in scalar_tags(r) if "/S/" in t)


def test_sequence_kinds_name_steps_and_channels():
    x = torch.randn(N, T, C, generator=torch.Generator().manual_seed(0))
    steps = torch.arange(T).view(1, T, 1).expand(1, T, C)
    channels = torch.arange(C).view(1, 1, C).expand(1, T, C)
    last = _sobol_tags(x, steps, "sequence_features_last") + _sobol_tags(x, channels, "sequence_features_last")
    assert all("rows" not in t and "cols" not in t for t in last), last
    assert all(t.split("_", 1)[1] == f"steps_{t.split('_')[0]}-{t.split('_')[0]}" for t in last[:2]), last
    assert all(t.endswith(f"steps_0-{T - 1}_features_{t.split('_')[0]}-{t.split('_')[0]}") for t in last[2:]), last
    first = _sobol_tags(x, steps, "sequence")  # drawn channels first, as the figure draws an ambiguous shape: [C, T]
    assert all("channels" in t and "rows" not in t for t in first), first
    assert all("rows" in t for t in _sobol_tags(x, steps, None))  # no kind said: the shape alone, as before


def test_images_keep_rows_and_cols():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2)).eval()
    x = torch.randn(N, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    for kind in (None, "image", "sequence"):
        with figure_axes(kind):
            r = SobolAudit(patch_size=4, n=32, n_bootstrap=0, target=1, top_k=2).run(model, Probe(x))
        tags = [t for t in scalar_tags(r) if "/S/" in t]
        assert tags and all("_rows_" in t and "_cols_" in t for t in tags), (kind, tags)


class _Masked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(T * C, 2)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head((x * attention_mask).flatten(1))


def test_observation_mask_rows_name_steps():
    g = torch.Generator().manual_seed(2)
    mask = (torch.rand(N, T, C, generator=g) < 0.7).float()
    x = torch.randn(N, T, C, generator=g) * mask
    steps = torch.arange(T).view(1, T, 1).expand(1, T, C)
    r = InputEffectAudit(feature_mask=steps, top_k=3, ace_values=None, target=1).run(_Masked().eval(), Probe(x, None, {"attention_mask": mask}))
    rows = r.tables["top_groups"]
    assert [k for k in rows[0] if k in ("steps", "rows", "cols", "features")] == ["steps"], rows[0]
    assert all(row["steps"] == [row["group"], row["group"] + 1] for row in rows)
