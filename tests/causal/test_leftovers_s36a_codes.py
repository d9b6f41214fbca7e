"""Session 36 leftovers of the category codes kept in float columns (``token_ids._code_columns`` and its readers).

A match at an offset of a shared table (rtdl's ``emb(x[:, cats].long() + offsets)``) asked ``16 + log2(D)`` rows
besides ``16 + log2(D)`` bits in each shifted index: on a probe of 8 to 16 rows a table of multi-level codes was read as
floats in silence (the stability measures jittered the codes, the ACE grid interpolated them). The bits alone decide now
(a 0/1 label on few rows carries too few of them: still refused)."""

import torch

from lightning_causal import CausalGraphAudit, Probe
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.input_noise import float_code_elements
from tests.audits.test_review_s35e_code_noise import code_values_run
from tests.causal.test_codes_offsets_s35_shared_table import FTTransformer, census


def test_a_shared_table_of_multi_level_codes_is_read_on_a_probe_of_12_rows():
    torch.manual_seed(0)
    model, x = FTTransformer().eval(), census(12)
    (codes,) = float_code_elements(Forward(model), (x,))  # None at HEAD: 12 < 16 + log2(7) rows
    assert codes.reshape(-1).nonzero().flatten().tolist() == [4, 5, 6]
    values, graph = code_values_run(model, x, lambda: CausalGraphAudit(
        ["block.1"], unit_dim=-1, top_k=4, stability_resamples=1).run(model, Probe(x)), slice(None))
    assert float((values[:, 4:] - values[:, 4:].round()).abs().max()) == 0.0  # the codes ran whole
    assert float((values[:, :4] - values[:, :4].round()).abs().max()) > 0.1  # the numeric columns took their noise
