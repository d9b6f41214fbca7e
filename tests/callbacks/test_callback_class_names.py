"""``CausalAuditCallback(class_names=...)``: the class names had to be repeated in every audit (four times in the
DQN recipe; "class names have to be passed to every audit separately", the newuser12 trial). The callback's names
go to every audit that takes ``class_names`` and was given none; an audit's own names are kept."""

from __future__ import annotations

import numpy as np
import pytest
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal import CausalAuditCallback, InputEffectAudit, UnitImportanceAudit
from lightning_causal.audits import CaptumBaseline
from lightning_causal.reporting.figure_kinds import MapData, map_figures
from tests.helpers.lightning import classifier, loaders, trainer

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def test_the_callbacks_class_names_reach_the_audits_given_none(tmp_path):
    own = ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"]
    audits = [InputEffectAudit(patch_size=4), CaptumBaseline(methods=["Saliency"], patch_size=4, class_names=own),
              UnitImportanceAudit(["model.conv1"])]
    callback = CausalAuditCallback(audits, probe_size=8, class_names=np.array(NAMES))  # NumPy strings, as sklearn gives
    trainer(tmp_path, max_epochs=1, callbacks=[callback], limit_train_batches=1, limit_val_batches=1).fit(classifier(), *loaders())
    effect = callback.last_results["input_effect"]
    assert effect.meta["class_names"] == NAMES and all(type(n) is str for n in effect.meta["class_names"])
    assert callback.last_results["captum_baseline"].meta["class_names"] == own  # its own names kept
    assert not hasattr(audits[2], "class_names")
    (_, fig), *_ = map_figures(MapData(callback.probe.first, effect.maps, "input_effect", effect.meta, callback.probe.labels))
    predicted = int(effect.meta["targets"][0])
    assert f"explains class {NAMES[predicted]!r}" in fig._suptitle.get_text()


def test_bad_class_names_are_refused_naming_the_argument():
    with pytest.raises(MisconfigurationException, match="`class_names` to be None or a sequence of strings"):
        CausalAuditCallback([InputEffectAudit()], class_names="zero one")
