"""CausalAuditCallback under stress: a careless audit stays invisible to training, bf16-true with a
given probe, where fast_dev_run puts reports, nothing rendered off rank 0, and TensorBoard content
read back the way TensorBoard itself reads it."""

from __future__ import annotations

import re
import types

import lightning.pytorch as pl
import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing import event_accumulator, plugin_event_accumulator
from tensorboard.plugins.custom_scalar import layout_pb2

from lightning_causal.audits.base import Audit, AuditResult
from lightning_causal.audits.drift import importance_shift, topk_jaccard
from lightning_causal.audits.input_effects import InputEffectAudit
from lightning_causal.audits.unit_importance import UnitImportanceAudit
from lightning_causal.callbacks.audit import CausalAuditCallback
from tests.helpers.lightning import (
    After,
    Before,
    CarelessAudit,
    classifier,
    digits,
    loaders,
    reports,
    trainer,
)
from tests.helpers.models import all_hook_counts


def _fit(tmp_path, callbacks, **kwargs):
    pl.seed_everything(0, verbose=False)
    module = classifier(batch_norm=True, dropout=0.3)
    t = trainer(tmp_path, callbacks=callbacks, **kwargs)
    t.fit(module, *loaders(batch_size=20))  # 96 samples: 5 batches, the last one short
    return module, t


def test_careless_audit_leaves_training_bit_identical(tmp_path):
    """BatchNorm + Dropout, shuffled loader, SGD with momentum, gradient accumulation; one audit
    trains the model, backpropagates, toggles requires_grad and draws from every global RNG."""
    kwargs = dict(max_epochs=3, accumulate_grad_batches=2)
    plain, t_plain = _fit(tmp_path, [], **kwargs)
    audits = [
        InputEffectAudit(patch_size=4, ace_values=None),
        UnitImportanceAudit(["model.conv1"]),
        CarelessAudit(),
    ]
    cb = CausalAuditCallback(audits, probe_size=12, report_dir=tmp_path / "r")
    audited, t_audited = _fit(tmp_path, [cb], **kwargs)
    assert cb.audited_epochs == [0, 1, 2]
    sa, sb = plain.state_dict(), audited.state_dict()
    assert any("running_mean" in k for k in sa) and sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    momentum_a = t_plain.optimizers[0].state_dict()["state"]
    momentum_b = t_audited.optimizers[0].state_dict()["state"]
    for i in momentum_a:
        assert torch.equal(momentum_a[i]["momentum_buffer"], momentum_b[i]["momentum_buffer"]), i
    assert all_hook_counts(audited) == 0


class NoisyCNN(torch.nn.Module):
    """Draws from the global RNG in every forward pass, eval mode included (MC-dropout-like)."""

    def __init__(self) -> None:
        super().__init__()
        from tests.helpers.lightning import tiny_cnn

        self.net = tiny_cnn()

    def forward(self, x):
        return self.net(x + 0.01 * torch.randn_like(x))


def test_probe_check_and_audits_leave_global_rng_alone(tmp_path):
    """The probe check at `setup`/`on_train_start` and every audit run a forward pass: with a model
    that samples noise, training must still see the same random stream."""
    from lightning_causal.models import LightningClassifier

    def fit(callbacks):
        pl.seed_everything(0, verbose=False)
        module = LightningClassifier(NoisyCNN(), lr=0.05, optimizer="sgd")
        trainer(tmp_path, max_epochs=2, callbacks=callbacks).fit(module, *loaders())
        return module.state_dict()

    given = CausalAuditCallback(
        [InputEffectAudit(patch_size=4, ace_values=None)],
        probe=digits()[2][:4],
        report_dir=tmp_path / "a",
    )
    default = CausalAuditCallback(
        [UnitImportanceAudit(["model.net.conv1"])], probe_size=4, report_dir=tmp_path / "b"
    )
    plain = fit([])
    for cb in (given, default):
        audited = fit([cb])
        assert cb.audited_epochs == [0, 1]
        assert all(torch.equal(plain[k], audited[k]) for k in plain)


