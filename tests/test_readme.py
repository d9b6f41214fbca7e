"""The README's monitoring example runs as printed: early stopping and the best checkpoint on a
causal scalar audited every 3 epochs."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _snippet(heading: str) -> str:
    text = README.read_text()
    section = text.split(heading, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_monitoring_example_runs_as_printed(tmp_path, monkeypatch):
    code = _snippet("## Early stopping and checkpoints on a causal metric")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    namespace: dict = {}
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    trainer = namespace["trainer"]
    audit = next(cb for cb in trainer.callbacks if type(cb).__name__ == "CausalAuditCallback")
    assert audit.audited_epochs[:2] == [2, 5]
    best = trainer.checkpoint_callback.best_model_path
    assert re.search(r"epoch=([258])-step=\d+\.ckpt$", best) and best in out.getvalue()
    assert (tmp_path / "runs" / "monitoring").is_dir()
    assert namespace["best"].lr == 2e-3  # the checkpoint's hyper-parameters, the network passed
