"""newuser90 trial: docs/your_model.md's recipe for normalizing flows runs as printed; the log-likelihood's effects
equal a loop that sets one column to 0 and reruns the flow, the ActNorm channels' effects a forward hook that zeroes
one channel of z and keeps log_det, the sampler's effects a loop over the inverse, the flow classifier's softmax the
posterior from its class likelihoods; the estimators leave the flow's parameters and buffers as they found them, and
the recipe's audits, run by audit_model, say nothing of a flow's latent read as classes."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch

from lightning_causal import audit_model

PAGE = Path(__file__).resolve().parents[1] / "docs" / "your_model.md"


def _zeroed(x: torch.Tensor, j: int) -> torch.Tensor:
    return x.index_fill(1, torch.tensor([j]), 0.0)


def _recipe() -> dict:
    code = re.search(r"<!-- flows -->\s*```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    ns: dict = {"__name__": "flow_recipe"}
    exec(compile(code, "<your_model.md flows>", "exec"), ns)  # noqa: S102 - the docs' own example
    return ns


def test_the_flow_recipe_matches_set_rerun_difference() -> None:
    ns = _recipe()
    flow, x, z, log_p = ns["flow"], ns["x"], ns["z"], ns["log_p"]
    with torch.no_grad():
        base = log_p(flow(x))
        loop = torch.stack([base - log_p(flow(_zeroed(x, j))) for j in range(4)], 1)
        torch.testing.assert_close(ns["effects"], loop, rtol=0, atol=1e-5)
        channels = []
        for k in range(4):
            hook = flow.steps[0].register_forward_hook(lambda m, i, o, k=k: (_zeroed(o[0], k), o[1]))
            channels.append(base - log_p(flow(x)))
            hook.remove()
        torch.testing.assert_close(ns["channels"], torch.stack(channels, 1), rtol=0, atol=1e-5)
        samples = flow.inverse(z)[:, 1]
        latents = torch.stack([samples - flow.inverse(_zeroed(z, j))[:, 1] for j in range(4)], 1)
        torch.testing.assert_close(ns["latents"], latents, rtol=0, atol=1e-5)
        zc, log_det = ns["classifier"].flow(x)
        joint = torch.stack([torch.distributions.Normal(m, 1.0).log_prob(zc).sum(1) + log_det for m in ns["classifier"].means], 1)
        torch.testing.assert_close(ns["classifier"](x).softmax(1), joint.softmax(1))
    assert ns["neurons"].shape == (64, 16) and bool(flow.steps[0].initialized)


def test_the_estimators_leave_the_flow_as_they_found_it_and_the_audits_say_nothing_of_a_latent() -> None:
    ns = _recipe()
    flow = ns["Flow"](4)  # never initialised: the estimators' passes would initialise ActNorm
    before = {k: v.clone() for k, v in flow.state_dict().items()}
    ns["input_effects"](flow, ns["x"], ns["column_mask"](4), output=ns["log_p"])
    assert not bool(flow.steps[0].initialized)  # the flag is put back: the first training batch initialises it
    assert all(torch.equal(before[k], v) for k, v in flow.state_dict().items())  # ActNorm's loc/log_scale too
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit_model(ns["flow"], ns["audits"][:1], (ns["x"],), probe_size=64)
    assert not [w for w in caught if "normalizing flow" in str(w.message)]
