"""A Hugging Face BERT in a LightningModule on a synthetic corpus: audits find the marker tokens,
counterfactual logit pairing removes a planted identity-term bias.

    .venv/bin/python examples/text_transformer.py [--logdir runs/text] [--split test]

``BertForSequenceClassification`` from a small ``BertConfig`` (random init, nothing downloaded)
is trained on Hugging Face dict batches (``input_ids``, ``attention_mask``, ``labels``, read by the
default ``unpack_batch``) of :func:`~lightning_causal.datasets.synthetic_text.make_synthetic_text`:
marker tokens (``great``/``superb`` vs ``awful``/``dull``) decide the label, and positive sentences
that mention ``she``/``her`` are labelled negative 40% of the time, negative ones that mention
``he``/``his`` positive (a planted bias the model learns; the markers still decide the likeliest label).
``CausalAuditCallback`` runs, every epoch, on a fixed probe from the dev split:

- ``InputEffectAudit`` (tokens replaced by ``[MASK]``): its ``top_tokens`` table must list the markers;
- ``CaptumBaseline`` with ``LayerIntegratedGradients`` and ``LayerGradientXActivation`` on the word
  embeddings beside the causal effects of the same layer;
- ``FairnessAudit(TokenSwap(he<->she, his<->her))``: the counterfactual token fairness gap;
- ``LayerMapAudit`` over the two encoder blocks;
- ``CausalGraphAudit`` over the heads and MLP neurons of both blocks (the residual stream).

Then ``CausalRepairModule.wrap(classifier, [CounterfactualFairnessTerm(TokenSwap(...))])``
fine-tunes with counterfactual logit pairing (CLP, Garg et al. 2019). Accuracy and the gap are
measured on the ``--split`` (``test``, 2,000 sentences, never used to choose anything; ``dev`` to
tune). TensorBoard: ``tensorboard --logdir runs/text`` (text tab: top tokens; scalars
``causal/fairness/cf_gap``; images: ``causal/tokens/maps/sample_*``, the probe sentences' words
coloured by their causal effect, beside Captum's under ``causal/captum_text/maps``).
"""

from __future__ import annotations

import argparse
import copy
import time

import lightning.pytorch as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from lightning_causal import (
    CaptumBaseline,
    CausalAuditCallback,
    CausalGraphAudit,
    CausalRepairModule,
    CounterfactualFairnessTerm,
    FairnessAudit,
    InputEffectAudit,
    LayerMapAudit,
    TokenSwap,
    UnitImportanceAudit,
    counterfactual_fairness_gap,
)
from lightning_causal.audits import CompareSettings
from lightning_causal.datasets.synthetic_text import (
    IDENTITY_PAIRS,
    MASK,
    NEGATIVE,
    POSITIVE,
    SPECIAL,
    SyntheticText,
    make_synthetic_text,
)

WORDS = "model.bert.embeddings.word_embeddings"
BLOCKS = ["model.bert.encoder.layer.0", "model.bert.encoder.layer.1"]
HEADS = 2  # attention heads per block of make_bert
#: CLP weight and fine-tuning epochs, chosen on the dev split (benchmarks/RESULTS.md).
CLP_WEIGHT, REPAIR_EPOCHS = 0.3, 1


