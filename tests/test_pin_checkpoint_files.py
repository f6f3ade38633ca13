"""Pins of steploop.checkpoint_files: the writability probe, atomic writes through a hidden
temporary file in the target's folder, and exact messages."""

import os
import shutil

import pytest

import steploop as sl
from steploop.checkpoint_files import atomic_write, check_variables
from tests.helpers import raised_message


def test_a_directory_under_a_file_is_refused_with_the_os_reason(tmp_path):
    """The message ends with the OS's reason alone, not the whole OSError."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    target = str(blocker / "run")
    assert raised_message(ValueError, sl.Checkpoint, target, every=10) == (
        f"Checkpoint directory {target!r} is not writable: Not a directory"
    )


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_an_existing_directory_no_file_can_be_made_in_is_refused():
    """The probe is made in the directory itself: an existing one that takes no new file (as
    /proc/self, even for root) fails at construction."""
    with pytest.raises(ValueError, match=r"^Checkpoint directory '/proc/self' is not writable: "):
        sl.Checkpoint("/proc/self", every=10)


def test_the_probe_is_a_hidden_file_in_the_directory_and_is_removed(tmp_path, monkeypatch):
    """Constructing a Checkpoint creates only ``.probe-*`` files in its directory and leaves
    none behind."""
    created = []
    real_open = os.open

    def recording(path, flags, *args, **kwargs):
        if flags & os.O_CREAT:
            created.append(os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording)
    sl.Checkpoint(tmp_path, every=1)
    monkeypatch.undo()
    assert len(created) == 1
    assert os.path.dirname(created[0]) == str(tmp_path)
    assert os.path.basename(created[0]).startswith(".probe-")
    assert os.listdir(tmp_path) == []


def test_atomic_write_writes_through_a_hidden_temporary_in_the_same_folder(tmp_path):
    """While it is written, the target does not exist and the folder holds one ``.tmp-*`` file;
    afterwards only the target, with the bytes written."""
    target = tmp_path / "out.bin"
    during = []

    def write(file):
        file.write(b"abc")
        during.append(sorted(os.listdir(tmp_path)))

    atomic_write(str(target), write)
    assert len(during[0]) == 1 and during[0][0].startswith(".tmp-")
    assert os.listdir(tmp_path) == ["out.bin"]
    assert target.read_bytes() == b"abc"


def test_atomic_write_that_fails_raises_its_error_and_leaves_nothing(tmp_path):
    """An error in the write is raised as it is; the temporary is removed and the target is
    not made."""

    def write(file):
        file.write(b"part")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match=r"^disk full$"):
        atomic_write(str(tmp_path / "out.bin"), write)
    assert os.listdir(tmp_path) == []


def test_atomic_write_into_a_folder_removed_meanwhile_raises_the_renames_error(tmp_path):
    """The folder removed during the write: the rename's FileNotFoundError is raised; the
    clean-up that finds no temporary to remove raises nothing of its own."""
    folder = tmp_path / "run"
    folder.mkdir()

    def write(file):
        file.write(b"abc")
        shutil.rmtree(folder)

    with pytest.raises(FileNotFoundError):
        atomic_write(str(folder / "out.bin"), write)
    assert not folder.exists()


def test_a_checkpoint_without_variables_says_it_holds_none():
    """check_variables on an empty checkpoint ends its message with 'no variables'."""
    message = raised_message(
        ValueError, check_variables, "S", "ckpt-1", {}, {"a": ((2,), "float32")}
    )
    assert message == (
        "S: checkpoint 'ckpt-1' does not match the variables, which are restored by name: "
        "variable 'a' (2,) float32 is not in it. The checkpoint holds: no variables"
    )