class ModeAudit(Audit):
    """Records whether any submodule was in training mode while it ran."""

    def __init__(self) -> None:
        super().__init__("mode")
        self.seen: list[bool] = []

    def run(self, model, probe, *, max_batch_size=None):
        self.seen.append(any(m.training for m in model.modules()))
        return AuditResult(self.name, scalars={"ok": 1.0})


class MixedModes(pl.Callback):
    """Before the snapshot: a submodule in a mode of its own, a frozen parameter, and pending
    gradients (Lightning steps and clears them at an epoch's last batch, so they are planted)."""

    def on_train_epoch_end(self, trainer, pl_module):
        pl_module.model.bn1.eval()
        pl_module.model.fc1.bias.requires_grad_(False)
        g = torch.Generator().manual_seed(trainer.current_epoch)
        for name, p in pl_module.named_parameters():
            p.grad = None if name.endswith("fc2.bias") else torch.randn(p.shape, generator=g)


def test_audits_see_eval_mode_and_restore_everything_in_place(tmp_path):
    modes = ModeAudit()
    cb = CausalAuditCallback([modes, CarelessAudit()], probe_size=8, report_dir=tmp_path / "r")
    before = Before()
    after = After(before)
    _fit(tmp_path, [MixedModes(), before, cb, after], max_epochs=2, accumulate_grad_batches=2)
    assert (
        after.checked == 2
    )  # modes, requires_grad, grads (same tensor objects), buffers, RNG states
    assert any(
        g is not None for g in before.snap["grads"].values()
    )  # there were gradients to protect
    assert before.snap["modes"]["model.bn1"] is False and before.snap["modes"]["model"] is True
    assert modes.seen == [False, False, False]  # eval mode in the dry run before training and in both audits


def test_bf16_true_with_a_given_probe(tmp_path):
    """The probe is checked at `setup` (model still float32) and converted once the precision
    plugin has converted the model."""
    _, _, xv, yv = digits()
    cb = CausalAuditCallback(
        [InputEffectAudit(patch_size=4, ace_values=None)],
        probe=(xv[:8], yv[:8]),
        report_dir=tmp_path / "r",
    )
    module = classifier()
    trainer(tmp_path, precision="bf16-true", max_epochs=1, callbacks=[cb]).fit(module, *loaders())
    assert cb.probe.first.dtype == torch.bfloat16 and cb.probe.labels.dtype == torch.long
    report = reports(tmp_path / "r")["epoch_0000.json"]
    value = report["audits"]["input_effect"]["scalars"]["mean_abs_effect"]
    assert isinstance(value, float) and value == value


def test_fast_dev_run_audits_and_writes_nothing_in_the_working_or_root_directory(tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], every_n_epochs=3)
    t = trainer(
        tmp_path / "root", fast_dev_run=True, logger=True, callbacks=[cb]
    )  # DummyLogger: no log_dir
    t.fit(classifier(), *loaders())
    assert cb.audited_epochs == [0]  # the schedule skipped epoch 0, the on_fit_end audit did not
    assert list(cwd.iterdir()) == []
    assert cb.report_dir is None and not (tmp_path / "root" / "causal_audit").exists()  # as Lightning: no logs (0899c49)


@pytest.mark.parametrize("enable_progress_bar", [False, True])
def test_audit_progress_bar_follows_the_trainers(tmp_path, monkeypatch, enable_progress_bar):
    import tqdm.auto

    made = []
    real = tqdm.auto.tqdm
    monkeypatch.setattr(tqdm.auto, "tqdm", lambda *a, **k: made.append((k.get("desc"), k.get("disable", False))) or real(*a, **k))
    from lightning.pytorch.callbacks import TQDMProgressBar

    cb = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], every_n_epochs=1)
    # Lightning's tqdm bar (with rich installed the Trainer's default is RichProgressBar, beside which the audits draw
    # no bar of their own: tests/callbacks/test_trial_newuser24_console.py)
    bars = [TQDMProgressBar()] if enable_progress_bar else []
    t = trainer(tmp_path, max_epochs=1, limit_train_batches=1, limit_val_batches=1, callbacks=[cb, *bars],
                enable_progress_bar=enable_progress_bar)
    t.fit(classifier(), *loaders())
    # one audit bar (shown) beside the Trainer's, none when it is off
    assert made == ([("causal audit (epoch 0)", False)] if enable_progress_bar else [])


