"""services/registration/commands.py: the operator commands' arguments, checked before any I/O."""

from __future__ import annotations

import uuid

import pytest

from services.registration.commands import parser


def parse(*args: str) -> object:
    return parser().parse_args(list(args))


@pytest.mark.parametrize(
    ("raw", "seconds"), [("90s", 90), ("15m", 900), ("12h", 43200), ("30d", 2592000)]
)
def test_expires_in_takes_a_number_and_a_unit(raw: str, seconds: int) -> None:
    args = parse("create-api-key", "--user-id", "7", "--expires-in", raw)
    assert vars(args) == {
        "command": "create-api-key",
        "user_id": 7,
        "admin": False,
        "expires_in": seconds,
    }


def test_a_key_expires_never_unless_asked() -> None:
    assert vars(parse("create-api-key", "--admin"))["expires_in"] is None


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ("30", "a whole number and a unit s, m, h or d (e.g. 90s, 15m, 12h, 30d), got '30'"),
        ("1w", "got '1w'"),
        ("-5m", "got '-5m'"),
        ("1.5h", "got '1.5h'"),
        ("0s", "more than 0 and at most 3650d, got '0s'"),
        ("3651d", "at most 3650d, got '3651d'"),
    ],
)
def test_a_bad_expiry_is_refused_saying_what_is_expected(
    raw: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse("create-api-key", "--user-id", "7", f"--expires-in={raw}")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --expires-in: must be " in err and said in err


def test_revoke_takes_the_key_or_its_id_but_not_both(capsys: pytest.CaptureFixture[str]) -> None:
    key_id = uuid.uuid4()
    assert vars(parse("revoke-api-key", "--id", str(key_id)))["id"] == key_id
    assert vars(parse("revoke-api-key", "whk_abc"))["key"] == "whk_abc"
    for args in (("revoke-api-key",), ("revoke-api-key", "whk_abc", "--id", str(key_id))):
        with pytest.raises(SystemExit):
            parse(*args)
    with pytest.raises(SystemExit):
        parse("revoke-api-key", "--id", "nope")
    assert "must be a key's id as list-api-keys shows it (a UUID), got 'nope'" in (
        capsys.readouterr().err
    )


def test_list_takes_no_arguments() -> None:
    assert vars(parse("list-api-keys")) == {"command": "list-api-keys"}
