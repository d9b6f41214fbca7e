"""layer_activations.SkippedModulesError took two required constructor arguments beside its message, so it could not be
pickled (a DataLoader worker, a multiprocessing pool, Lightning's spawn strategy send errors pickled) nor copied
(mends_s42h, final_read_E F5)."""

import copy
import pickle

import torch

from lightning_causal.causal.structure.layer_activations import (
    SkippedModulesError,
    skipped_modules_error,
)


def test_skipped_modules_error_pickles_and_copies_with_its_modules_and_rows():
    err = skipped_modules_error(["mid"], torch.tensor([3, 4]))
    for back in (pickle.loads(pickle.dumps(err)), copy.copy(err), copy.deepcopy(err)):
        assert type(back) is SkippedModulesError and str(back) == str(err) and back.modules == ["mid"]
        assert torch.equal(back.rows, torch.tensor([3, 4]))
