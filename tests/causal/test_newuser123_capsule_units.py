"""docs/your_model.md, 'Capsule networks: vector units', checked against hand do()s on a small CapsNet (Sabour et al.
2017, random weights): the primary capsules' conv with ``unit_dim=1, num_heads=types`` sets capsule type ``t``'s
consecutive channels (a type-major view), equal to setting that type's squashed capsules to 0; the squash's output
``[N, num_caps, dim]`` holds whole capsules by default; the digit capsules' module (its squash called once per routing
iteration) sets the last iteration's capsule."""

import torch
from torch import nn

from lightning_causal import Scale, Zero, intervene, unit_effects

TYPES, DIM, HW = 3, 4, 4  # 3 capsule types of 4 components on a 2x2 grid


def _squash(s):
    n2 = (s * s).sum(-1, keepdim=True)
    return n2 / (1 + n2) * s / torch.sqrt(n2 + 1e-8)


class Squash(nn.Module):
    def forward(self, s):
        return _squash(s)


class Primary(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.squash = nn.Conv2d(2, TYPES * DIM, 3), Squash()

    def forward(self, x):
        h = self.conv(x)  # type-major: channel t * DIM + d is component d of type t
        return self.squash(h.view(len(x), TYPES, DIM, 2, 2).permute(0, 1, 3, 4, 2).reshape(len(x), -1, DIM))


class Digits(nn.Module):
    def __init__(self, classes=3, d_out=5, iters=3):
        super().__init__()
        self.W, self.iters, self.squash = nn.Parameter(torch.randn(1, TYPES * HW, classes, d_out, DIM)), iters, Squash()

    def forward(self, u):
        u_hat = (self.W @ u[:, :, None, :, None]).squeeze(-1)
        b = u_hat.new_zeros(u_hat.shape[:3])
        for _ in range(self.iters):
            v = self.squash((b.softmax(dim=2)[..., None] * u_hat).sum(1))
            b = b + (u_hat * v[:, None]).sum(-1)
        return v


class CapsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.primary, self.digits = Primary(), Digits()

    def forward(self, x):
        return self.digits(self.primary(x)).norm(dim=-1)


def _setup():
    torch.manual_seed(0)
    return CapsNet().eval(), torch.randn(6, 2, 4, 4)


def _hand(model, x, module, edit):
    with torch.no_grad():
        out = model(x)
        t = out.argmax(1, keepdim=True)
        handle = module.register_forward_hook(lambda m, i, o: edit(o.clone()))
        try:
            return (out.gather(1, t) - model(x).gather(1, t))[:, 0]
        finally:
            handle.remove()


def _zeroed(o, index, dim):
    return o.index_fill(dim, torch.as_tensor(index), 0)


def test_conv_heads_are_the_capsule_types_and_equal_zeroing_their_squashed_capsules():
    model, x = _setup()
    heads = unit_effects(model, x, "primary.conv", unit_dim=1, num_heads=TYPES)
    assert heads.shape == (6, TYPES)
    channels = torch.stack([_hand(model, x, model.primary.conv, lambda o, t=t: _zeroed(o, range(t * DIM, t * DIM + DIM), 1))
                            for t in range(TYPES)], 1)
    capsules = torch.stack([_hand(model, x, model.primary.squash, lambda o, t=t: _zeroed(o, range(t * HW, t * HW + HW), 1))
                            for t in range(TYPES)], 1)
    torch.testing.assert_close(heads, channels, rtol=0, atol=1e-6)
    torch.testing.assert_close(heads, capsules, rtol=0, atol=1e-6)  # Zero() before the squash = after it
    strided = torch.stack([_hand(model, x, model.primary.conv, lambda o, t=t: _zeroed(o, range(t, TYPES * DIM, TYPES), 1))
                           for t in range(TYPES)], 1)
    assert (heads - strided).abs().max() > 1e-3  # a dim-major view's types are other channels: the page's warning


def test_scale_before_the_squash_differs_from_scale_after_it():
    model, x = _setup()
    before = unit_effects(model, x, "primary.conv", unit_dim=1, num_heads=TYPES, intervention=Scale(0.5))
    with torch.no_grad():
        out = model(x)
        t = out.argmax(1, keepdim=True)
        after = []
        for k in range(TYPES):
            with intervene(model, {"primary.squash": Scale(0.5, units=list(range(k * HW, k * HW + HW)))}):
                after.append((out.gather(1, t) - model(x).gather(1, t))[:, 0])
    assert (before - torch.stack(after, 1)).abs().max() > 1e-3


def test_the_squashed_capsules_default_units_are_whole_capsules():
    model, x = _setup()
    caps = unit_effects(model, x, "primary.squash")
    assert caps.shape == (6, TYPES * HW)
    hand = torch.stack([_hand(model, x, model.primary.squash, lambda o, j=j: _zeroed(o, [j], 1)) for j in range(TYPES * HW)], 1)
    torch.testing.assert_close(caps, hand, rtol=0, atol=1e-6)


def test_the_digit_capsules_module_sets_the_last_iterations_capsule():
    model, x = _setup()
    digits = unit_effects(model, x, "digits", intervention=Zero())
    assert digits.shape == (6, 3)
    hand = torch.stack([_hand(model, x, model.digits, lambda o, j=j: _zeroed(o, [j], 1)) for j in range(3)], 1)
    torch.testing.assert_close(digits, hand, rtol=0, atol=1e-6)
