"""``benchmarks/backdoor_bti.py`` (a development-set study, issue 17): its method names are checked before a run, the
split at ``pool2`` is the model, the benign mask keeps the label where its complement does not, the inversion leaves
the model's parameters as they were, and the unlearning leaves the model untouched and spends the protocol's epochs."""

from __future__ import annotations

import pytest
import torch

from benchmarks import backdoor_bti as bti
from benchmarks import backdoor_peers as peers
from lightning_causal.models import DigitsCNN


def test_method_names_parse_and_refuse_with_the_form():
    assert bti.method_parts("bti:1") == (1.0, 0.0)
    assert bti.method_parts("bti:0.3:kd1.5") == (0.3, 1.5)
    for bad in ("bti", "bti:0", "bti:1:k1", "bti:1:kd-1", "bt:1", "bti:x", "bti:1:kd1:2"):
        with pytest.raises(ValueError, match=rf"bti:<w>\[:kd<k>\].*{bad!r}"):
            bti.method_parts(bad)


def _fitted(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(96, 1, 8, 8, generator=g)
    y = (x.flatten(1) @ torch.randn(64, 10, generator=g)).argmax(1)
    torch.manual_seed(seed)
    return peers.repair_with_terms(DigitsCNN(), [], x, y, 15, seed, lr=1e-2), x, y


def test_the_split_is_the_model_and_the_mask_keeps_the_label_where_its_rest_does_not():
    model, x, y = _fitted()
    with torch.no_grad():
        assert torch.allclose(bti.head(model, bti.features(model, x)), model(x), atol=1e-6)
        assert bti.features(model, x).shape == (96, 128)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    m = bti.benign_mask(model, x, y, steps=100)
    assert m.shape == (128,) and m.min() >= 0 and m.max() <= 1
    with torch.no_grad():
        h = bti.features(model, x)
        kept, rest = (bti.head(model, h * part).softmax(1).gather(1, y[:, None]).mean() for part in (m, 1 - m))
    assert kept > rest + 0.3  # the label's probability: 0.66 against 0.18 here
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_inversion_keeps_the_models_parameters_and_their_grad_flags():
    model, x, y = _fitted(1)
    model.fc1.weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    gen = bti.invert(model, x, bti.benign_mask(model, x, y, steps=50), seed=3, steps=50)
    assert not gen.training and not any(p.requires_grad for p in gen.parameters())
    assert [p.requires_grad for p in model.parameters()] == flags and flags.count(False) == 1
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    with torch.no_grad():
        xg = gen(x)
    assert xg.shape == x.shape and xg.min() >= 0 and xg.max() <= 1 and not torch.equal(xg, x)
    # the same seed, the same generator
    again = bti.invert(model, x, bti.benign_mask(model, x, y, steps=50), seed=3, steps=50)
    assert all(torch.equal(a, b) for a, b in zip(gen.state_dict().values(), again.state_dict().values()))


def test_the_loss_unlearns_generated_images_with_their_labels_and_holds_to_the_reference():
    model, x, y = _fitted(2)
    gen = bti.invert(model, x, bti.benign_mask(model, x, y, steps=50), seed=0, steps=50)
    with torch.no_grad():
        ce = torch.nn.functional.cross_entropy(model(gen(x)), y)
        assert torch.allclose(bti.bti_loss(gen, 2.0, None, 0.0)(model, x, y), 2 * ce)
        assert torch.allclose(bti.bti_loss(gen, 2.0, model, 1.0)(model, x, y), 2 * ce, atol=1e-6)  # KL to itself: 0
        other = DigitsCNN().eval()
        assert bti.bti_loss(gen, 2.0, model, 1.0)(other, x, y) > bti.bti_loss(gen, 2.0, None, 0.0)(other, x, y)


def test_unlearning_leaves_the_model_untouched_and_refuses_epochs_the_rounds_do_not_split():
    model, x, y = _fitted(3)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    repaired, first = bti.bti_unlearn(model, x, y, 1.0, 1.0, seed=0, epochs=4, rounds=2, steps=(50, 50))
    assert not repaired.training and repaired is not model
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert not all(torch.equal(a, b) for a, b in zip(repaired.state_dict().values(), state.values()))
    made = bti.invert(model, x, bti.benign_mask(model, x, y, steps=50), seed=0, steps=50)  # on the model itself
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), made.state_dict().values()))
    with torch.no_grad():
        assert (repaired(x).argmax(1) == y).float().mean() > 0.8
    with pytest.raises(ValueError, match="multiple of rounds=4 but got epochs=10"):
        bti.bti_unlearn(model, x, y, 1.0, 0.0, seed=0, epochs=10, rounds=4)