def test_nothing_rendered_nor_written_off_rank_zero(tmp_path, monkeypatch):
    x = digits()[2][:6]
    cb = CausalAuditCallback(
        [InputEffectAudit(patch_size=4, ace_values=None), UnitImportanceAudit(["conv1"])],
        report_dir=tmp_path / "r",
    )
    from lightning_causal.audits.base import Probe
    from lightning_causal.models import DigitsCNN

    torch.manual_seed(0)
    model = DigitsCNN(channels=(4, 8), hidden=16)
    cb.probe = Probe(x)
    results = [a.run(model, cb.probe) for a in cb.audits]
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    logger = TensorBoardLogger(tmp_path, name="tb", version=0)
    strategy = types.SimpleNamespace(broadcast=lambda obj, src=0: obj)  # rank 0 reported success
    worker = types.SimpleNamespace(loggers=[logger], is_global_zero=False, global_rank=1, strategy=strategy)
    built = []
    real_init = matplotlib.figure.Figure.__init__
    monkeypatch.setattr(matplotlib.figure.Figure, "__init__", lambda self, *a, **k: built.append(1) or real_init(self, *a, **k))
    cb._render(worker, 0, results)  # the writer is a no-op there: no figure may be built
    assert built == []
    assert cb._write_report(worker, 0, "epoch_end", results, 0.1) is True  # rank 0's outcome; nothing written here
    assert not (tmp_path / "r").exists() and not (tmp_path / "tb").exists()


# ------------------------------------------------------------------------------------ TensorBoard
@pytest.fixture(scope="module")
def tb_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb")
    logger = TensorBoardLogger(root, name="tb", version=0)
    audits = [
        InputEffectAudit(patch_size=4, ace_values=None),
        UnitImportanceAudit(["model.conv1"], top_k=2),
    ]
    cb = CausalAuditCallback(audits, probe_size=6)
    pl.seed_everything(0, verbose=False)
    trainer(root, max_epochs=2, logger=logger, callbacks=[cb]).fit(classifier(), *loaders())
    plugin_acc = plugin_event_accumulator.EventAccumulator(
        logger.log_dir, size_guidance={"tensors": 0}
    )
    plugin_acc.Reload()
    guidance = {
        k: 0
        for k in ("scalars", "images", "histograms", "tensors", "compressedHistograms", "audio")
    }
    acc = event_accumulator.EventAccumulator(logger.log_dir, size_guidance=guidance)
    acc.Reload()
    return cb, reports(cb.report_dir), plugin_acc, acc


def test_each_tag_holds_one_kind_of_data(tb_run):
    """TensorBoard files a tag under a single plugin; a histogram sharing a scalar's tag hides the scalar."""
    _, docs, plugin_acc, _ = tb_run
    by_plugin = {p: set(plugin_acc.PluginTagToContent(p)) for p in plugin_acc.ActivePlugins()}
    scalars = by_plugin["scalars"]
    expected = {
        f"causal/{a}/{m}"
        for doc in docs.values()
        for a, r in doc["audits"].items()
        for m in r["scalars"]
    }
    assert expected | {"causal/audit_seconds"} <= scalars
    for plugin, tags in by_plugin.items():
        if plugin != "scalars":
            assert not tags & scalars, plugin
    for tag in expected:  # every event of a scalar tag is a scalar
        assert all(e.tensor_proto.tensor_shape.dim == [] for e in plugin_acc.Tensors(tag)), tag


