"""What a long run keeps in memory (newuser18 long-run trial; recipes.md 'Reading the results'): the callback
holds the last audit of each audit, never a history. Over 40 audit epochs of seven audits on digits its process
grew from 585 to 590 MiB (tracemalloc: +60 kB between epochs 3 and 11, matplotlib's caches). Here: the state
the callback holds after 2 and after 4 audit epochs (drift from the second on) is the same size, all but the list of
audited epochs."""

from __future__ import annotations

import pickle

from lightning_causal import CausalAuditCallback
from lightning_causal.audits import InputEffectAudit, UnitImportanceAudit
from tests.helpers.lightning import classifier, loaders, trainer


def _held_after(tmp_path, epochs: int) -> tuple[int, CausalAuditCallback]:
    callback = CausalAuditCallback([InputEffectAudit(patch_size=4), UnitImportanceAudit(["model.conv2"])], probe_size=8)
    t = trainer(tmp_path / str(epochs), max_epochs=epochs, callbacks=[callback], limit_train_batches=1, limit_val_batches=1)
    t.fit(classifier(), *loaders())
    held = {k: v for k, v in vars(callback).items() if k != "audited_epochs"}
    return len(pickle.dumps(held)), callback


def test_the_state_a_callback_holds_does_not_grow_with_the_audited_epochs(tmp_path):
    two, first = _held_after(tmp_path, 2)
    four, last = _held_after(tmp_path, 4)
    assert first.audited_epochs == [0, 1] and last.audited_epochs == [0, 1, 2, 3]
    assert set(last.last_results) == {"input_effect", "unit_importance"}  # the last audit of each, by name
    assert four == two  # no earlier epoch's results, vectors or figures added
