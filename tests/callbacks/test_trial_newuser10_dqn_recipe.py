"""The DQN recipe of docs/recipes.md (newuser10 trial) runs as printed, shortened, and does what its bullets say:
the greedy and fixed-action effects, the Q-network's layers only (no target_net), Sobol' indices of Q(s, right)
itself, counterfactuals that flip the greedy action; without `probe=` the fit stops naming the train_dataloader."""

import re
import warnings

import pytest
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from tests.test_docs import DOCS, _quiet_trainer, _run_snippet

SHORT = (("max_epochs=10", "max_epochs=1"), ("every_n_epochs=5", "every_n_epochs=1"), ("[:256]", "[:32]"),
         ('towards="runner_up", ', 'towards="runner_up", max_samples=2, '))


def _recipe() -> str:
    return re.search(r"<!-- recipe: dqn -->\s*```python\n(.*?)```", (DOCS / "recipes.md").read_text(), re.S).group(1)


def test_the_dqn_recipe_runs_and_explains_the_q_network(monkeypatch, tmp_path):
    _quiet_trainer(monkeypatch, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the stream's length warning, which the recipe explains
        ns = _run_snippet(_recipe(), {}, SHORT)
    audit = ns["audit"]
    assert audit.audited_epochs == [0] and audit.probe_origin == "probe"
    results = audit.last_results
    assert results["layer_map"].graphs["layer_map"]["layers"] == ["net.0", "net.2"]
    sobol = results["sobol_q_right"].meta
    assert sobol["explained"] == "raw output" and sobol["target"] == 1 and sobol["target_name"] == "right"
    rows = results["counterfactual"].tables["counterfactuals"]
    assert [row["index"] for row in rows] == [0, 1] and all(row["target"] == 1 - row["predicted"] for row in rows)
    assert {"causal/greedy/mean_abs_effect", "causal/q_right/mean_abs_effect"} <= set(audit.last_scalars)
    assert (tmp_path / "runs" / "dqn" / "version_0" / "causal_audit" / "epoch_0000.json").is_file()


def test_without_a_probe_the_recipes_fit_stops_naming_the_train_dataloader(monkeypatch, tmp_path):
    _quiet_trainer(monkeypatch, tmp_path)
    with pytest.raises(MisconfigurationException, match=r"train_dataloader \(this fit validates on no data.*ReplayStream"):
        _run_snippet(_recipe(), {}, (*SHORT, ("    probe=states,\n", "")))