def test_scalar_values_per_epoch_equal_the_reports(tb_run):
    _, docs, _, acc = tb_run
    assert list(docs) == ["epoch_0000.json", "epoch_0001.json"]
    for tag in (
        "causal/input_effect/mean_abs_effect",
        "causal/unit_importance/model.conv1/top1_importance",
    ):
        audit, metric = tag.split("/", 2)[1:]
        logged = [e.value for e in sorted(acc.Scalars(tag), key=lambda e: e.step)]
        expected = [doc["audits"][audit]["scalars"][metric] for doc in docs.values()]
        assert logged == pytest.approx(expected, rel=1e-6)
    seconds = [e.value for e in sorted(acc.Scalars("causal/audit_seconds"), key=lambda e: e.step)]
    assert seconds == pytest.approx([doc["audit_seconds"] for doc in docs.values()], rel=1e-6)
    drift = "causal/unit_importance/drift/importance/model.conv1/spearman"
    assert [e.value for e in acc.Scalars(drift)] == pytest.approx(
        [
            docs["epoch_0001.json"]["audits"]["unit_importance"]["scalars"][
                "drift/importance/model.conv1/spearman"
            ]
        ]
    )  # from the second audit on only


def test_images_histograms_and_their_sizes(tb_run):
    _, _, _, acc = tb_run
    dpi = matplotlib.rcParams["figure.dpi"]
    steps = [e.step for e in acc.Scalars("causal/audit_seconds")]  # one step per audit, shared by every item
    images = set(acc.Tags()["images"])
    maps = sorted(t for t in images if t.startswith("causal/input_effect/maps/"))
    assert maps == [
        f"causal/input_effect/maps/sample_{i}" for i in range(4)
    ]  # max_samples of the 6 probe samples
    for tag in maps:
        events = acc.Images(tag)
        assert [e.step for e in events] == steps
        # input | effect map (figures.heatmap_row): 1.45 inches of square image + 0.45 per panel, + 0.4; one row of
        # panels 1.45 + 0.45 high, + 0.25, + 0.3 for the one line of the title naming the explained class, + 0.35 for
        # the two lines below saying what red and blue mean (a signed map of a class's score, against the group set to 0)
        assert (events[0].width, events[0].height) == (round((2 * 1.9 + 0.4) * dpi), round((0.25 + 1.9 + 0.3 + 0.35) * dpi))
    bars = acc.Images("causal/unit_importance/bars/importance/model.conv1")
    assert (bars[0].width, bars[0].height) == (round(5.2 * dpi), round(2.7 * dpi))  # landscape, like a TensorBoard card
    hist = acc.Histograms("causal/unit_importance/histograms/importance/model.conv1")
    assert [h.step for h in hist] == steps and hist[
        0
    ].histogram_value.num == 4  # conv1 has 4 channels
    assert plt.get_fignums() == []  # no pyplot figure is ever opened


def test_text_summary_and_custom_scalars_layout(tb_run):
    _, _, plugin_acc, acc = tb_run
    texts = [
        e.tensor_proto.string_val[0].decode() for e in acc.Tensors("causal/summary/text_summary")
    ]
    assert len(texts) == 2 and texts[1].startswith("### Causal audit, epoch 1 (step ")
    row = next(line for line in texts[0].splitlines() if line.startswith("- **unit_importance** ("))
    assert "top_units/model.conv1: " in row and "epoch_0000.json" in texts[0]
    config = acc.Tensors("custom_scalars__config__")[-1].tensor_proto.string_val[0]
    layout = layout_pb2.Layout.FromString(config)
    charts = {
        (c.title, ch.title): list(ch.multiline.tag) for c in layout.category for ch in c.chart
    }
    assert {
        ("causal: input_effect", "mean_abs_effect"),
        ("causal: unit_importance", "top1_importance"),
        ("causal drift", "unit_importance: spearman"),
    } <= set(charts)
    scalar_tags = set(plugin_acc.PluginTagToContent("scalars"))
    for key, patterns in charts.items():  # every chart shows some logged scalar, each series at least one tag
        assert patterns and all(any(re.match(p, t) for t in scalar_tags) for p in patterns), key
    assert charts[("causal: input_effect", "mean_abs_effect")] == ["^causal/input_effect/mean_abs_effect$"]


