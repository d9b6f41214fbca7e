"""The engine on its own: argument checks, row ablation, unit replacement, group resolution and the
row engine's chunking."""

import pytest
import torch

from lightning_causal.causal.engine import (
    ablate_groups,
    aggregate_to_groups,
    broadcast_groups,
    check_baselines,
    group_mask,
    map_rows,
    replace_units,
    rows_per_pass,
)
from lightning_causal.causal.engine.checks import check_choice, check_float, check_int, check_type
from lightning_causal.causal.engine.groups import default_feature_mask


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: check_int("k", 0, minimum=1), "Expected argument `k` to be a positive int but got 0"),
        (lambda: check_int("k", True, minimum=0), "Expected argument `k` to be a non-negative int but got True"),
        (lambda: check_int("k", 5, minimum=2, maximum=4), r"Expected argument `k` to be an int in \[2, 4\] but got 5"),
        (lambda: check_int("k", 1.0, none_ok=True), "Expected argument `k` to be None or an int but got 1.0"),
        (lambda: check_float("a", 0.0, minimum=0.0, open_min=True), "to be a positive number but got 0.0"),
        (lambda: check_float("a", float("nan")), "to be a finite number but got nan"),
        (lambda: check_float("a", 1.0, minimum=0.0, maximum=1.0, open_max=True), r"in \[0.0, 1.0\) but got 1.0"),
        (lambda: check_choice("m", "x", ("a", "b")), r"to be one of \['a', 'b'\] but got 'x'"),
    ],
)
def test_checks_messages(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_checks_return_values_and_type_errors():
    assert check_int("k", None, none_ok=True) is None and check_float("a", 2) == 2.0
    assert check_type("t", torch.zeros(1), torch.Tensor) is not None
    with pytest.raises(TypeError, match="`t` to be Tensor but got list"):
        check_type("t", [1], torch.Tensor)
    with pytest.raises(TypeError, match="`k`"):
        check_int("k", "1", error=TypeError)


def test_ablate_groups_by_hand():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[0, 1, 1], [1, 0, 0]])  # per-sample masks
    out = ablate_groups(x, mask, torch.tensor([1, 1, 0]), torch.tensor([0, 1, 1]), values=torch.tensor(-1.0))
    assert torch.equal(out, torch.tensor([[4.0, -1.0, -1.0], [-1.0, 5.0, 6.0], [1.0, -1.0, -1.0]]))


def test_replace_units_channels_neurons_and_heads():
    h = torch.arange(2 * 2 * 4, dtype=torch.float).view(2, 2, 4)
    chan = replace_units(h, torch.tensor([1, 0]), torch.tensor(0.0))
    assert torch.equal(chan[0, 1], torch.zeros(4)) and torch.equal(chan[0, 0], h[0, 0]) and torch.equal(chan[1, 0], torch.zeros(4))
    neuron = replace_units(h, torch.tensor([3, 0]), torch.tensor(0.0), unit_dim=-1)
    assert (neuron[0, :, 3] == 0).all() and torch.equal(neuron[0, :, :3], h[0, :, :3]) and (neuron[1, :, 0] == 0).all()
    head = replace_units(h, torch.tensor([1, 0]), torch.tensor(9.0), unit_dim=-1, unit_size=2)
    assert (head[0, :, 2:] == 9).all() and torch.equal(head[0, :, :2], h[0, :, :2]) and (head[1, :, :2] == 9).all()
    with pytest.raises(ValueError, match="`unit_dim`"):
        replace_units(h, torch.tensor([0, 0]), torch.tensor(0.0), unit_dim=0)


def test_check_baselines_shapes_and_tokens():
    x = torch.zeros(3, 2, 4)
    assert check_baselines((x,), 1.0)[0].shape == (1, 1, 1)
    assert check_baselines((x,), torch.ones(2, 4))[0].shape == (1, 2, 4)
    assert check_baselines((x, x), (0.0, torch.ones(3, 2, 4)))[1].shape == (3, 2, 4)
    with pytest.raises(ValueError, match="one entry per input"):
        check_baselines((x, x), (0.0,))
    with pytest.raises(ValueError, match="broadcastable"):
        check_baselines((x,), torch.ones(5))
    assert check_baselines((x.long(),), 3)[0].dtype == torch.long
    with pytest.raises(ValueError, match="finite"):
        check_baselines((x,), float("inf"))


