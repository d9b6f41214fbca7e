"""Trial newuser35: inputs that are no dense tensor of samples. A ``PackedSequence`` (a named tuple of
tensors) was read as four inputs ("share the first dimension but got [14, 5, 4, 4]"); a sparse bag of
words failed inside the sample-independence check with "compute each sample's output from that sample's
rows alone ... graph neural network" (COO) or torch's "Sparse CSR tensors do not have strides"; a list of
one variable-length tensor per sample was told to be passed "as a tuple", which then failed on the first
dimensions; a nested tensor raised torch's internal error. Each is now refused naming `inputs` and the way
to a dense tensor (pad and pass ``lengths``, ``x.to_dense()``)."""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from lightning_causal.audits import Probe
from lightning_causal.causal import counterfactual_explanation, input_effects, unit_effects


class _PackedIn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm, self.head = nn.LSTM(3, 4, batch_first=True), nn.Linear(4, 2)

    def forward(self, packed):
        _, (h, _) = self.lstm(packed)
        return self.head(h[-1])


def _packed():
    torch.manual_seed(0)
    return pack_padded_sequence(torch.randn(4, 5, 3), torch.tensor([5, 3, 4, 2]), batch_first=True, enforce_sorted=False)


_PAD = r"pad_sequence\(seqs, batch_first=True\).*'lengths': lengths"


@pytest.mark.parametrize("call", [
    lambda m, x: input_effects(m, x, target=1),
    lambda m, x: unit_effects(m, x, "head", target=1),
    lambda m, x: counterfactual_explanation(m, x, 0),
    lambda m, x: Probe(x),
])
def test_a_packed_sequence_is_refused_with_the_padded_form(call):
    with pytest.raises(TypeError, match=r"`inputs` .* but got a PackedSequence, whose rows are the time steps of all samples.*" + _PAD):
        call(_PackedIn().eval(), _packed())


@pytest.mark.parametrize("layout", ["coo", "csr"])
@pytest.mark.parametrize("call", [
    lambda m, x: input_effects(m, x, target=1),
    lambda m, x: unit_effects(m, x, "0", target=1),
    lambda m, x: counterfactual_explanation(m, x, 0),
    lambda m, x: Probe(x),
])
def test_a_sparse_bag_of_words_is_refused_with_to_dense(layout, call):
    words = (torch.rand(6, 50, generator=torch.Generator().manual_seed(0)) < 0.1).float()
    x = words.to_sparse() if layout == "coo" else words.to_sparse_csr()
    with pytest.raises(TypeError, match=rf"`inputs` to be a dense tensor .*layout torch.sparse_{layout}\).*pass x.to_dense\(\)"):
        call(nn.Sequential(nn.Linear(50, 4), nn.ReLU(), nn.Linear(4, 2)).eval(), x)


def test_the_dense_bag_of_words_gives_each_word_its_removal_effect():
    """What the message points to works: word w's effect is the logit drop on removing w (hand-built)."""
    torch.manual_seed(0)
    model = nn.Linear(50, 2).eval()
    words = (torch.rand(6, 50) < 0.1).float()
    got = input_effects(model, words, target=1)
    torch.testing.assert_close(got, words * model.weight[1].detach())  # linear: removing word w drops w's weight


def test_a_list_of_variable_length_samples_is_told_to_pad_not_to_make_a_tuple():
    seqs = [torch.randn(t, 3) for t in (5, 3, 4, 2)]
    model = nn.Linear(3, 2)
    with pytest.raises(TypeError, match=r"got <class 'list'>; if they are 4 samples of different lengths.*" + _PAD) as err:
        input_effects(model, seqs, target=1)
    assert "as a tuple" not in str(err.value)
    with pytest.raises(ValueError, match=r"share the first dimension but got \[5, 3, 4, 2\]; if they are 4 samples.*" + _PAD):
        input_effects(model, tuple(seqs), target=1)
    with pytest.raises(ValueError, match=r"share the first dimension but got \[5, 3, 4, 2\]; if they are 4 samples"):
        Probe(tuple(seqs))
    with pytest.raises(ValueError, match=r"share the first dimension but got \[4, 3\]$"):  # two inputs of different shapes: no hint
        input_effects(model, (torch.zeros(4, 3), torch.zeros(3, 2)))


def test_a_list_of_inputs_that_share_the_first_dimension_is_still_told_to_make_a_tuple():
    with pytest.raises(TypeError, match=r"pass the inputs as a tuple, tuple\(inputs\)"):
        input_effects(nn.Linear(3, 2), [torch.zeros(4, 3), torch.zeros(4, 3)])


def test_a_nested_tensor_is_refused_with_the_padded_form():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nested tensors are a prototype
        nt = torch.nested.nested_tensor([torch.randn(t, 3) for t in (5, 3)])
    with pytest.raises(TypeError, match=r"`inputs` to be a dense tensor but got a nested tensor.*to_padded_tensor"):
        input_effects(nn.Linear(3, 2), nt, target=1)


@pytest.mark.parametrize("sampler", ["EmpiricalMarginals", "GaussianCopula"])
def test_a_sparse_sampler_data_is_refused_with_to_dense(sampler):
    """EmpiricalMarginals of a sparse bag of words failed in torch ("Could not run 'aten::ne.Scalar' ... SparseCPU")."""
    import lightning_causal.causal as core

    words = (torch.rand(8, 20, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    with pytest.raises(TypeError, match=r"`data` to be a dense tensor .*layout torch.sparse_coo\).*pass x.to_dense\(\)"):
        getattr(core, sampler)(words.to_sparse())
