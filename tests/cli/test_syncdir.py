"""tarscli syncdir: copy rules (regular files, symlinks followed, size/mtime, atomic)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from k8stars.cli.main import main
from k8stars.cli.settings import CliError
from k8stars.cli.syncdir import sync_directory


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "configmap"
    src.mkdir()
    return src, tmp_path / "tars" / "bin"


def test_copies_a_file_like_the_original(dirs: tuple[Path, Path]) -> None:
    # app/syncdir/sync_test.go
    src, dst = dirs
    (src / "a").write_bytes(b"aaaa")
    result = sync_directory(str(src), str(dst))
    assert result.copied == ["a"]
    assert (dst / "a").read_bytes() == b"aaaa"
    assert (dst / "a").stat().st_mtime_ns == (src / "a").stat().st_mtime_ns
    assert stat.S_IMODE((dst / "a").stat().st_mode) == 0o755


def test_unchanged_files_are_not_copied_again(dirs: tuple[Path, Path]) -> None:
    src, dst = dirs
    (src / "a").write_text("one")
    sync_directory(str(src), str(dst))
    inode = (dst / "a").stat().st_ino
    result = sync_directory(str(src), str(dst))
    assert result.copied == [] and result.unchanged == ["a"]
    assert (dst / "a").stat().st_ino == inode


def test_a_different_mtime_or_size_is_copied(dirs: tuple[Path, Path]) -> None:
    src, dst = dirs
    (src / "a").write_text("one")
    (src / "b").write_text("two")
    sync_directory(str(src), str(dst))
    os.utime(src / "a", ns=(0, 1_000_000_000))  # same size, other mtime
    (dst / "b").write_text("changed locally!")  # other size
    os.chmod(dst / "b", 0o600)
    result = sync_directory(str(src), str(dst))
    assert result.copied == ["a", "b"]
    assert (dst / "a").stat().st_mtime_ns == 1_000_000_000
    assert (dst / "b").read_text() == "two"
    assert stat.S_IMODE((dst / "b").stat().st_mode) == 0o600  # a replaced file keeps its mode


def test_configmap_layout_symlinks_followed_dirs_skipped(dirs: tuple[Path, Path]) -> None:
    src, dst = dirs
    data = src / "..2024_01_01_00_00_00.000000001"
    data.mkdir()
    (data / "start.sh").write_text("#!/bin/sh\nexec ./server\n")
    (data / "app.conf").write_text("<tars>\n</tars>\n")
    (src / "..data").symlink_to(data.name)
    (src / "start.sh").symlink_to("..data/start.sh")
    (src / "app.conf").symlink_to("..data/app.conf")
    (src / "dangling").symlink_to("..data/missing")
    (src / "subdir").mkdir()
    result = sync_directory(str(src), str(dst))
    assert result.copied == ["app.conf", "start.sh"]
    assert sorted(n for n, _ in result.skipped) == ["dangling", "subdir"]
    assert not (dst / "start.sh").is_symlink()
    assert (dst / "start.sh").read_text() == "#!/bin/sh\nexec ./server\n"
    assert sorted(os.listdir(dst)) == ["app.conf", "start.sh"]  # no temporary files left


def test_a_directory_in_the_way_is_skipped(dirs: tuple[Path, Path]) -> None:
    src, dst = dirs
    (src / "x").write_text("x")
    (dst / "x").mkdir(parents=True)
    result = sync_directory(str(src), str(dst))
    assert result.skipped == [("x", "the target is not a regular file")]


def test_bad_directories(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    src, _ = dirs
    with pytest.raises(CliError, match=r"^TARS_SYNC_DIRECTORY='.*/nope': no such directory$"):
        sync_directory(str(tmp_path / "nope"), str(tmp_path / "out"))
    (tmp_path / "file").write_text("")
    with pytest.raises(CliError, match=r"^TARS_SYNC_DIRECTORY='.*/file': not a directory$"):
        sync_directory(str(tmp_path / "file"), str(tmp_path / "out"))
    with pytest.raises(CliError, match=r"is the source directory$"):
        sync_directory(str(src), str(src))


def test_subcommand(dirs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = dirs
    monkeypatch.delenv("TARS_SYNC_DIRECTORY", raising=False)
    monkeypatch.delenv("TARS_SYNC_TARGET_DIRECTORY", raising=False)
    monkeypatch.setenv("TARS_PATH", str(tmp_path / "tars"))
    assert main(["syncdir"]) == 0
    assert capsys.readouterr().out == ("tarscli syncdir: TARS_SYNC_DIRECTORY is not set: "
                                       "nothing to do\n")
    (src / "a").write_text("a")
    monkeypatch.setenv("TARS_SYNC_DIRECTORY", str(src))
    assert main(["syncdir"]) == 0  # target defaults to $TARS_PATH/bin
    assert capsys.readouterr().out == (f"tarscli syncdir: copied {src}/a -> {dst}/a\n"
                                       "tarscli syncdir: 1 copied, 0 unchanged, 0 skipped\n")
    assert (dst / "a").read_text() == "a"
    monkeypatch.setenv("TARS_SYNC_DIRECTORY", str(tmp_path / "missing"))
    assert main(["syncdir"]) == 2
    assert capsys.readouterr().err == (f"tarscli syncdir: TARS_SYNC_DIRECTORY="
                                       f"'{tmp_path}/missing': no such directory\n")
