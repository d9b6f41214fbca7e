"""fe40c494's words for declaring the task (outputs in [0, 1] that are logits) named only
`self.save_hyperparameters({'task': 'multiclass'})`, which a plain nn.Module (FairnessAudit, SobolAudit and
CaptumBaseline take those too) does not have (final_read_F F6): they now name `self.hparams = {'task': 'multiclass'}`
for a plain module, and following those words literally silences the warning."""

from __future__ import annotations

from tests.audits.test_mends_s41d_cosine_logits_way import _model, _warned


def test_a_plain_module_is_told_a_way_it_has():
    (message,) = _warned(_model())
    way = "`self.hparams = {'task': 'multiclass'}` on a plain nn.Module"
    assert way in message
    model = _model()
    assert not hasattr(model, "save_hyperparameters")
    exec(way.split("`")[1], {}, {"self": model})  # the words, as written
    assert _warned(model) == []

