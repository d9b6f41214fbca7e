"""Trial newuser122: DETR-like set predictors (docs/your_model.md, "Object detectors", "Set predictors (DETR)").

A DETR returns ``{"pred_logits": [N, Q, C + 1], "pred_boxes": [N, Q, 4]}``: one row per object query, the last class
"no object". Before: without ``output=`` the dict was refused advising ``output='pred_logits'``, which was refused in
turn advising ``out.mean(1)`` (the queries averaged with "no object") or ``out[:, 0]`` (the first query: no object of
the image, its argmax "no object" wherever it finds none); a Hugging Face-like output (``.logits`` beside
``.pred_boxes``) got the same advice; a callable giving a query's row of ``C + 1`` classes explained "no object" in
silence wherever ``target=`` was left out. Now each names each class's best probability over the queries, "no object"
left out, and the callable of ``C + 1`` columns is warned of, once per call. The page's recipe gives the effects of a
float64 "set the patch to 0, rerun, difference" loop, unchanged when the queries are permuted. A
``CausalRepairModule.wrap`` of a detector's LightningModule on ``(images, targets)`` batches was told to override
``task_step`` (the wrap keeps the module's own ``training_step``); now it is told ``wrap(..., unpack_batch=)``.
"""

from __future__ import annotations

import copy
import re
import warnings
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader

from lightning_causal.causal import input_effects, unit_effects
from tests.causal.test_trial_newuser73_detectors import (
    _hand,  # f_c(x) - f_c(x | do(patch g := 0)), by hand
)

PAGE = Path(__file__).resolve().parents[2] / "docs" / "your_model.md"
WAY = "out['pred_logits'].softmax(-1)[..., :-1].amax(1)"


@pytest.fixture(scope="module")
def ns():
    code = re.search(r"<!-- set predictor -->\s*```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's note on nested tensors of a TransformerDecoderLayer
        exec(compile(code, "<your_model.md set predictor>", "exec"), namespace)  # noqa: S102 - the page's own example
    return namespace


def test_the_recipe_equals_a_hand_loop_and_ignores_the_query_order(ns):
    x, mask, best = ns["x"].double(), ns["mask"], ns["best"]
    net = copy.deepcopy(ns["net"]).double()
    got = input_effects(net, x, mask, output=best, target=1)
    hand = _hand(net, x, mask, best, 1)
    assert torch.allclose(got, hand) and hand.abs().sum() > 0
    permuted = copy.deepcopy(net)
    with torch.no_grad():
        permuted.query_embed.weight.copy_(net.query_embed.weight[[2, 0, 3, 1]])
        assert not torch.allclose(permuted(x)["pred_logits"], net(x)["pred_logits"])  # the queries' rows moved
    assert torch.allclose(input_effects(permuted, x, mask, output=best, target=1), got)
    # a query slot's state: do(h[:, q] := 0) after the last decoder layer but one, by hand
    slots = unit_effects(net, x, "decoder.layers.1", output=best, target=1, unit_dim=1)
    hand = []
    with torch.no_grad():
        for q in range(4):
            handle = net.decoder.layers[1].register_forward_hook(lambda m, i, o, q=q: o.index_fill(1, torch.tensor([q]), 0))
            try:
                hand.append(best(net(x))[:, 1])
            finally:
                handle.remove()
        base = best(net(x))[:, 1]
    assert torch.allclose(slots, base[:, None] - torch.stack(hand, 1))


@pytest.mark.parametrize("output", [None, "pred_logits"])
def test_the_query_logits_are_refused_naming_the_best_over_the_queries(ns, output):
    with pytest.raises((TypeError, ValueError)) as err:
        input_effects(ns["net"], ns["x"], ns["mask"], output=output, target=1)
    message = str(err.value)
    assert WAY in message and "'no object'" in message
    assert "out.mean(1)" not in message and "e.g. `output='pred_logits'`" not in message


class _DetrOutput:  # Hugging Face's DetrObjectDetectionOutput: attributes `logits` [N, Q, C + 1] and `pred_boxes`
    def __init__(self, out):
        self.logits, self.pred_boxes = out["pred_logits"], out["pred_boxes"]


@pytest.mark.parametrize("wrap", [_DetrOutput, lambda out: {"logits": out["pred_logits"], "pred_boxes": out["pred_boxes"]}])
def test_logits_beside_pred_boxes_are_refused_without_output(ns, wrap):
    net = ns["net"]
    model = torch.nn.Sequential()  # a module whose forward wraps the DETR's output
    model.forward = lambda x: wrap(net(x))
    with pytest.raises(TypeError, match=re.escape(".softmax(-1)[..., :-1].amax(1)")):
        input_effects(model, ns["x"], ns["mask"])


def test_a_callable_of_the_query_classes_is_warned_of_once(ns):
    x, mask = ns["x"], ns["mask"]
    with pytest.warns(UserWarning, match=r"last class is 'no object'") as record:
        input_effects(ns["net"], x, mask, output=lambda out: out["pred_logits"][:, 3])
    assert sum("no object" in str(w.message) for w in record) == 1
    assert WAY in str(next(w.message for w in record if "no object" in str(w.message)))
    with warnings.catch_warnings(record=True) as quiet:
        warnings.simplefilter("always")
        input_effects(ns["net"], x, mask, output=lambda out: out["pred_logits"][:, 3, :-1])
        input_effects(ns["net"], x, mask, output=ns["best"], target=1)
    assert not [w for w in quiet if "no object" in str(w.message)]


class _Lit(pl.LightningModule):  # the DETR's own loss of (images, targets) batches, a stand-in for the matched one
    def __init__(self, net):
        super().__init__()
        self.model = net

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, targets = batch
        return self(x)["pred_logits"].mean() + sum(len(t["labels"]) for t in targets) * 0.0

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_a_wrapped_detector_is_told_to_give_the_terms_the_images_not_a_task_step(ns, tmp_path):
    from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm

    x = ns["x"]
    targets = [{"labels": torch.tensor([1] * (i % 3 + 1)), "boxes": torch.rand(i % 3 + 1, 4)} for i in range(len(x))]
    loader = DataLoader(list(zip(x, targets)), batch_size=4, collate_fn=lambda items: (torch.stack([i[0] for i in items]),
                                                                                         [i[1] for i in items]))
    grow = lambda images: torch.nn.functional.max_pool2d(images, 3, 1, 1)  # noqa: E731 - each square a pixel larger
    terms = [CounterfactualFairnessTerm(grow, output=ns["best"])]
    trainer = dict(fast_dev_run=1, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                   enable_model_summary=False)
    with pytest.raises(MisconfigurationException) as err:
        pl.Trainer(**trainer).fit(CausalRepairModule.wrap(_Lit(copy.deepcopy(ns["net"]).train()), terms), loader)
    assert "CausalRepairModule.wrap(module, terms, unpack_batch=lambda batch: (batch[0], None, None))" in str(err.value)
    assert "override `task_step`" not in str(err.value)
    wrapped = CausalRepairModule.wrap(_Lit(copy.deepcopy(ns["net"]).train()), terms, unpack_batch=lambda batch: (batch[0], None, None))
    pl.Trainer(**trainer).fit(wrapped, loader)  # the advice runs: the wrapped training_step reads the targets
