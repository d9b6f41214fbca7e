"""Review of 636368da/fab9b762 (the clean pass maps float code columns to the embeddings that read them): the matching
truncated every value of the first 256 clean rows of a float input and compared them whole (whole values, constant
columns, the first index position) before it could tell that no column is an embedding's indices: a multimodal model
with a 3x32x32 float image of whole values (0..255 pixels) and 64 token ids looked up after a computation
(``ids.clamp(0, V - 1)``, not a view of the input) spent 4.7 ms more on its clean pass of 256 rows (2.1 ms bare; 0.3 ms
more at 05a03150) and 4.7 MB of comparisons. An index position's candidates are now the values equal to it in the first
row, compared over the other rows only: 0.65 ms and 0.2 MB."""

from __future__ import annotations

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from lightning_causal.causal.engine.token_ids import embedding_readers


class ImageAndText(nn.Module):
    """A 3x32x32 image of 0..255 float pixels and token ids [N, 64] (clamped, so not a view) of a vocabulary of 1000;
    ``codes``: a table whose columns 1 and 3 are codes the model casts to indices for a second embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.tok, self.code = nn.Embedding(1000, 4), nn.Embedding(10, 4)
        self.head = nn.Linear(3 * 32 * 32 + 4 + 4, 2)

    def forward(self, img: torch.Tensor, ids: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        t = self.tok(ids.clamp(0, 999)).mean(1)
        c = self.code(table[:, [1, 3]].long()).mean(1)
        return self.head(torch.cat([img.flatten(1) / 255, t, c], 1))


def test_matching_a_computed_index_against_an_image_compares_no_full_rows_per_position() -> None:
    g = torch.Generator().manual_seed(0)
    n = 256
    img = torch.randint(0, 256, (n, 3, 32, 32), generator=g).float()
    ids = torch.randint(0, 1000, (n, 64), generator=g)
    table = torch.cat([torch.randn(n, 1, generator=g), torch.randint(0, 10, (n, 1), generator=g).float(),
                       torch.randn(n, 1, generator=g), torch.randint(0, 10, (n, 1), generator=g).float()], 1)
    model = ImageAndText().eval()
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof, \
            embedding_readers(model, (img, ids, table)) as readers:
        model(img, ids, table)
    # the clamped ids match no pixel column (not recorded); the table's codes are found, in their order
    assert [(r.name, r.input_index, r.columns) for r in readers] == [("code", 2, (1, 3))]
    compared = sum(e.cpu_memory_usage for e in prof.events() if e.name in ("aten::eq", "aten::ne", "aten::trunc"))
    # the first row's comparison with the 64 indices ([64, 3072] bools) and the table's few; 4.7 MB before
    assert compared <= 2 * 64 * 3 * 32 * 32
