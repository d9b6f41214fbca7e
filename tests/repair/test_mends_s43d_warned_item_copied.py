"""6a913424 copied the one item a ``DataLoader(batch_size=None)``'s read returns (the repair set-up hands it to the
user's ``unpack_batch`` uncopied, which may write in place into the data training reads next), but not the first item
returned, warned of, where the items joined read as other samples than apart (an ``unpack_batch`` taking a fixed number
of rows of each item): that was the dataset's own item. Its rows are now copied too."""

import warnings

import torch
from torch.utils.data import DataLoader

from lightning_causal.data_reading import read_samples
from lightning_causal.unpacked_rows import input_rows


def test_the_first_item_warned_of_is_read_as_a_copy():
    items = [(torch.full((8, 3), float(i + 1)), torch.zeros(8)) for i in range(3)]
    rows_of, whole_of = input_rows(None, lambda b: (b[0][:4], b[1][:4], None))  # 4 rows of each item
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read = read_samples(DataLoader(items, batch_size=None), 16, loader_order=True, rows_of=rows_of, whole_of=whole_of)
    assert any("a fixed number of rows" in str(w.message) for w in caught)
    assert torch.equal(read[0], items[0][0]) and read[0].untyped_storage().data_ptr() != items[0][0].untyped_storage().data_ptr()
    read[0].mul_(0)  # the set-up's unpack_batch writing in place
    assert torch.equal(items[0][0], torch.ones(8, 3))
