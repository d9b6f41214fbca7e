"""examples/config_digits.yaml parses with LightningCLI and runs with fast_dev_run."""

from pathlib import Path

from lightning.pytorch.cli import LightningCLI

from lightning_causal.callbacks import CausalAuditCallback

CONFIG = Path(__file__).resolve().parents[2] / "examples" / "config_digits.yaml"


def test_config_parses_and_runs(tmp_path):
    cli = LightningCLI(
        args=["fit", "--config", str(CONFIG), "--trainer.fast_dev_run=true",
              f"--trainer.logger.init_args.save_dir={tmp_path}", f"--trainer.default_root_dir={tmp_path}"],
        save_config_callback=None,
    )
    cb = next(c for c in cli.trainer.callbacks if isinstance(c, CausalAuditCallback))
    assert [a.name for a in cb.audits] == ["input_effect", "unit_importance"]
    assert cb.audits[0].patch_size == 2 and cb.every_n_epochs == 5
    assert cb.audited_epochs == [0]  # fast_dev_run: the on_fit_end audit ran
    assert set(cb.last_results) == {"input_effect", "unit_importance"}
