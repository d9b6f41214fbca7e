"""docs/your_model.md, "Sparse autoencoders: latents as units": the example runs as printed, keeps the model's output
(the error term added back), and its numbers are the ones a user would compute by hand: each latent's effect is the
hand do(z_u := 0) through `intervene`, a dead latent's is exactly 0, and Captum's LayerConductance on the latents'
site is not 0 where the latents move the output (it was 0 for every latent before the site's gradient was its own)."""

import warnings

import torch

from lightning_causal.causal import Zero, intervene
from tests.helpers.recipes import recipe_code, run_code


def test_the_sae_example_gives_the_hand_interventions_and_captum_sees_the_latents():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the splice cancels nothing: no warning of rounding effects, nor any other
        ns = run_code(recipe_code("sparse autoencoders", page="your_model.md"), "your_model.md sparse autoencoders",
                      quiet=False)
    model, x, effects, live = ns["model"], ns["x"], ns["effects"], ns["live"]
    with torch.no_grad():
        clean = model(x)
        t = clean.argmax(1, keepdim=True)
        for u in range(effects.shape[1]):
            with intervene(model, {"1.latents": Zero(units=[u])}):
                hand = (clean.gather(1, t) - model(x).gather(1, t))[:, 0]
            torch.testing.assert_close(effects[:, u], hand, atol=1e-5, rtol=1e-4)
    assert bool(live.any()) and bool((~live).any())  # the example holds dead latents
    assert bool((effects[:, ~live] == 0).all())
    assert ns["ranges"].shape == effects.shape and bool((ns["ranges"] >= 0).all())
    moved = effects.abs().mean(0) > 1e-3
    assert bool((ns["captum"].abs().mean(0)[moved] > 0).all())
    assert [name for name in ns["layer_map"].to_dict()["layers"]] == ["0", "1.latents", "1", "2", "3.latents", "3", "4"]
    assert any(s.startswith("1.latents:") and d.startswith("3.latents:") for s, d, _ in ns["graph"].edges)
