"""Padding of a model of several inputs: an ``attention_mask`` or ``lengths`` describes one input
(the token ids, the sequence), not whichever input comes first. Before, the first input's
positions were read as padding: with ``model(meta, x, lengths)`` the metadata column ``j`` of
every sample shorter than ``j`` got effect 0 without a pass; with ``model(meta, ids,
attention_mask)`` (meta as wide as the ids) the mask fell on meta's columns, and the ACE of the
ids' positions changed with the order of the inputs. Checked against float64 do-loops by hand."""

import torch
from torch import nn

from lightning_causal.causal import average_causal_effect, input_effects
from lightning_causal.causal.engine.ablation import input_padding


class MetaSeq(nn.Module):
    """forward(meta [N, 3], x [N, T, 2], lengths): a linear read of meta plus the mean of the real steps."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 2), nn.Linear(2, 2)

    def forward(self, meta, x, lengths):
        steps = (torch.arange(x.shape[1])[None] < lengths[:, None]).unsqueeze(-1)
        return self.a(meta) + self.b((x * steps).sum(1) / lengths[:, None])


class MetaIds(nn.Module):
    """forward(a, b, attention_mask): token ids [N, T] and metadata [N, T] (as wide), in either order."""

    def __init__(self, ids_first: bool):
        super().__init__()
        self.ids_first = ids_first
        self.emb, self.meta, self.head = nn.Embedding(10, 4), nn.Linear(6, 4), nn.Linear(8, 2)

    def forward(self, a, b, attention_mask):
        ids, meta = (a, b) if self.ids_first else (b, a)
        w = attention_mask.unsqueeze(-1).to(meta.dtype)
        pooled = (self.emb(ids) * w).sum(1) / w.sum(1)
        return self.head(torch.tanh(torch.cat([pooled, self.meta(meta)], 1)))


def test_lengths_of_a_sequence_do_not_mark_the_metadata_beside_it():
    torch.manual_seed(0)
    model = MetaSeq().double()
    meta, x = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 6, 2, dtype=torch.float64)
    lengths = torch.tensor([1, 2, 6, 4])
    masks = (torch.arange(3)[None], torch.arange(3, 9)[None, :, None])
    effects = input_effects(model, (meta, x), masks, target=1, additional_forward_args={"lengths": lengths})
    f0 = model(meta, x, lengths)[:, 1]
    ref = torch.zeros(4, 9, dtype=torch.float64)
    with torch.no_grad():
        for j in range(3):
            m2 = meta.clone()
            m2[:, j] = 0
            ref[:, j] = f0 - model(m2, x, lengths)[:, 1]
        for t in range(6):
            x2 = x.clone()
            x2[:, t] = 0
            ref[:, 3 + t] = f0 - model(meta, x2, lengths)[:, 1]
    assert bool((ref[0, 1:3] != 0).all())  # sample 0 (1 step) reads meta's columns 1 and 2 all the same
    torch.testing.assert_close(effects, ref, rtol=0, atol=1e-12)


def test_an_attention_mask_marks_the_ids_in_either_order():
    torch.manual_seed(0)
    first, second = MetaIds(True).double(), MetaIds(False).double()
    second.load_state_dict(first.state_dict())
    ids = torch.randint(1, 10, (5, 6))
    mask = torch.ones(5, 6, dtype=torch.long)
    mask[0, 3:] = 0
    mask[1, 1:] = 0
    ids[mask == 0] = 0
    meta = torch.randn(5, 6, dtype=torch.float64)
    args = {"attention_mask": mask}
    id_groups, meta_groups = torch.arange(6)[None], torch.arange(6, 12)[None]
    values = torch.cat([torch.tensor([[2.0, 5.0, 7.0]]).expand(6, 3), torch.tensor([[-1.0, 0.0, 1.0]]).expand(6, 3)]).double()
    ace = average_causal_effect(first, (ids, meta), (id_groups, meta_groups), values, target=1, additional_forward_args=args)
    swapped = average_causal_effect(second, (meta, ids), (meta_groups, id_groups), values, target=1, additional_forward_args=args)
    ref = torch.zeros(12, 3, dtype=torch.float64)
    with torch.no_grad():
        for k in range(3):
            for t in range(6):  # a token position: the mean over the samples where it is real
                i2 = ids.clone()
                i2[:, t] = int(values[t, k])
                real = mask[:, t] == 1
                ref[t, k] = first(i2, meta, mask)[real, 1].mean()
            for j in range(6):  # a metadata column: every sample
                m2 = meta.clone()
                m2[:, j] = values[6 + j, k]
                ref[6 + j, k] = first(ids, m2, mask)[:, 1].mean()
    ref -= ref.mean(1, keepdim=True)
    torch.testing.assert_close(ace, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(swapped, ref, rtol=0, atol=1e-12)
    effects = input_effects(second, (meta, ids), (meta_groups, id_groups), (0.0, 3), target=1, additional_forward_args=args)
    f0 = first(ids, meta, mask)[:, 1]
    with torch.no_grad():
        for j in range(6):  # meta's column j of sample 1 (one real token) is set and read like any other
            m2 = meta.clone()
            m2[:, j] = 0
            torch.testing.assert_close(effects[:, 6 + j], f0 - first(ids, m2, mask)[:, 1], rtol=0, atol=1e-12)


def test_input_padding_picks_the_described_input():
    meta, ids, seq = torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 5, 2)
    att = {"attention_mask": torch.tensor([[1, 1, 0], [1, 0, 0]])}
    assert [p is None for p in input_padding((meta, ids), att)] == [True, False]
    assert [p is None for p in input_padding((ids, meta), att)] == [False, True]
    lengths = {"lengths": torch.tensor([2, 3])}
    assert [p is None for p in input_padding((meta, seq), lengths)] == [True, False]
    assert input_padding((meta, seq), None) is None


def test_lengths_of_a_sequence_passed_as_forward_argument_do_not_mark_the_explained_metadata():
    """The recipe's other way round: the table explained, the sequence and its lengths forward arguments."""
    torch.manual_seed(0)
    model = MetaSeq().double()
    meta, x = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 6, 2, dtype=torch.float64)
    lengths = torch.tensor([1, 2, 6, 4])
    effects = input_effects(model, meta, target=1, additional_forward_args={"x": x, "lengths": lengths})
    f0 = model(meta, x, lengths)[:, 1]
    with torch.no_grad():
        for j in range(3):
            m2 = meta.clone()
            m2[:, j] = 0
            torch.testing.assert_close(effects[:, j], f0 - model(m2, x, lengths)[:, 1], rtol=0, atol=1e-12)


def test_an_attention_mask_beside_explained_metadata_marks_the_ids_argument():
    torch.manual_seed(0)
    model = MetaIds(False).double()  # forward(meta, ids, attention_mask)
    ids = torch.randint(1, 10, (4, 6))
    mask = torch.ones(4, 6, dtype=torch.long)
    mask[0, 2:] = 0
    meta = torch.randn(4, 6, dtype=torch.float64)
    effects = input_effects(model, meta, target=1, additional_forward_args=(ids, mask))
    f0 = model(meta, ids, mask)[:, 1]
    with torch.no_grad():
        for j in range(6):
            m2 = meta.clone()
            m2[:, j] = 0
            torch.testing.assert_close(effects[:, j], f0 - model(m2, ids, mask)[:, 1], rtol=0, atol=1e-12)


def test_embeddings_keep_their_padding_beside_token_type_ids():
    embeds, types = torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long)
    args = {"attention_mask": torch.tensor([[1, 1, 0], [1, 0, 0]]), "token_type_ids": types}
    assert input_padding((embeds,), args)[0][..., 0].tolist() == [[False, False, True], [False, True, True]]
