"""The repair module's words for a detector's (images, targets) batch sat in the pure core
(causal/engine/per_sample_results.py, which should know nothing of repair): REPAIR_TARGETS_WAY and WRAPPED_TARGETS_WAY
are repair/module.py's now, their shared example written once, the words as before."""

import inspect

from lightning_causal.causal.engine import per_sample_results
from lightning_causal.repair import module

LABELS = ("`unpack_batch=lambda batch: (batch[0], torch.stack([(t['labels'] == c).any() for t in batch[1]]).long(), "
          "None)`, with `output=` a score per image and class (docs/your_model.md, 'Object detectors')")


def test_the_repair_ways_are_the_repair_modules_and_end_with_one_example():
    assert module.REPAIR_TARGETS_WAY.startswith("CausalRepairModule's default `task_step`")
    assert module.WRAPPED_TARGETS_WAY.startswith("A wrapped module (`CausalRepairModule.wrap`) keeps its own")
    assert module.REPAIR_TARGETS_WAY.endswith(f"keeps them on its triggered copies), e.g. {LABELS}")
    assert module.WRAPPED_TARGETS_WAY.endswith(f"for a term that needs them, e.g. {LABELS}")


def test_the_core_says_nothing_of_the_repair_module():
    assert not hasattr(per_sample_results, "REPAIR_TARGETS_WAY")
    assert not hasattr(per_sample_results, "WRAPPED_TARGETS_WAY")
    assert "CausalRepairModule" not in inspect.getsource(per_sample_results)