def test_mixed_inputs_with_one_baseline_are_shown_one_per_input():
    """input_effects(model, (cat, num)) with the default baseline 0.0 said only that integer inputs
    need an integer baseline, though the user had passed none."""
    cat, num = torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 5)
    with pytest.raises(ValueError, match=r"got 0.0; the inputs mix integer codes and floats: .* `baseline=\(0, 0.0\)`"):
        check_baselines((cat, num), 0.0)
    assert [b.dtype for b in check_baselines((cat, num), (0, 0.0))] == [torch.long, torch.float32]


def test_group_resolution_is_one_function_for_every_audit():
    img = torch.zeros(2, 1, 4, 4)
    assert torch.equal(group_mask(img, patch_size=2)[0, 0], torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]))
    assert torch.equal(group_mask(torch.zeros(5, 3)), torch.tensor([[0, 1, 2]]))
    assert torch.equal(group_mask(torch.zeros(5, 3), torch.tensor([1, 1, 0])), torch.tensor([[1, 1, 0]]))
    with pytest.raises(ValueError, match="image inputs"):
        group_mask(torch.zeros(5, 3), patch_size=2)
    with pytest.raises(TypeError, match="integer group ids"):
        group_mask(torch.zeros(5, 3), torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(TypeError, match="integer tensor"):
        group_mask(torch.zeros(5, 3), [0, 1, 1])
    masks = default_feature_mask((torch.zeros(2, 2), torch.zeros(2, 1, 2)))
    assert torch.equal(masks[1], torch.tensor([[[2, 3]]]))


def test_aggregate_and_broadcast_are_inverse_on_group_constant_maps():
    mask = torch.tensor([[0, 0, 1, 2, 2]])
    scores = torch.tensor([[1.0, -2.0, 3.0]])
    spread = broadcast_groups(scores, mask, (1, 5))
    assert torch.equal(spread, torch.tensor([[1.0, 1.0, -2.0, 3.0, 3.0]]))
    assert torch.equal(aggregate_to_groups(spread, mask, "mean"), scores)
    assert torch.equal(aggregate_to_groups(spread, mask, "sum"), torch.tensor([[2.0, -2.0, 6.0]]))


def test_map_rows_chunks_give_the_same_result_and_rows_per_pass_honours_the_cap():
    f = lambda idx: idx.float() * 2  # noqa: E731
    assert torch.equal(map_rows(10, 3, f, torch.device("cpu")), torch.arange(10).float() * 2)
    model = torch.nn.Linear(4, 2)
    assert rows_per_pass(model, (torch.zeros(8, 4),), 5) == 5
    rows = rows_per_pass(model, (torch.zeros(8, 4),), None, budget_bytes=64 * 1024, working_set_bytes=1 << 40)
    assert rows * (4 + 2) * 4 <= 64 * 1024  # capped by the budget: inputs + outputs per row


def test_sharded_rows_split_the_work_and_gather_the_single_process_result():
    """Two simulated processes: each evaluates its half of the rows; gathered, the result equals one
    process's (issue: audits sharded across DDP ranks)."""
    from lightning_causal.causal import input_effects
    from lightning_causal.causal.engine.batching import RowShard, sharded_rows
    from tests.helpers.models import MLP, seeded

    model, x = seeded(MLP(6, (8,), 3)).eval(), torch.randn(10, 6, generator=torch.Generator().manual_seed(0))
    full = input_effects(model, x, max_batch_size=7)
    parts, evaluated = {}, {}

    def run(rank, gather):
        calls = []
        counted = lambda idx: calls.append(len(idx))  # noqa: E731
        hook = model.net[0].register_forward_hook(lambda m, i, o: counted(o))
        try:
            with sharded_rows(RowShard(rank, 2, gather, min_rows=1)):
                out = input_effects(model, x, max_batch_size=7)
        finally:
            hook.remove()
        evaluated[rank] = sum(calls)
        return out

    # rank 1 alone keeps its part (the float rows; the int64 status exchange before them is answered "all ok")
    run(1, lambda t: parts.setdefault(t.dtype, t).expand(2, *t.shape))
    got = run(0, lambda t: torch.stack([t, parts[t.dtype]]))
    torch.testing.assert_close(got, full, rtol=1e-6, atol=1e-7)
    rows = 6 * 10  # groups x samples, all active
    assert evaluated[0] < rows and evaluated[1] < rows  # each process ran about half the rows
    assert abs(evaluated[0] - evaluated[1]) <= 20  # plus the clean pass and the trial rows


def _two_processes(work, timeout=60.0):
    """Run ``work(rank, gather)`` in two threads whose ``gather`` is a real collective: it waits for
    both (a collective one process never reaches times out, after 60 s, instead of hanging the suite; no test
    waits for the timeout: a process stalled past it is a fault, such as the look-up of every loaded module per
    warning shown again that 8071c84c mended) and fails
    when the two tensors differ in shape, as gloo does. Returns each rank's result or exception."""
    import threading

    barrier, slots, out = threading.Barrier(2, timeout=timeout), [None, None], [None, None]

    def gather(rank):
        def all_gather(t):
            slots[rank] = t.clone()
            barrier.wait()
            a, b = slots
            ok = a.shape == b.shape and a.dtype == b.dtype
            both = torch.stack([a, b]) if ok else None
            barrier.wait()
            if both is None:
                raise RuntimeError(f"collective mismatch: {list(a.shape)} {a.dtype} vs {list(b.shape)} {b.dtype}")
            return both
        return all_gather

    def target(rank):
        try:
            out[rank] = work(rank, gather(rank))
        except BaseException as err:  # noqa: BLE001 - reported to the test
            out[rank] = err

    threads = [threading.Thread(target=target, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(2 * timeout)
    return out


@pytest.mark.parametrize("where", ["rows", "before_rows"])
def test_a_process_that_fails_makes_every_process_fail_the_same_block_and_the_next_block_is_exact(where):
    """Under DDP with ``on_error="warn"``, an audit that failed in one process only (an error while
    evaluating its rows, or before its first collective) left the other waiting in the gather while
    the failed one went on to the next audit's collectives: gloo aborted the fit ('Received data
    size doesn't match expected size'); with equal sizes the next audit would gather another
    audit's rows silently. Now every process fails that block (its own error, or PeerFailure), and
    the next block gathers the single-process result."""
    from lightning_causal.causal.engine.batching import (
        PeerFailure,
        RowShard,
        map_rows,
        settle_shards,
        sharded_rows,
    )

    rows = lambda idx: idx.double().unsqueeze(1) * 2  # noqa: E731
    expected = map_rows(10, 3, rows, torch.device("cpu"))

    def work(rank, gather):
        with sharded_rows(RowShard(rank, 2, gather, min_rows=1)):
            error = None
            try:  # block 1: fails in process 1
                if where == "before_rows" and rank == 1:
                    raise ValueError("boom before the rows")

                def first(idx):
                    if rank == 1:
                        raise ValueError("boom in the rows")
                    return rows(idx)
                map_rows(10, 3, first, torch.device("cpu"))
            except Exception as err:
                error = err
            error = settle_shards(error)
            return error, map_rows(10, 3, rows, torch.device("cpu"))  # block 2: every process, no failure

    (err0, got0), (err1, got1) = _two_processes(work)
    assert isinstance(err0, PeerFailure) and err0.ranks == [1], err0
    assert isinstance(err1, ValueError) and "boom" in str(err1)
    torch.testing.assert_close(got0, expected, rtol=0, atol=0)
    torch.testing.assert_close(got1, expected, rtol=0, atol=0)


def test_settle_shards_without_a_shard_returns_the_error_as_it_is():
    from lightning_causal.causal.engine.batching import settle_shards

    err = ValueError("x")
    assert settle_shards(err) is err and settle_shards(None) is None


def test_kendall_for_many_groups_equals_scipy():
    from scipy import stats

    from lightning_causal.causal.engine.ranking import kendall

    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(3, 150, generator=g).double(), torch.randn(3, 150, generator=g).double()
    a[:, :10] = a[:, :1]  # ties
    b[1] = a[1]  # identical rankings
    want = torch.tensor([stats.kendalltau(x, y, variant="b").statistic for x, y in zip(a, b)], dtype=torch.float64)
    torch.testing.assert_close(kendall(a, b), want, rtol=0, atol=1e-12)
    assert float(kendall(a, b)[1]) == 1.0


def test_rank_statistics_of_1d_vectors_say_which_shape_they_need():
    # two vectors [9] and [9] were refused with "the same shape [N, G] but got [9] and [9]"
    from lightning_causal.causal.engine.ranking import kendall, spearman, topk_overlap

    a, b = torch.arange(9.0), torch.arange(9.0).flip(0)
    for call in (lambda: spearman(a, b), lambda: kendall(a, b), lambda: topk_overlap(a, b, 3)):
        with pytest.raises(ValueError, match=r"one shape \[N, G\].*\[9\] and \[9\]; for one ranking of G groups pass a\[None\]"):
            call()
    assert spearman(a[None], b[None]).item() == -1.0


@pytest.mark.parametrize("shape,dim,size", [((5, 6), 1, 1), ((5, 3, 8), -1, 1), ((5, 3, 8), -1, 4), ((5, 4, 3, 3), 1, 1),
                                            ((5, 3, 8), 1, 1)])
def test_replace_units_in_place_equals_replace_units(shape, dim, size):
    from lightning_causal.causal.engine.ablation import replace_units, replace_units_

    g = torch.Generator().manual_seed(0)
    h = torch.randn(shape, generator=g, dtype=torch.float64)
    units = torch.randint(0, shape[dim] // size, (shape[0],), generator=g)
    for values in (torch.zeros(()), torch.randn(shape, generator=g, dtype=torch.float64), 3.0 * h,
                   torch.randn(shape[1:], generator=g, dtype=torch.float64).unsqueeze(0)):
        expected = replace_units(h, units, values, dim, unit_size=size)
        got = replace_units_(h.clone(), units, values, dim, unit_size=size)
        assert torch.equal(got, expected)


def test_unit_rows_in_place_edit_equals_the_edit():
    from lightning_causal.causal.effects.unit_rows import unit_rows
    from lightning_causal.causal.engine.interventions import MeanOf, Resample, Scale, Zero
    from lightning_causal.causal.engine.units import resolve_layout

    g = torch.Generator().manual_seed(1)
    h = torch.randn(4, 3, 8, generator=g, dtype=torch.float64)
    ref = torch.randn(6, 3, 8, generator=g, dtype=torch.float64)
    layout = resolve_layout(h.shape, -1, 2)  # 2 heads of 4 on the last dimension
    units = torch.arange(layout.num_units)
    for ivs in ([Zero(unit_dim=-1, num_heads=2)], [Scale(2.0, unit_dim=-1, num_heads=2)],
                [MeanOf(ref, unit_dim=-1, num_heads=2)], [Zero(unit_dim=-1, num_heads=2), Scale(-1.0, unit_dim=-1, num_heads=2)]):
        idx = torch.arange(len(ivs) * layout.num_units * 4)
        edit, s = unit_rows(ivs, units, layout, 4, idx=idx)
        assert torch.equal(edit.in_place(h[s].clone()), edit(h[s]))
    def resampled(write):  # the same draws: a freshly seeded generator each time
        iv = Resample(ref, torch.Generator().manual_seed(3), unit_dim=-1, num_heads=2)
        edit, s = unit_rows([iv], units, layout, 4, idx=torch.arange(8))
        return edit.in_place(h[s].clone()) if write else edit(h[s])

    assert torch.equal(resampled(True), resampled(False))
