"""CausalRepairModule under '64-true' and 'bf16-true': the terms' set-up reads the training inputs in
the dtype Lightning gives the model its training batches."""

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import BackdoorSuppressionTerm, CausalRepairModule


@pytest.mark.parametrize(("precision", "dtype"), [("64-true", torch.float64), ("bf16-true", torch.bfloat16)])
def test_reverse_engineering_at_setup_reads_the_inputs_in_the_models_dtype(tmp_path, precision, dtype):
    # before: setup ran the float64/bf16 model on the float32 inputs read from the dataset and stopped the
    # fit with 'Input type (float) and bias type (double) should be the same ... pass inputs of the model's dtype'
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(32, 1, 4, 4, generator=g), torch.randint(0, 3, (32,), generator=g)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    term = BackdoorSuppressionTerm(reverse_options={"steps": 3, "batch_size": 8}, adversarial_region=None)
    trainer = pl.Trainer(default_root_dir=tmp_path, precision=precision, max_steps=1, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(CausalRepairModule(net, [term]), DataLoader(TensorDataset(x, y), batch_size=16))
    assert next(net.parameters()).dtype == dtype
    assert term.detection is not None and term.detection.triggers[0].mask.dtype == dtype
