"""What recipes.md ('In TensorBoard') tells the user of a long run, checked against TensorBoard itself (newuser18
long-run trial): with its defaults TensorBoard loads 10 steps of each image tag and of each text card (1,000 of a
scalar), so an audit every epoch for 24 epochs showed 10 of its figures and cards, with nothing saying so; the
page now names the ``--samples_per_plugin`` value that shows them all. The test writes 12 audit epochs of one
image, one card and one scalar and loads them as TensorBoard's server does, with its defaults and with the
page's flag."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing import data_ingester, plugin_event_multiplexer
from tensorboard.plugins.core.core_plugin import _parse_samples_per_plugin
from torch.utils.tensorboard import SummaryWriter

RECIPES = Path(__file__).resolve().parents[2] / "docs" / "recipes.md"


def _loaded(logdir: Path, flag: dict[str, int]) -> dict[str, int]:
    guidance = {**data_ingester.DEFAULT_TENSOR_SIZE_GUIDANCE, **flag}  # as the server builds it from the flag
    mux = plugin_event_multiplexer.EventMultiplexer(size_guidance=data_ingester.DEFAULT_SIZE_GUIDANCE,
                                                    tensor_size_guidance=guidance)
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    acc = mux.GetAccumulator(next(iter(mux.Runs())))
    return {tag: len(acc.Tensors(tag)) for tag in ("causal/audit/maps/sample_0", "causal/summary/text_summary", "causal/audit/x")}


def test_tensorboard_shows_10_audits_of_a_long_run_and_every_one_with_the_pages_flag(tmp_path):
    writer = SummaryWriter(str(tmp_path))
    for step in range(12):
        writer.add_image("causal/audit/maps/sample_0", np.zeros((4, 4, 3), dtype=np.uint8), step, dataformats="HWC")
        writer.add_text("causal/summary", f"epoch {step}", step)
        writer.add_scalar("causal/audit/x", float(step), step)
    writer.close()
    text = " ".join(RECIPES.read_text().split())
    flag = re.search(r"`tensorboard --logdir runs --samples_per_plugin (\S+)`", text)
    assert flag is not None and "loads at most 10 steps of each image tag and of each text card" in text
    assert _loaded(tmp_path, {}) == {"causal/audit/maps/sample_0": 10, "causal/summary/text_summary": 10, "causal/audit/x": 12}
    assert _loaded(tmp_path, _parse_samples_per_plugin(flag.group(1))) == dict.fromkeys(
        ("causal/audit/maps/sample_0", "causal/summary/text_summary", "causal/audit/x"), 12)
