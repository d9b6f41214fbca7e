"""The docs' recipe of a distilled student repaired for counterfactual fairness (docs/your_model.md, 'Which module is
audited', ``<!-- distillation repair -->``): ``CausalRepairModule.wrap`` of a LightningModule holding a frozen teacher
as a submodule runs the teacher on the training batches' rows only (the term's counterfactual rows go through
``forward``, the student; the audit's passes too), leaves the teacher's weights as they were, and the term takes the
student's flip gap down (newuser106)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "your_model.md"


def _block() -> str:
    return re.search(r"<!-- distillation repair -->\s*```python\n(.*?)```", PAGE.read_text(), re.S).group(1)


def test_distillation_repair_recipe_runs_the_teacher_on_the_batches_only(tmp_path, monkeypatch):
    pytest.importorskip("lightning")
    monkeypatch.chdir(tmp_path)  # the trainer's default root: no lightning_logs/ in the repository
    code = _block().replace("max_epochs=3", "max_epochs=1, enable_progress_bar=False, enable_model_summary=False")
    code = code.replace("trainer.fit(", "before = {k: v.clone() for k, v in teacher.state_dict().items()}\n"
                        "module.teacher.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))\ntrainer.fit(")
    scope: dict = {"rows": []}
    exec(compile(code, str(PAGE), "exec"), scope)  # noqa: S102 - the docs' own code
    assert scope["rows"] == [128] * 8  # one epoch of 1024 rows in batches of 128, nothing else
    teacher = scope["module"].teacher
    assert not teacher.training and all(not p.requires_grad for p in teacher.parameters())
    assert all((teacher.state_dict()[k] == v).all() for k, v in scope["before"].items())
    assert scope["audit"].last_scalars["causal/fairness/cf_gap"] < 0.02  # 0.01; 0.035 with the term at weight 0 (one epoch)
