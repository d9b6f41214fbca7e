"""newuser37: a class-incremental fit whose validation data holds every class from the start (5 of 10 in the head).

The probe is read and checked at the start of fit, against the 5-class head: labels 5 to 9 are refused, as they
should be, but the message offered only other causes (labels numbered from 1, an autoencoder's labels). It now names
the class-incremental case and both ways out: validate on the classes the head has, or leave the labels out.
"""

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from tests.helpers.lightning import SgdMlp, quick_trainer


def test_labels_of_classes_the_head_does_not_have_yet_name_the_class_incremental_way_out():
    torch.manual_seed(0)
    x, y = torch.randn(40, 4), torch.arange(40) % 10  # classes 0-9
    module = SgdMlp(4)
    module.net[2] = nn.Linear(8, 5)  # 5 classes at the start
    loader = DataLoader(TensorDataset(x, y), batch_size=20)
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=10)
    with pytest.raises(MisconfigurationException, match=r"classes 0 to 4 .*head that grows during the fit \(class-incremental"):
        quick_trainer(max_epochs=1, callbacks=[callback], num_sanity_val_steps=0).fit(module, loader, loader)
