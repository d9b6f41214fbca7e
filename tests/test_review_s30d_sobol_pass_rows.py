"""60c4e56d's refusal of a row whose value moves when it runs alone said "than in its pass of 64 rows" for an analysis
of n = 64 drawn rows whose evaluation ran them in one pass of 256 (A's rows and the mixed blocks' after them, chunks
of max_batch_size rows): the count named was A's rows in the first chunk, not the pass. It now names the bound of the
analysis' passes, the rows per pass."""

import pytest

from lightning_causal.causal import sobol_indices
from tests.test_trial_newuser57_batch_exit_sobol import BatchExit, sampler


def test_the_refusal_names_the_rows_of_the_analysis_passes():
    model, seen = BatchExit(), []
    model.register_forward_hook(lambda _m, args, _o: seen.append(args[0].shape[0]))
    with pytest.raises(ValueError, match=r"than in the analysis' pass that held it \(passes of at most 256 rows;") as err:
        sobol_indices(model, sampler, n=64, n_bootstrap=0, max_batch_size=256)
    assert 256 in seen  # the premise: the evaluation ran one pass of 256 rows (4 blocks of 64)
    assert "pass of 64 rows" not in str(err.value)


def test_a_chunk_smaller_than_a_names_the_chunk():
    with pytest.raises(ValueError, match=r"passes of at most 32 rows;"):
        sobol_indices(BatchExit(), sampler, n=64, n_bootstrap=0, max_batch_size=32)