def test_drift_helpers_reject_bad_arguments():
    a = torch.tensor([3.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="`k` to be a positive int but got 0"):
        topk_jaccard(a, a, 0)
    with pytest.raises(ValueError, match=r"equal shape but got \[3\] and \[2\]"):
        topk_jaccard(a, a[:2], 1)
    with pytest.raises(ValueError, match=r"equal shape but got \[3\] and \[2\]"):
        importance_shift(a, a[:2])
    assert topk_jaccard(a, a, 10) == 1.0  # k beyond the length: the whole ranking


# ------------------------------------------------------------------------------------ DDP
@pytest.mark.xdist_group(
    "ddp"
)  # two spawned processes: keep away from other DDP tests under --dist loadgroup
def test_ddp_spawn_audits_trained_model_once_and_only_rank_zero_writes(tmp_path):
    """Real training on 2 CPU processes (ddp_spawn, gloo), TensorBoard logger, audits every epoch."""
    import faulthandler
    import json

    from lightning_causal.audits.base import Probe
    from tests.helpers.lightning import DDP_PROBE, ddp_audits, run_ddp_fit

    faulthandler.dump_traceback_later(
        240, exit=True
    )  # a hang kills the run loudly instead of stalling CI
    try:
        run_ddp_fit(str(tmp_path))
    finally:
        faulthandler.cancel_dump_traceback_later()

    spy = {
        r: [json.loads(line) for line in (tmp_path / f"spy_rank{r}.jsonl").read_text().splitlines()]
        for r in (0, 1)
    }
    audits = {
        r: [
            (e["epoch"], e["audit"], e["probe"], e["probe_sum"])
            for e in spy[r]
            if e["kind"] == "audit"
        ]
        for r in (0, 1)
    }
    assert audits[0] == audits[1] and len(audits[0]) == 2 * len(ddp_audits())  # 2 epochs, same probe on both ranks
    assert {e[2] for e in audits[0]} == {DDP_PROBE}  # not the 24 of one rank's shard, no padding
    _, _, xv, yv = digits()
    assert audits[0][0][3] == pytest.approx(float(xv[:DDP_PROBE].double().sum()))
    assert [(e["kind"], e["epoch"]) for e in spy[0] if e["kind"] != "audit"] == [
        ("report", 0),
        ("render", 0),
        ("report", 1),
        ("render", 1),
    ]
    assert {e["writer"] for e in spy[0] if e["kind"] == "render"} == {"SummaryWriter"}
    assert [e for e in spy[1] if e["kind"] != "audit"] == []  # rank 1: no figures, no files
    assert len(list((tmp_path / "tb").rglob("events.out.tfevents.*"))) == 1
    assert list(reports(tmp_path / "r")) == ["epoch_0000.json", "epoch_0001.json"]

    # the last report equals a single-process audit of the trained weights on the first samples
    module = classifier()
    module.load_state_dict(torch.load(tmp_path / "final.pt", weights_only=True))
    probe = Probe(xv[:DDP_PROBE], yv[:DDP_PROBE])
    doc = reports(tmp_path / "r")["epoch_0001.json"]
    assert doc["world_size"] == 2  # the rows of every audit were shared out between the two processes
    report = doc["audits"]
    for audit in ddp_audits():
        got = report[audit.name]
        if audit.name == "sobol":  # target=None keeps the class chosen at the first audit (epoch 0)
            audit.load_state_dict({"target": got["meta"]["target"]})
        expected = audit.run(module, probe).to_dict()
        for key in ("vectors", "maps"):
            assert got[key].keys() == expected[key].keys()
            for name, value in expected[key].items():
                torch.testing.assert_close(
                    torch.tensor(got[key][name]), torch.tensor(value), rtol=1e-5, atol=1e-7
                )
        for name, rows in expected["tables"].items():  # same top groups / units in the same order
            assert [list(r.values())[0] for r in got["tables"][name]] == [
                list(r.values())[0] for r in rows
            ], name
        for name, value in expected["scalars"].items():
            assert got["scalars"][name] == pytest.approx(value, rel=1e-5, abs=1e-7), name
