"""services/upload/ingest/storage.py's upload_folder: a folder stays only once recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.upload.ingest.storage import upload_folder


def test_a_recorded_upload_keeps_its_folder(tmp_path: Path) -> None:
    with upload_folder(tmp_path, "recorded") as folder:
        (folder.path / "file.jpg").write_bytes(b"jpeg")
        folder.keep()
    assert (tmp_path / "recorded" / "file.jpg").read_bytes() == b"jpeg"


def test_an_upload_left_unrecorded_loses_its_folder(tmp_path: Path) -> None:
    with upload_folder(tmp_path, "repeat") as folder:
        (folder.path / "file.jpg").write_bytes(b"jpeg")
    assert not (tmp_path / "repeat").exists()


@pytest.mark.parametrize("error", [ValueError("refused"), KeyboardInterrupt()])
def test_an_error_or_interruption_leaves_nothing(tmp_path: Path, error: BaseException) -> None:
    with pytest.raises(type(error)), upload_folder(tmp_path, "cut") as folder:
        (folder.path / "part").write_bytes(b"half a fi")
        raise error
    assert list(tmp_path.iterdir()) == []
