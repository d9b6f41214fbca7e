"""docs/recipes.md, 'Ranking and retrieval' (newuser79's trial): the listwise ranker's and the two-tower model's
blocks run as printed and give what the page says, checked against edits by hand; the callback block audits a fit."""

import lightning.pytorch as pl
import torch

from tests.test_docs import _block, _quiet_trainer, _run_snippet


def test_listwise_ranker_block_finds_the_planted_causes_and_matches_edits_by_hand():
    ns = _run_snippet(_block("recipes.md", "class ListRanker(nn.Module)"), {})
    model, x, mask, by_feature, by_item = ns["model"], ns["x"], ns["mask"], ns["by_feature"], ns["by_item"]
    strength = by_feature.abs().mean(0)
    assert strength[:2].min() > 10 * strength[2:].max()  # features 0 and 1 cause relevance, 2-4 do not
    with torch.no_grad():
        s = model(x, mask)
        top = s.argmax(1, keepdim=True)
        assert (mask.gather(1, top) == 1).all()  # the top item is a real one in every list
        for k in (0, 4):  # feature k := 0 in every item, read at the top item
            edited = x.clone()
            edited[..., k] = 0
            torch.testing.assert_close(by_feature[:, k], (s.gather(1, top) - model(edited, mask).gather(1, top))[:, 0])
    padded = mask == 0
    assert (by_item[padded] == 0).all() and (by_item[~padded].abs().sum() > 0)
    cf = ns["cf"]
    assert bool(cf.success.all())
    moved = cf.delta[cf.success].abs().sum((0, 2)) > 0
    assert moved.tolist() == [False, False, True] + [False] * 5  # only item 2's features change
    with torch.no_grad():
        assert (model(cf.counterfactuals, mask[:16]).argmax(1) == 2).all()
    gap = ns["gap"]
    assert gap["mean_abs"] < 0.05 and gap["flip_rate"] < 0.05


def test_two_tower_block_explains_each_querys_own_item_as_one_row_alone_does():
    ns = _run_snippet(_block("recipes.md", "class ListRanker(nn.Module)"), {})
    ns = _run_snippet(_block("recipes.md", "class TwoTower(nn.Module)"), ns)
    towers, q, d, own, retrieval = ns["towers"], ns["q"], ns["d"], ns["own"], ns["retrieval"]
    with torch.no_grad():
        for k in (0, 3):  # query feature k := 0, each query run alone beside its own item
            edited = q.clone()
            edited[:, k] = 0
            by_hand = torch.stack([towers(q[i:i + 1], d[i:i + 1])[0, 0] - towers(edited[i:i + 1], d[i:i + 1])[0, 0]
                                   for i in range(len(q))])
            torch.testing.assert_close(own[:, k], by_hand, atol=1e-4, rtol=1e-4)
            whole = torch.stack([towers(q[i:i + 1], d).log_softmax(1)[0, i] - towers(edited[i:i + 1], d).log_softmax(1)[0, i]
                                 for i in range(len(q))])
            torch.testing.assert_close(retrieval[:, k], whole, atol=1e-4, rtol=1e-4)
    for effects in (own, retrieval):
        strength = effects.abs().mean(0)
        assert strength[:2].min() > 10 * strength[2:].max()


def test_the_callback_block_audits_a_fit_of_the_ranker(monkeypatch, tmp_path):
    _quiet_trainer(monkeypatch, tmp_path)
    ns = _run_snippet(_block("recipes.md", "class ListRanker(nn.Module)"), {})
    ns = _run_snippet(_block("recipes.md", "b[2].masked_fill(b[1] == 0, -1e9).argmax(1)"), ns)
    ranker, lists, g = ns["model"], ns["lists"], torch.Generator().manual_seed(1)

    class LitRanker(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = ranker.net
            self.ranker = ranker

        def forward(self, x, attention_mask):
            return self.ranker(x, attention_mask)

        def training_step(self, batch, _):
            x, mask, relevance = batch
            p = (relevance / 0.5).masked_fill(mask == 0, float("-inf")).softmax(1)
            return -(p * self(x, mask).log_softmax(1)).sum(1).mean()

        def validation_step(self, batch, _):
            pass

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=1e-3)

    data = torch.utils.data.TensorDataset(*lists(64, g))
    loader = torch.utils.data.DataLoader(data, batch_size=32)
    trainer = pl.Trainer(max_epochs=1, callbacks=[ns["audits"]], logger=False)
    trainer.fit(LitRanker(), loader, loader)
    results = ns["audits"].last_results
    strength = results["input_effect"].vectors["mean_abs_effect"]
    assert strength[:2].min() > 10 * strength[2:].max()
    assert results["counterfactual"].scalars["explained"] >= 0 and "unit_importance" in results
