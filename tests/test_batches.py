"""The batch convention shared by the audit callback and the repair module."""

import pytest
import torch

from lightning_causal.batches import default_unpack_batch, unpack


def test_default_rules():
    x, y = torch.zeros(3, 2), torch.tensor([0, 1, 0])
    assert default_unpack_batch(x) == (x, None, None)
    assert default_unpack_batch((x,)) == (x, None, None)
    assert default_unpack_batch([x, y]) == (x, y, None)
    inputs, labels, args = default_unpack_batch({"features": x, "target": y})
    assert inputs is x and labels is y and args is None
    ids, mask, types = torch.ones(3, 4, dtype=torch.long), torch.ones(3, 4), torch.zeros(3, 4, dtype=torch.long)
    inputs, labels, args = default_unpack_batch({"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
                                                 "labels": y, "other": x})
    assert inputs is ids and labels is y and set(args) == {"attention_mask", "token_type_ids"}
    inputs, _, args = default_unpack_batch({"pixel_values": x, "attention_mask": mask})
    assert inputs is x and args is None  # keyword arguments only come with input_ids


def test_several_inputs_as_a_collated_pair():
    a, b, y = torch.zeros(3, 2), torch.ones(3, 4), torch.tensor([0, 1, 0])
    inputs, labels, args = default_unpack_batch([[a, b], y])  # what a DataLoader makes of ((a, b), y) samples
    assert isinstance(inputs, tuple) and inputs[0] is a and inputs[1] is b and labels is y and args is None
    assert default_unpack_batch(((a, b),))[:2] == ((a, b), None)
    assert unpack([[a, b], y], lambda batch: (batch[0], batch[1], None))[0] == (a, b)  # the documented one-liner, a list


def test_first_input_and_label_keys_win():
    a, b = torch.zeros(2, 1), torch.ones(2, 1)
    inputs, labels, _ = default_unpack_batch({"inputs": b, "x": a, "labels": b, "y": a})
    assert inputs is a and labels is a


@pytest.mark.parametrize(
    "batch",
    [(torch.zeros(2), torch.zeros(2), torch.zeros(2)), "text", (torch.zeros(2), "label"), (),
     ([torch.zeros(2), "x"], torch.zeros(2)), ([], torch.zeros(2)), ((torch.zeros(2),), torch.zeros(2), torch.zeros(2))],
)
def test_other_batches_name_unpack_batch_and_a_fix(batch):
    with pytest.raises(ValueError, match=r"`unpack_batch=lambda batch: \(batch\[0\], batch\[1\], None\)`"):
        default_unpack_batch(batch)


def test_a_mapping_with_other_keys_is_shown_a_fix_with_its_own_keys():
    batch = {"img": torch.zeros(2, 3), "label": torch.zeros(2)}
    with pytest.raises(ValueError, match=r"`unpack_batch=lambda batch: \(batch\['img'\], batch\['label'\], None\)`") as err:
        default_unpack_batch(batch)
    fix = eval(str(err.value).rsplit("unpack_batch=", 1)[1].strip("`"))  # the fix shown runs on the batch
    assert fix(batch)[0] is batch["img"] and fix(batch)[1] is batch["label"]
    with pytest.raises(ValueError, match=r"lambda batch: \(batch\['image'\], None, None\)"):
        default_unpack_batch({"image": torch.zeros(2)})


def test_the_fix_shown_for_a_mapping_of_several_inputs_keeps_its_label_key():
    """{"cat", "num", "y"} was shown `(batch['cat'], batch['num'], None)`: the numeric columns as labels."""
    batch = {"cat": torch.zeros(2, 3, dtype=torch.long), "num": torch.zeros(2, 5), "y": torch.zeros(2)}
    with pytest.raises(ValueError, match=r"lambda batch: \(\(batch\['cat'\], batch\['num'\]\), batch\['y'\], None\)") as err:
        default_unpack_batch(batch)
    inputs, labels, args = unpack(batch, eval(str(err.value).rsplit("unpack_batch=", 1)[1].strip("`")))
    assert inputs == (batch["cat"], batch["num"]) and labels is batch["y"] and args is None


def test_custom_unpack_is_checked():
    x = torch.zeros(2, 3)
    assert unpack((x, 1), lambda b: (b[0], None, b[1]))[2] == (1,)  # one value: one positional argument
    with pytest.raises(ValueError, match="return \\(inputs, labels, additional_forward_args\\)"):
        unpack(x, lambda b: (b, None))
    with pytest.raises(ValueError, match="inputs"):
        unpack(x, lambda b: ("x", None, None))
    with pytest.raises(ValueError, match="labels"):
        unpack(x, lambda b: (b, [0, 1], None))
