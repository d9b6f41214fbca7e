"""A classifier's logits on a probe of as many rows as classes are square ``[n, n]``: the advice for a model of several
outputs keeps naming them first (c359a05d moved every square tensor behind the others, so ``(logits [10, 10], feats
[10, 8])`` was advised ``output=1``, the features, and a lone ``{"y_hat": [2, 2]}`` its diagonal; final read B44 F3).
Only a tensor whose name says it scores pairs (``logits_per_image``) is read as an in-batch score matrix."""

import pytest
import torch

from lightning_causal.causal.engine.output_selection import select_output


def _advice(out) -> str:
    with pytest.raises(TypeError) as err:
        select_output(out)
    return str(err.value)


def test_square_logits_beside_features_keep_their_place():
    said = _advice((torch.zeros(10, 10), torch.zeros(10, 8)))
    assert "`output=0`" in said and "diagonal" not in said


def test_binary_logits_on_two_rows_are_named_not_their_diagonal():
    said = _advice({"y_hat": torch.zeros(2, 2), "feats": torch.zeros(2, 8)})
    assert "`output='y_hat'`" in said and "diagonal" not in said


def test_clip_score_matrices_still_get_the_diagonal():
    said = _advice({"logits_per_image": torch.zeros(4, 4), "logits_per_text": torch.zeros(4, 4)})
    assert "out['logits_per_image'].diagonal()[:, None]" in said
