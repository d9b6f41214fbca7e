"""CaptumBaseline(layers=[...]) compares Captum's layer method with the units' causal effects
(``compare/<layer method>-<layer>/{spearman,kendall,topk}``), but the text card's causal-vs-Captum table lists the
input-level methods only: a user who named an SAE's latents saw nothing of them on the card. The card now gives those
numbers in one line under the table; a card without layers has no such line."""

from lightning_causal.audits import AuditResult
from lightning_causal.reporting import markdown_summary

ROWS = [{"method": "IntegratedGradients", "spearman": 0.9, "kendall": 0.8, "topk": 0.7, "deletion_auc": 0.1, "seconds": 1.0},
        {"method": "causal", "spearman": None, "kendall": None, "topk": None, "deletion_auc": 0.1, "seconds": 1.0}]


def _result(layers: bool, name: str = "captum_baseline") -> AuditResult:
    lead = "" if name == "captum_baseline" else f"{name}:"
    scalars = {f"compare/{lead}IntegratedGradients/{m}": v for m, v in (("spearman", 0.9), ("kendall", 0.8), ("topk", 0.7))}
    if layers:
        scalars.update({f"compare/{lead}LayerConductance-net.act1.latents/spearman": 0.935,
                        f"compare/{lead}LayerConductance-net.act1.latents/kendall": 0.872,
                        f"compare/{lead}LayerConductance-net.act1.latents/topk": 0.888})
    return AuditResult(name, scalars=scalars, tables={"comparison": ROWS})


def test_the_card_gives_the_layer_methods_agreement():
    card = markdown_summary(0, [_result(True)])
    line = next(s for s in card.splitlines() if s.startswith("Captum's layer method vs the units' causal effects"))
    assert "LayerConductance-net.act1.latents: spearman 0.935, kendall 0.872, topk 0.888" in line
    assert "IntegratedGradients:" not in line  # the table's methods stay in the table


def test_an_audit_of_its_own_name_reads_the_same_and_no_layers_no_line():
    card = markdown_summary(0, [_result(True, name="coarse")])
    assert "coarse:LayerConductance-net.act1.latents: spearman 0.935" in card and "coarse:IntegratedGradients:" not in card
    assert "Captum's layer method" not in markdown_summary(0, [_result(False)])
