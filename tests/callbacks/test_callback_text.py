"""CausalAuditCallback on a Hugging Face BERT fit with dict batches: the text audits run on the
default unpack_batch's probe (attention mask included) and leave training bit-identical."""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from lightning_causal.audits import (
    CaptumBaseline,
    CompareSettings,
    FairnessAudit,
    InputEffectAudit,
    LayerMapAudit,
    UnitImportanceAudit,
)
from lightning_causal.callbacks.audit import CausalAuditCallback
from lightning_causal.causal import TokenSwap
from tests.helpers.models import all_hook_counts
from tests.helpers.text import CLS, MASK, PAD, SEP, text_loader, text_module

WORDS = "model.bert.embeddings.word_embeddings"


def _fit(audit: bool, tmp_path):
    torch.manual_seed(0)
    module = text_module()
    audits = [
        InputEffectAudit(baseline=MASK, top_k=3),
        CaptumBaseline((("LayerIntegratedGradients", {"n_steps": 4}), "LayerGradientXActivation"), baseline=MASK,
                       input_layer=WORDS, settings=CompareSettings(steps=4, special_tokens=(PAD, CLS, SEP))),
        FairnessAudit(TokenSwap([(4, 7)])),  # both sides occur among the first probe sentences
        LayerMapAudit(layers=["model.bert.encoder.layer.0", "model.bert.encoder.layer.1"], baseline=MASK),
        UnitImportanceAudit(["model.bert.encoder.layer.0.attention.self", "model.bert.encoder.layer.1.intermediate"],
                            top_k=2, unit_dim={"model.bert.encoder.layer.1.intermediate": -1},
                            num_heads={"model.bert.encoder.layer.0.attention.self": 2}),
    ]
    callbacks = [CausalAuditCallback(audits, probe_size=8)] if audit else []
    trainer = pl.Trainer(default_root_dir=str(tmp_path), max_epochs=2, accelerator="cpu", logger=False, callbacks=callbacks,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, deterministic=True)
    trainer.fit(module, text_loader())  # the probe: the first 8 training sentences
    return module, trainer


def test_text_audits_leave_a_bert_fit_bit_identical(tmp_path):
    a, _ = _fit(False, tmp_path)
    b, trainer = _fit(True, tmp_path)
    assert trainer.callbacks[0].audited_epochs == [0, 1]
    metrics = trainer.callback_metrics
    assert {"causal/fairness/cf_gap", "causal/input_effect/mean_abs_effect", "compare/LayerIntegratedGradients/spearman",
            "causal/layer_map/n_nodes", "causal/unit_importance/model.bert.encoder.layer.0.attention.self/top1_importance"} <= set(metrics)
    heads = trainer.callbacks[0].last_results["unit_importance"].vectors
    assert heads["importance/model.bert.encoder.layer.0.attention.self"].shape == (2,)  # one value per head
    assert heads["importance/model.bert.encoder.layer.1.intermediate"].shape[0] > 2  # one per MLP neuron
    meta = trainer.callbacks[0].last_results["unit_importance"].meta  # the neurons' suffix ran cut to [CLS]
    assert meta["read_positions/model.bert.encoder.layer.1.intermediate"], meta
    probe = trainer.callbacks[0].probe
    assert set(probe.additional_forward_args) == {"attention_mask"}  # the default unpack_batch's dict batch
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb), name
    assert all_hook_counts(b) == 0 and b.training
