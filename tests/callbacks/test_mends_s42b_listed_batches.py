"""audit_model(model, audits, [batch]): a list of mappings is read as a list of samples, so a list holding one dict batch
became one sample holding the whole batch, and the model's own error said nothing of it; the error now names the reading
and the way out (one batch, or DataLoader(batches, batch_size=None)), which gives the batch's own numbers."""

import errno
import sys

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import lightning_causal._compat as compat
from lightning_causal import audit_model
from lightning_causal.audits import InputEffectAudit


class Items(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, x, attention_mask):
        return (self.lin(x) * attention_mask[..., None]).sum(1)


def _batch():
    g = torch.Generator().manual_seed(0)
    return {"x": torch.randn(16, 12, 4, generator=g), "mask": (torch.rand(16, 12, generator=g) > 0.2).float(),
            "y": torch.randint(0, 2, (16,), generator=g)}


def _unpack(b):
    return b["x"], b["y"], {"attention_mask": b["mask"]}


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes are Python 3.11+")
def test_a_list_of_one_batch_says_how_it_was_read_and_the_way_out():
    torch.manual_seed(0)
    model, batch = Items().eval(), _batch()
    with pytest.raises(Exception) as err:
        audit_model(model, InputEffectAudit(ace_values=None), [batch], unpack_batch=_unpack)
    notes = " ".join(getattr(err.value, "__notes__", []))
    assert "list of 1 mapping, read as a list of samples" in notes and "[1, 16, 12, 4]" in notes
    assert "DataLoader(batches, batch_size=None)" in notes and "data=batches[0]" in notes
    # the way out gives the batch's own numbers
    direct = audit_model(model, InputEffectAudit(ace_values=None), batch, unpack_batch=_unpack)
    loaded = audit_model(model, InputEffectAudit(ace_values=None), DataLoader([batch], batch_size=None), unpack_batch=_unpack)
    assert torch.equal(direct[0].vectors["mean_abs_effect"], loaded[0].vectors["mean_abs_effect"])


def test_a_list_of_samples_is_read_as_samples_and_no_note_is_given_to_its_errors():
    torch.manual_seed(0)
    batch = _batch()
    samples = [{"x": batch["x"][i], "mask": batch["mask"][i], "y": batch["y"][i]} for i in range(16)]
    model = Items().eval()
    read = audit_model(model, InputEffectAudit(ace_values=None), samples, unpack_batch=_unpack)
    direct = audit_model(model, InputEffectAudit(ace_values=None), batch, unpack_batch=_unpack)
    assert torch.equal(read[0].vectors["mean_abs_effect"], direct[0].vectors["mean_abs_effect"])
    with pytest.raises(Exception) as err:  # samples whose model fails: the samples' 0-dim labels say it is no batch list
        audit_model(nn.Linear(3, 2), InputEffectAudit(ace_values=None), samples, unpack_batch=_unpack)
    assert not any("read as a list of samples" in n for n in getattr(err.value, "__notes__", []))


def _error(model, data):
    with pytest.raises(Exception) as err:
        audit_model(model, InputEffectAudit(ace_values=None), data, unpack_batch=_unpack)
    return err.value


def test_without_exception_notes_the_note_ends_the_message_of_the_error_itself(monkeypatch):
    """The note was given by BaseException.add_note, which Python 3.10 lacks (pyproject: requires-python >= 3.10): there
    it was dropped in silence. Where exceptions take no notes (simulated: lightning_causal._compat.NOTES off), the note
    ends the message of the model's own error, re-raised itself (mends_s42g; mends_s42h: not a new error of its type)."""
    torch.manual_seed(0)
    model, batch = Items().eval(), _batch()
    noted = _error(model, [batch])  # with notes (3.11+): the note on the model's own error
    monkeypatch.setattr(compat, "NOTES", False, raising=False)
    err = _error(model, [batch])
    listed = [n for n in noted.__notes__ if "read as a list of samples" in n]
    assert listed and not any("read as a list of samples" in n for n in getattr(err, "__notes__", []))
    assert err.__cause__ is None and type(err) is type(noted)
    assert "list of 1 mapping, read as a list of samples" in str(err) and "DataLoader(batches, batch_size=None)" in str(err)
    assert str(err) == "\n".join([noted.args[0], *noted.__notes__])  # the audit's name too (leftovers_s43b: lost before)


class _ShapeError(Exception):
    def __init__(self, shape):
        self.shape = shape
        super().__init__(f"bad shape {shape}")


def test_without_exception_notes_the_error_itself_is_kept(monkeypatch):
    """3.10 rebuilt the error from one message: a constructor of other arguments (_ShapeError(shape)) got the message
    as its shape, an OSError lost its errno, a KeyError's message its quotes (mends_s42h, final_read_E F3). The error
    itself is answered: its one message argument noted, else left as it is."""
    monkeypatch.setattr(compat, "NOTES", False, raising=False)
    shaped = _ShapeError((3, 4))
    assert compat.with_note(shaped, "a note") is shaped and shaped.shape == (3, 4) and str(shaped) == "bad shape (3, 4)\na note"
    missing = OSError(errno.ENOENT, "No such file", "x.pt")
    assert compat.with_note(missing, "a note") is missing and missing.errno == errno.ENOENT and missing.filename == "x.pt"
    assert "a note" not in str(missing)
    key = KeyError("input_ids")
    assert compat.with_note(key, "a note") is key and key.args == ("input_ids",) and str(key) == "'input_ids'\na note"
    err = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    assert compat.with_note(err, "a note") is err and "a note" not in str(err)
    plain = ValueError("bad")
    assert compat.with_note(plain, "a note") is plain and str(plain) == "bad\na note"
