"""services/upload/multipart.py: the usual Content-Disposition is read without aiohttp's
parser, to the same name and filename; every other header is left to that parser."""

from __future__ import annotations

import warnings

import pytest
from aiohttp.multipart import content_disposition_filename, parse_content_disposition
from hypothesis import given
from hypothesis import strategies as st

from services.upload.multipart import simple_disposition


def by_aiohttp(header: str | None) -> tuple[str | None, str | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, params = parse_content_disposition(header)
    return (
        content_disposition_filename(params, "name"),
        content_disposition_filename(params, "filename"),
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('form-data; name="file"; filename="bench.bin"', ("file", "bench.bin")),
        ('form-data;name="file";filename="a b.txt"', ("file", "a b.txt")),
        ('Form-Data; NAME="file"; FileName="x"', ("file", "x")),
        ('form-data; name="file"', ("file", None)),
        ('form-data; name="file"; filename=""', ("file", "")),
        ('form-data; name="file"; filename="résumé.txt"', ("file", "résumé.txt")),
        ("form-data", (None, None)),
    ],
)
def test_the_usual_header_reads_as_aiohttp_reads_it(
    header: str, expected: tuple[str | None, str | None]
) -> None:
    assert simple_disposition(header) == expected == by_aiohttp(header)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        'form-data; name=file; filename="a"',  # a token, not quoted
        'form-data; name="file"; filename="a\\"b"',  # an escape
        'form-data; name="file"; filename="/etc/passwd"',  # aiohttp strips leading slashes
        "form-data; name=\"file\"; filename*=UTF-8''a%20b",  # RFC 5987
        'form-data; name="file"; filename*0="a"; filename*1="b"',  # continuations
        'form-data; name="file"; filename="a;b"',  # a semicolon inside the quotes
        'form-data; name="file"; name="other"',  # repeated
        'form-data; name="file";',  # trailing semicolon
        'form-data; name="file"; junk',  # no "="
        'form data; name="file"',  # not a token
    ],
    ids=repr,
)
def test_any_other_header_is_left_to_aiohttp(header: str | None) -> None:
    assert simple_disposition(header) is None


PIECES = st.sampled_from(
    [
        "form-data",
        "attachment",
        "Form-Data",
        ";",
        " ",
        "=",
        '"',
        "\\",
        "/",
        "*",
        "name",
        "NAME",
        "filename",
        "filename*",
        "file",
        "a.txt",
        "é",
        "\t",
        "0",
        "'",
        "\u212a",
    ]
)


@given(st.lists(PIECES, max_size=16).map("".join))
def test_whatever_it_reads_aiohttp_reads_the_same(header: str) -> None:
    simple = simple_disposition(header)
    if simple is not None:
        assert simple == by_aiohttp(header)


PARAMETER = st.tuples(
    st.sampled_from(["name", "filename", "NAME", " filename ", "x", "name*", "\u212aey"]),
    st.text(st.sampled_from('ab é"\\/;=*\t'), max_size=6),
).map(lambda pair: f'{pair[0]}="{pair[1]}"')


@given(st.lists(PARAMETER, max_size=4).map(lambda params: "; ".join(["form-data", *params])))
def test_quoted_parameters_read_as_aiohttp_reads_them(header: str) -> None:
    simple = simple_disposition(header)
    if simple is not None:
        assert simple == by_aiohttp(header)
