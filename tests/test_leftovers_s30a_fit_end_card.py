"""leftovers_s30a: the text card of the callback's audit at the end of fit did not say it was one.

A last epoch off the schedule (``every_n_epochs=2`` of 3 epochs) is audited once training ended (``on_fit_end=True``),
after training and not monitored; its TensorBoard card read "### Causal audit, epoch 2 (step 5)" as a scheduled epoch's
(only the report's file name, where a ``report_dir`` was given, ended in ``_fit_end``). The card's heading now says
"at the end of fit" and the line under it why and that its scalars are not monitored; a scheduled epoch's is unchanged.
"""

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback
from tests.callbacks.test_trial_newuser17_custom_audit import WeightNorm, _Linear


def test_the_fit_end_audits_card_says_so(tmp_path):
    loader = DataLoader(TensorDataset(torch.arange(24.0).reshape(8, 3) / 10, torch.tensor([0, 1] * 4)), batch_size=4)
    callback = CausalAuditCallback([WeightNorm(0, name="w")], probe_size=4, every_n_epochs=2)
    trainer = pl.Trainer(max_epochs=3, callbacks=[callback], logger=TensorBoardLogger(tmp_path, name="", version=""),
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(_Linear(), loader)
    events = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    events.Reload()
    cards = [e.tensor_proto.string_val[0].decode() for e in events.Tensors("causal/summary/text_summary")]
    assert [card.splitlines()[0] for card in cards] == [
        "### Causal audit, epoch 1 (step 3)", "### Causal audit at the end of fit, epoch 2 (step 5)"]  # before: "### Causal audit, epoch 2 (step 5)"
    assert cards[1].splitlines()[2] == (
        "The audit at the end of fit (`on_fit_end=True`): the fit's last epoch was not audited at its end (off the "
        "schedule, or an epoch that never ended); run after training, its scalars are not monitored.")
    assert "end of fit" not in cards[0]
