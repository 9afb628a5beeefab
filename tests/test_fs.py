"""aestudio._fs: the one atomic-write primitive (content lands, failures keep the old file)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from aestudio import _fs


def test_content_lands_and_no_temp_is_left(tmp_path) -> None:
    target = tmp_path / "a.bin"
    assert _fs.atomic_write_bytes(target, b"one") == target
    _fs.atomic_write_bytes(target, b"two")
    _fs.atomic_write_text(tmp_path / "t.txt", "h\u00e9\n")
    _fs.atomic_write(tmp_path / "w.bin", lambda fh: fh.write(b"via writer"))
    assert target.read_bytes() == b"two"
    assert (tmp_path / "t.txt").read_bytes() == "h\u00e9\n".encode()
    assert (tmp_path / "w.bin").read_bytes() == b"via writer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "t.txt", "w.bin"]


def test_writer_failure_mid_write_keeps_old_file_and_no_temp(tmp_path) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("old")

    def half_then_fail(fh) -> None:
        fh.write(b"half of the ne")
        raise OSError("disk full (injected)")

    with pytest.raises(OSError, match="disk full"):
        _fs.atomic_write(target, half_then_fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_replace_failure_keeps_old_file_and_no_temp(tmp_path, monkeypatch) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("old")

    def broken_replace(src, dst):
        raise OSError("rename failed (injected)")

    monkeypatch.setattr(_fs.os, "replace", broken_replace)
    with pytest.raises(OSError, match="rename failed"):
        _fs.atomic_write_bytes(target, b"new", prefix=".tmp-x.", suffix="")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_file_and_folder_are_fsynced(tmp_path, monkeypatch) -> None:
    folders = []
    real = _fs.fsync_dir
    monkeypatch.setattr(_fs, "fsync_dir", lambda folder: (folders.append(folder), real(folder)))
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(_fs.os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd)))
    _fs.atomic_write_bytes(tmp_path / "x", b"1")
    assert folders == [tmp_path]
    assert len(calls) == (2 if os.name != "nt" else 1)  # the file, then the folder


def test_overwrite_false_refuses_existing_and_writes_new(tmp_path) -> None:
    target = tmp_path / "x.txt"
    _fs.atomic_write_text(target, "first", overwrite=False)
    with pytest.raises(FileExistsError, match="pass overwrite=True or choose another name"):
        _fs.atomic_write_text(target, "second", overwrite=False)
    assert target.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]  # the hard link's temp name is gone


def test_overwrite_false_loses_a_race_cleanly(tmp_path) -> None:
    target = tmp_path / "race.txt"

    def competitor_wins(fh) -> None:
        fh.write(b"mine")
        target.write_text("theirs")  # appears after the exists() check

    with pytest.raises(FileExistsError, match="already exists"):
        _fs.atomic_write(target, competitor_wins, overwrite=False)
    assert target.read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["race.txt"]


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_mode_sets_permissions_and_temp_names(tmp_path, monkeypatch) -> None:
    seen = []
    real_replace = os.replace
    monkeypatch.setattr(_fs.os, "replace", lambda s, d: (seen.append(os.path.basename(s)), real_replace(s, d)))
    target = tmp_path / "fig.png"
    _fs.atomic_write_bytes(target, b"png", prefix=".fig.", suffix=".png", mode=0o644)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert seen[0].startswith(".fig.") and seen[0].endswith(".png")


@pytest.fixture
def umask():
    """Set the process umask for one test (restored after)."""
    old = os.umask(0o022)
    os.umask(old)

    def set_to(value: int) -> None:
        os.umask(value)

    yield set_to
    os.umask(old)


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_new_files_get_what_a_plain_write_gives_under_the_umask(tmp_path, umask, mask) -> None:
    # Issue 16: masks, run files and model.json came out 0600 whatever the umask.
    umask(mask)
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = _fs.atomic_write_text(tmp_path / "atomic.txt", "x")
    assert stat.S_IMODE(atomic.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~mask
    folder = _fs.make_temp_dir(tmp_path, ".bundle.export-")
    assert folder.name.startswith(".bundle.export-")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~mask


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_a_replaced_file_keeps_its_mode_as_a_plain_write_does(tmp_path, umask) -> None:
    umask(0o022)
    target = tmp_path / "run.json"
    target.write_text("old")
    target.chmod(0o640)
    _fs.atomic_write_text(target, "new")
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o640


def test_standard_library_only() -> None:
    code = (
        "import sys; import aestudio._fs; "
        "bad = sorted(m for m in ('torch', 'numpy', 'PySide6', 'PIL') if m in sys.modules); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_unique_path_numbers_files_before_their_suffix_and_folders_after_their_name(tmp_path) -> None:
    from aestudio._fs import unique_path

    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "a_2.png").write_bytes(b"x")
    assert unique_path(tmp_path / "a.png") == tmp_path / "a_3.png"
    assert unique_path(tmp_path / "b.png") == tmp_path / "b.png"
    (tmp_path / "micro.v2").mkdir()
    assert unique_path(tmp_path / "micro.v2", "-", folder=True) == tmp_path / "micro.v2-2"
