"""CausalRepairModule with a BackdoorSuppressionTerm on batches of a mixed collate, the image beside a table:

- inputs ``(image, tab)`` (a dataset giving ``((image, tab), y)``): the set-up's refusal advised ``explain=`` and the
  table as a forward argument, which the term refuses in turn (at construction, at its first step); it names the term's
  one way, a model of one input;
- the table as the batch's forward argument (``unpack_batch -> (image, y, {"tab": tab})``) and ``trigger=None``: the
  set-up ran Neural Cleanse on the images alone and failed inside it, "forward() missing 1 required positional
  argument: 'tab'"; it is refused, before any set-up, with the reason and the way out.
"""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader

from lightning_causal import BackdoorSuppressionTerm, CausalRepairModule
from tests.helpers.multimodal import ImageTab


def _pairs(n: int = 16) -> list:
    g = torch.Generator().manual_seed(0)
    image, tab = torch.rand(n, 1, 8, 8, generator=g), torch.randn(n, 5, generator=g)
    return [((image[i], tab[i]), i % 2) for i in range(n)]  # collated to [[image, tab], y]


def _trainer(tmp_path) -> pl.Trainer:
    return pl.Trainer(max_epochs=1, limit_train_batches=2, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", default_root_dir=tmp_path)


def test_inputs_of_image_and_table_are_refused_naming_the_terms_one_way(tmp_path):
    t = _trainer(tmp_path)
    with pytest.raises(MisconfigurationException, match=r"hold 2 inputs .*term 'backdoor_suppression' cannot act on one of "
                                                         r"them beside the others .*rows of their own.*a model of one input") as err:
        t.fit(CausalRepairModule(ImageTab(), [BackdoorSuppressionTerm()]), DataLoader(_pairs(), batch_size=8))
    assert "pass CausalRepairModule `explain=`" not in str(err.value)  # refused for this term at construction
    assert t.global_step == 0


def test_the_table_as_forward_argument_is_refused_before_neural_cleanse(tmp_path):
    module = CausalRepairModule(ImageTab(), [BackdoorSuppressionTerm()], unpack_batch=lambda b: (b[0][0], b[1], {"tab": b[0][1]}))
    t = _trainer(tmp_path)
    with pytest.raises(MisconfigurationException, match=r"forward arguments \(\['tab'\]\) beside term 'backdoor_suppression'"
                                                         r".*set-up \(trigger=None: Neural Cleanse\) runs the model without them"):
        t.fit(module, DataLoader(_pairs(), batch_size=8))
    assert module.terms[0].detection is None and t.global_step == 0
