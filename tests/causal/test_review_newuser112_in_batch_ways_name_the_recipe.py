"""A CLIP-like model's [B, B] similarity matrix read across its columns (`output=lambda o:
o["logits_per_image"].logsumexp(1, keepdim=True)`, an InfoNCE normaliser) is refused by the check of sample
independence with IN_BATCH_FIX's ways out; newuser112's recipe for such a model ('Auditing a CLIP-like dual encoder',
docs/recipes.md) was named by the batch-coupled refusal of the matrix as it is (5b0335d4) but not by these ways out,
which named docs/your_model.md only. The ways now name the recipe too, which exists."""

from pathlib import Path

import pytest

from lightning_causal.causal import input_effects
from tests.test_trial_newuser66_in_batch_scores import GROUPS, batch, model


def test_ways_out_of_a_matrix_read_across_its_columns_name_the_recipe():
    x, ids, mask = batch(12)
    with pytest.raises(ValueError) as err:
        input_effects(model(True), x, GROUPS, output=lambda o: o["logits_per_image"].logsumexp(1, keepdim=True),
                      additional_forward_args=(ids, mask))
    text = str(err.value)
    assert "in-batch score matrix ('logits_per_image' is [12, 12]" in text
    assert "docs/recipes.md, 'Auditing a CLIP-like dual encoder'" in text
    recipes = (Path(__file__).resolve().parents[2] / "docs" / "recipes.md").read_text()
    assert "\n## Auditing a CLIP-like dual encoder\n" in recipes
