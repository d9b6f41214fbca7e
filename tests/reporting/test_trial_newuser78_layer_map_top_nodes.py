"""The text card's line of a layer map listed as its top nodes the first ones in forward order, of response 0 where
no input intervention moves them: a denoiser's timestep MLP and label embedding (`top: nodes: model.tmlp.0 (response
0), model.tmlp.2 (response 0), model.yemb (response 0)`), which read as the layers the input acts through most. A
response of 0 is no effect: those nodes are left out of the top list as other tables' rows of no effect are."""

from lightning_causal.audits import AuditResult
from lightning_causal.reporting.summary import markdown_summary


def _nodes(*responses: float) -> list[dict]:
    return [{"node": f"layer{i}", "layers": 1, "response": r} for i, r in enumerate(responses)]


def test_nodes_no_intervention_moves_are_not_the_layer_map_s_top_nodes():
    card = markdown_summary(0, [AuditResult("layer_map", tables={"nodes": _nodes(0.0, 0.0, 0.0, 0.23, 0.16)})])
    assert "nodes: layer3 (response 0.23), layer4 (response 0.16)" in card
    assert "layer0" not in card


def test_a_map_no_intervention_moves_says_so():
    card = markdown_summary(0, [AuditResult("layer_map", tables={"nodes": _nodes(0.0, 0.0)})])
    assert "nodes: none had an effect (response 0)" in card
