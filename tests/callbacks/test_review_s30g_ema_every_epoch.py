"""Lightning's EMAWeightAveraging listed before CausalAuditCallback was warned about ("the averaging swaps its averaged
weights in before the fit-end audit") also with every_n_epochs=1, where no fit-end audit runs: every epoch a fit ends
in, also one cut short by max_steps, is audited at its end on the trained weights, before the averaging swaps at
training's end. Now warned only where an epoch is off the schedule (every_n_epochs=2 of 3 epochs: the fit-end audit of
epoch 2 explains the averaged weights, still warned)."""

import pytest

from tests.callbacks.test_leftovers_s30d_swa_last_epoch_audited import fit_beside_averaging

callbacks = pytest.importorskip("lightning.pytorch.callbacks")
if not hasattr(callbacks, "EMAWeightAveraging"):
    pytest.skip("EMAWeightAveraging needs Lightning >= 2.6", allow_module_level=True)


def _fit(tmp_path, every_n_epochs, max_steps=-1):
    messages, epochs, explained, averaged = fit_beside_averaging(tmp_path, every_n_epochs,
                                                                 callbacks.EMAWeightAveraging(decay=0.5), max_steps)
    return any("comes after EMAWeightAveraging" in m for m in messages), epochs, explained, averaged


@pytest.mark.parametrize("max_steps", [-1, 6])  # 4 steps an epoch: 6 ends the fit in epoch 1
def test_every_epoch_on_the_schedule_is_not_warned(tmp_path, max_steps):
    warned, epochs, explained, averaged = _fit(tmp_path, 1, max_steps)
    assert epochs == ([0, 1, 2] if max_steps == -1 else [0, 1])  # the epoch the fit ends in, audited at its end
    assert explained != pytest.approx(averaged, rel=1e-3)  # on the trained weights: the premise of no warning
    assert not warned  # before: warned


def test_an_epoch_off_the_schedule_is_still_warned(tmp_path):
    warned, epochs, explained, averaged = _fit(tmp_path, 2)
    assert epochs == [1, 2]  # 2 by the fit-end audit, on the averaged weights
    assert explained == pytest.approx(averaged, rel=1e-6)
    assert warned
