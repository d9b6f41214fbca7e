"""The docs stay in step with the code: every public name has its line in docs/api.md, the recipes'
code compiles against the names that exist, the recipes' LightningCLI config runs, and every
image the docs show exists."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import lightning_causal

DOCS = Path(__file__).resolve().parents[1] / "docs"
RECIPES = (DOCS / "recipes.md").read_text()


def test_every_public_name_has_a_line_in_the_api_table():
    table = (DOCS / "api.md").read_text().split("## Reference")[0]
    listed = {name for row in table.splitlines() if row.startswith("| `") for name in re.findall(r"`([\w.]+)`", row.split(" | ")[0])}
    assert set(lightning_causal.__all__) <= listed, sorted(set(lightning_causal.__all__) - listed)


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", RECIPES, re.S)


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_recipe_code_compiles_and_imports_names_that_exist(index):
    tree = ast.parse(_python_blocks()[index])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lightning_causal"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module}.{alias.name}"


def test_recipe_cli_config_with_monitoring_runs(tmp_path):
    from lightning.pytorch.cli import LightningCLI

    from lightning_causal import AuditEarlyStopping, AuditModelCheckpoint, CausalAuditCallback

    yaml = re.search(r"<!-- recipe: cli -->\s*```yaml\n(.*?)```", RECIPES, re.S).group(1)
    (tmp_path / "monitoring.yaml").write_text(yaml)
    config = Path(__file__).resolve().parents[1] / "examples" / "config_digits.yaml"
    cli = LightningCLI(args=["fit", "--config", str(config), "--config", str(tmp_path / "monitoring.yaml"),
                             "--trainer.fast_dev_run=true", f"--trainer.logger.init_args.save_dir={tmp_path}",
                             f"--trainer.default_root_dir={tmp_path}"], save_config_callback=None)
    kinds = [type(c) for c in cli.trainer.callbacks]
    assert {CausalAuditCallback, AuditEarlyStopping, AuditModelCheckpoint} <= set(kinds)
    stop = next(c for c in cli.trainer.callbacks if isinstance(c, AuditEarlyStopping))
    assert (stop.monitor, stop.patience) == ("causal/input_effect/top5_share", 2)


def test_images_shown_by_the_docs_exist():
    for page in DOCS.glob("*.md"):
        for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text()):
            assert (DOCS / image).is_file(), (page.name, image)