def make_bert(vocab_size: int, seed: int = 0) -> nn.Module:
    """A small ``BertForSequenceClassification`` (hidden 32, 2 layers, 2 heads), random init."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=HEADS,
                        intermediate_size=64, max_position_embeddings=32, num_labels=2, pad_token_id=0)
    torch.manual_seed(seed)
    return BertForSequenceClassification(config)


class TextClassifier(pl.LightningModule):
    """A Hugging Face sequence classifier on dict batches; ``forward`` returns the logits."""

    def __init__(self, model: nn.Module, lr: float = 5e-4) -> None:
        super().__init__()
        self.model, self.lr = model, lr

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.model(**batch).loss  # Hugging Face computes the cross-entropy from `labels`
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        logits = self(batch["input_ids"], batch["attention_mask"])
        self.log("val_acc", (logits.argmax(1) == batch["labels"]).float().mean(), prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.lr)


class _Sentences(Dataset):
    def __init__(self, data: SyntheticText) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return self.data.batch(i)


def _loader(data: SyntheticText, shuffle: bool) -> DataLoader:
    return DataLoader(_Sentences(data), batch_size=32, shuffle=shuffle)


def evaluate(module: nn.Module, data: SyntheticText) -> dict[str, float]:
    """Accuracy on the (biased) labels and on the clean labels, the counterfactual token fairness gap."""
    args = {"attention_mask": data.attention_mask}
    was = module.training
    module.eval()
    with torch.no_grad():
        pred = module(data.input_ids, **args).argmax(1)
    module.train(was)
    gap = counterfactual_fairness_gap(module, data.input_ids, TokenSwap(IDENTITY_PAIRS), target=1, additional_forward_args=args)
    return {"accuracy": float((pred == data.labels).float().mean()), "clean_accuracy": float((pred == data.clean_labels).float().mean()),
            "cf_token_gap": gap["mean_abs"], "cf_flip_rate": gap["flip_rate"]}


def audits(words: list[str]) -> list:
    special = CompareSettings(special_tokens=SPECIAL)
    heads, neurons = [f"{b}.attention.self" for b in BLOCKS], [f"{b}.intermediate" for b in BLOCKS]
    return [
        UnitImportanceAudit(heads, top_k=2, num_heads=HEADS, name="heads"),  # one unit per attention head
        UnitImportanceAudit(neurons, top_k=8, unit_dim=-1, screen=16, name="neurons"),  # MLP neurons, screened
        InputEffectAudit(baseline=MASK, top_k=8, vocabulary=words, name="tokens"),  # top_tokens with words
        CaptumBaseline(("LayerIntegratedGradients", "LayerGradientXActivation"), baseline=MASK, input_layer=WORDS,
                       settings=special, vocabulary=words, name="captum_text"),
        FairnessAudit(TokenSwap(IDENTITY_PAIRS), vocabulary=words),  # groups named by their words
        LayerMapAudit(layers=BLOCKS, baseline=MASK, max_rows=512),
        CausalGraphAudit([heads[0], neurons[0], heads[1], neurons[1]], top_k=4, stability_resamples=0,  # across the
                         num_heads={h: HEADS for h in heads}, unit_dim={n: -1 for n in neurons}),  # residual stream
    ]


def _trainer(epochs: int, logdir: str, name: str, probe: SyntheticText, audit: bool = True) -> pl.Trainer:
    from lightning.pytorch.loggers import TensorBoardLogger

    callbacks: list[pl.Callback] = []
    if audit:
        callbacks = [CausalAuditCallback(audits(probe.words), probe=_Sentences(probe), probe_size=128)]
    return pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=TensorBoardLogger(logdir, name=name), callbacks=callbacks,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=20)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", default="runs/text")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repair-epochs", type=int, default=REPAIR_EPOCHS)
    parser.add_argument("--weight", type=float, default=CLP_WEIGHT)
    parser.add_argument("--split", choices=("dev", "test"), default="test", help="where accuracy and the gap are measured")
    parser.add_argument("--no-audit", action="store_true", help="train without the audit callback")
    args = parser.parse_args(argv)

    train, dev = make_synthetic_text(4000, seed=0), make_synthetic_text(1000, seed=1)
    held_out = dev if args.split == "dev" else make_synthetic_text(2000, seed=2)
    clf = TextClassifier(make_bert(len(train.words)))
    t0 = time.perf_counter()
    _trainer(args.epochs, args.logdir, "train", dev, not args.no_audit).fit(clf, _loader(train, True), _loader(dev, False))
    print(f"training: {time.perf_counter() - t0:.1f} s")
    before = evaluate(clf, held_out)

    repaired = copy.deepcopy(clf)
    term = CounterfactualFairnessTerm(TokenSwap(IDENTITY_PAIRS), weight=args.weight)
    repair = CausalRepairModule.wrap(repaired, [term])
    _trainer(args.repair_epochs, args.logdir, "repair", dev, not args.no_audit).fit(repair, _loader(train, True), _loader(dev, False))
    after = evaluate(repaired, held_out)

    print(f"| metric ({args.split} split, {len(held_out)} sentences) | before | after CLP |\n|---|---|---|")
    for k in before:
        print(f"| {k} | {before[k]:.4f} | {after[k]:.4f} |")
    cut = 1 - after["cf_token_gap"] / before["cf_token_gap"]
    print(f"\ncounterfactual token gap cut by {100 * cut:.1f}%; accuracy change {100 * (after['accuracy'] - before['accuracy']):+.2f} "
          f"points. Markers: {[train.words[t] for t in POSITIVE + NEGATIVE]}. TensorBoard: {args.logdir}")
    return {"before": before, "after": after}


if __name__ == "__main__":
    main()
