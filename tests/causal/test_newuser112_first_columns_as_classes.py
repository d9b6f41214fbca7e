"""A CLIP-like model's [B, B] similarity matrix read as class logits by its first columns (`output=lambda o:
o["logits_per_image"][:, :10]`, newuser112's trial: /tmp/newuser112/t3.py) gives [2, 2] for two samples alone and
[2, 10] in the probe's pass. The check of sample independence crashed building its message on the two shapes (a
RuntimeError read as a pass that failed, naming graphs and prototypes); it now names the shapes and the in-batch score
matrix, with its ways out."""

import pytest

from lightning_causal.causal import input_effects
from tests.test_trial_newuser66_in_batch_scores import GROUPS, batch, model


def test_first_columns_of_the_matrix_read_as_classes_are_named():
    x, ids, mask = batch(12)
    with pytest.raises(ValueError) as err:
        input_effects(model(True), x, GROUPS, output=lambda o: o["logits_per_image"][:, :10],
                      additional_forward_args=(ids, mask))
    text = str(err.value)
    assert "Expected the model to treat samples independently" in text
    assert "([2, 2] alone where the batch gave [2, 10])" in text
    assert "in-batch score matrix ('logits_per_image' is [12, 12] for the batch of 12 and [2, 2]" in text
    assert "output=lambda s: s.diagonal()[:, None]" in text and "zero-shot classifier" in text
    assert "edge_index" not in text  # not a graph's nodes


def test_matrix_as_it_is_names_the_per_sample_outputs_and_the_recipe():
    """Explained as it is, the [B, B] matrix is refused as batch-coupled; the refusal names what to audit instead, a
    zero-shot classifier or the image embedding, and the recipe, which exists."""
    from pathlib import Path

    x, ids, mask = batch(12)
    with pytest.raises(ValueError) as err:
        input_effects(model(True), x, GROUPS, output="logits_per_image", additional_forward_args=(ids, mask))
    text = str(err.value)
    assert "the output's width follows the batch" in text and "zero-shot classifier" in text
    assert "docs/recipes.md, 'Auditing a CLIP-like dual encoder'" in text
    recipes = (Path(__file__).resolve().parents[2] / "docs" / "recipes.md").read_text()
    assert "\n## Auditing a CLIP-like dual encoder\n" in recipes
