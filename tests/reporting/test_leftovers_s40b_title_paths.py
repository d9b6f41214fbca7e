"""A figure's title holding a module's path longer than a line was broken anywhere ('…self_attn.o' / 'ut_proj'): it is
broken after a dot, an underscore, a slash or a hyphen, and only where a path has none within a line at its width."""
import pytest
import torch

from lightning_causal.reporting.chart_figures import bar_figure
from lightning_causal.reporting.figure_style import title_lines

_PATHS = ["importance/model.transformer.encoder.layers.1.self_attn.out_proj_with_bias_and_lora",
          "unit effects of model.vision_backbone.encoder.layers.11.self_attention.out_proj (mean over 64 samples)",
          "a" * 70 + ".b"]


@pytest.mark.parametrize("title", _PATHS)
@pytest.mark.parametrize("width", [20, 33, 57])
def test_long_paths_broken_after_separators(title, width):
    lines = title_lines(title, width)
    assert all(len(line) <= width for line in lines)
    assert "".join(lines).replace(" ", "") == title.replace(" ", "")  # nothing lost, nothing added
    words = title.split()
    for line, following in zip(lines, lines[1:]):
        ends_a_word = any(w.endswith(line.split()[-1]) for w in words)
        # a break inside a word comes after a separator, or at the width where no separator falls within the line
        assert ends_a_word or line[-1] in "._/-" or (len(line) == width and not any(c in line.split()[-1] for c in "._/-")), (line, following)


def test_bar_title_keeps_the_attention_path_whole():
    fig = bar_figure(torch.tensor([0.1, -0.5, 0.3]), _PATHS[0])
    assert fig.axes[0].get_title().split("\n") == ["importance/model.transformer.encoder.layers.1.self_attn.",
                                                   "out_proj_with_bias_and_lora"]
