"""Captum's layer methods on a site whose module returns its input object (an ``nn.Identity`` named as a layer's site,
as docs/your_model.md advises for functional layers and for a sparse autoencoder's latents; a ``"<module>:input"`` site)
read the gradient of that site's output alone, not of every other reader of the same tensor: a linear model whose
hidden value ``a`` goes through the site to ``B`` and straight to ``C`` too gives LayerGradientXActivation
``a * B[t]`` (the exact first-order effect ``unit_effects`` gives), not ``a * (B[t] + C[t])``; a spliced SAE's latents,
whose error term ``h - dec(z)`` reads the latents' tensor before the site, get ``z * (W_dec^T g)``, not 0."""

import pytest
import torch
from torch import nn

from lightning_causal.baselines import layer_attribute
from lightning_causal.causal import unit_effects


class SiteAndBypass(nn.Module):
    """out = B(site(a)) + C(a), a = A(x): the site's input tensor is read by C too."""

    def __init__(self) -> None:
        super().__init__()
        self.A, self.site, self.B, self.C = nn.Linear(4, 3), nn.Identity(), nn.Linear(3, 2), nn.Linear(3, 2)

    def forward(self, x):
        a = self.A(x)
        return self.B(self.site(a)) + self.C(a)


class Residual(nn.Module):
    """out = head(a + fc(a)): the input of fc is read by the residual too."""

    def __init__(self) -> None:
        super().__init__()
        self.A, self.fc, self.head = nn.Linear(4, 3), nn.Linear(3, 3), nn.Linear(3, 2)

    def forward(self, x):
        a = self.A(x)
        return self.head(a + self.fc(a))


class SplicedSAE(nn.Module):
    """h -> latents z (site "latents") -> dec(z) + (h - dec(z)), the error from the clean latents (before the site)."""

    def __init__(self, site: nn.Module) -> None:
        super().__init__()
        self.layer, self.enc, self.dec = nn.Linear(4, 3), nn.Linear(3, 6), nn.Linear(6, 3)
        self.latents, self.head = site, nn.Linear(3, 2)

    def forward(self, x):
        h = self.layer(x)
        z = torch.relu(self.enc(h))
        error = h - self.dec(z)
        return self.head(self.dec(self.latents(z)) + error)


class OwnTensor(nn.Module):
    """The reference site: returns the same values as a tensor of its own, read only after the site."""

    def forward(self, z):
        return z.view_as(z)


def test_identity_site_reads_its_own_path_only():
    torch.manual_seed(0)
    net, x = SiteAndBypass().eval(), torch.randn(6, 4)
    with torch.no_grad():
        expected = net.A(x) * net.B.weight[0]  # h_u * df_0/dh_u along the site's path
    got = layer_attribute(net, x, "site", "LayerGradientXActivation", target=0)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got, unit_effects(net, x, "site", target=0, unit_dim=-1), atol=1e-5, rtol=1e-5)


def test_input_site_reads_the_consumers_path_only():
    torch.manual_seed(0)
    net, x = Residual().eval(), torch.randn(6, 4)
    with torch.no_grad():
        expected = net.A(x) * (net.head.weight[0] @ net.fc.weight)  # a_u * df_0/da_u through fc, not the residual
    got = layer_attribute(net, x, "fc:input", "LayerGradientXActivation", target=0)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("method", ["LayerConductance", "LayerIntegratedGradients", "LayerGradientXActivation"])
def test_spliced_sae_latents_as_a_site_of_their_own(method):
    torch.manual_seed(0)
    net, x = SplicedSAE(nn.Identity()).eval(), torch.randn(8, 4)
    own = SplicedSAE(OwnTensor()).eval()
    own.load_state_dict(net.state_dict())
    got, expected = (layer_attribute(m, x, "latents", method, target=0) for m in (net, own))
    assert bool(expected.abs().sum() > 0)  # LayerConductance gave 0 for every latent of the nn.Identity site
    torch.testing.assert_close(got, expected)
