"""services/upload/ingest/storage.py: the name an uploaded file is stored under, its media type."""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath, PureWindowsPath

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.upload.ingest.storage import MAX_FILENAME_BYTES, content_type_of, sanitise_filename

# What may be left of a name: letters and digits of any script, '_', '.', '-' and space.
SAFE_NAME = re.compile(r"[\w.\- ]+")

# --- sanitise_filename -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("/etc/shadow", "shadow"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        # Fullwidth dots and slash become "../x" under NFKC: cut like the plain ones.
        ("\uff0e\uff0e\uff0fx", "x"),
        ("a/b/", "file"),
    ],
)
def test_only_the_last_path_component_is_kept(raw: str, stored: str) -> None:
    assert sanitise_filename(raw) == stored


@pytest.mark.parametrize("raw", [None, "", ".", "..", "....", " . ", "/", "\\"], ids=repr)
def test_nothing_usable_becomes_file(raw: str | None) -> None:
    assert sanitise_filename(raw) == "file"


@pytest.mark.parametrize(
    ("raw", "stored"), [(".bashrc", "bashrc"), ("..hidden", "hidden"), (" . a . ", "a")]
)
def test_no_dot_files_and_no_surrounding_dots_or_spaces(raw: str, stored: str) -> None:
    assert sanitise_filename(raw) == stored


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("a\x00b.txt", "a_b.txt"),
        ("a\nb\rc\td", "a_b_c_d"),
        ("bell\x07.txt", "bell_.txt"),
        ("del\x7f.txt", "del_.txt"),
        ("\u202etxt.exe", "_txt.exe"),  # right-to-left override: shows as "exe.txt"
        ('quo"te', "quo_te"),
        ("semi;colon", "semi_colon"),
        ("a<b>c|d?e*f:g", "a_b_c_d_e_f_g"),
        ("\ud800.txt", "_.txt"),  # a lone surrogate cannot be encoded
    ],
    ids=repr,
)
def test_control_and_special_characters_are_replaced(raw: str, stored: str) -> None:
    assert sanitise_filename(raw) == stored


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("résumé.txt", "résumé.txt"),
        ("日本語.txt", "日本語.txt"),
        ("\ufb01le.txt", "file.txt"),  # the "ﬁ" ligature, NFKC-normalised
        ("smile \U0001f600.txt", "smile _.txt"),
    ],
)
def test_letters_of_any_script_stay(raw: str, stored: str) -> None:
    assert sanitise_filename(raw) == stored


def test_a_long_name_is_cut_to_the_byte_limit() -> None:
    assert sanitise_filename("x" * 300) == "x" * MAX_FILENAME_BYTES
    assert sanitise_filename("x" * MAX_FILENAME_BYTES) == "x" * MAX_FILENAME_BYTES


def test_a_long_name_is_cut_between_characters_not_inside_one() -> None:
    stored = sanitise_filename("é" * 150)  # 300 bytes of UTF-8
    assert stored == "é" * (MAX_FILENAME_BYTES // 2)
    stored = sanitise_filename("a" + "日" * 100)  # 1 + 300 bytes: 66 fit after the "a"
    assert stored == "a" + "日" * 66
    assert len(stored.encode()) <= MAX_FILENAME_BYTES


@given(st.none() | st.text(max_size=400))
def test_any_name_is_one_safe_component_within_the_limit(raw: str | None) -> None:
    stored = sanitise_filename(raw)
    assert stored and SAFE_NAME.fullmatch(stored), repr(stored)
    assert not stored.startswith((".", " "))
    assert stored not in (".", "..")
    assert PurePosixPath(stored).name == stored and PureWindowsPath(stored).name == stored
    assert len(stored.encode()) <= MAX_FILENAME_BYTES


@given(st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=60))
def test_a_plain_name_is_kept_as_normalised(raw: str) -> None:
    normalised = unicodedata.normalize("NFKC", raw)
    assume(SAFE_NAME.fullmatch(normalised) and len(normalised.encode()) <= MAX_FILENAME_BYTES)
    assert sanitise_filename(raw) == normalised


def sanitised_the_long_way(raw: str) -> str:
    """Every step of sanitise_filename, without its shortcut for plain ASCII names."""
    name = unicodedata.normalize("NFKC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^\w.\- ]+", "_", name).strip(" .")
    while len(name.encode()) > MAX_FILENAME_BYTES:
        name = name[:-1]
    return name or "file"


@given(st.text(alphabet="aZ09_-. \\/:é\t", max_size=250))
def test_the_shortcut_for_plain_ascii_names_changes_nothing(raw: str) -> None:
    assert sanitise_filename(raw) == sanitised_the_long_way(raw)


# --- content_type_of ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "media_type"),
    [
        ("text/plain", "text/plain"),
        ("Text/Plain; charset=utf-8", "text/plain"),
        ("  image/png  ", "image/png"),
        ("application/vnd.api+json", "application/vnd.api+json"),
        (None, "application/octet-stream"),
        ("", "application/octet-stream"),
        ("text", "application/octet-stream"),
        ("text/", "application/octet-stream"),
        ("text/plain/extra", "application/octet-stream"),
        ("text/pl ain", "application/octet-stream"),
        ("text/plain\r\nX-Injected: 1", "application/octet-stream"),
        ("a/" + "b" * 300, "application/octet-stream"),
    ],
    ids=repr,
)
def test_content_type_of_keeps_only_well_formed_media_types(
    raw: str | None, media_type: str
) -> None:
    assert content_type_of(raw) == media_type
