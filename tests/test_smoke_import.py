import pytest

import mangum_ws


def test_public_api_is_pinned() -> None:
    assert sorted(mangum_ws.__all__) == sorted(
        [
            "ActionError",
            "AwsGateway",
            "ConnectRequest",
            "Connection",
            "ConnectionGone",
            "ConnectionNotReady",
            "ConnectionRecord",
            "ConnectionStore",
            "DynamoDBStore",
            "ErrorCode",
            "EventSpec",
            "Forbidden",
            "Gateway",
            "InMemoryStore",
            "InvalidPrincipal",
            "MangumWS",
            "MangumWSError",
            "MissingDependencyError",
            "PayloadTooLarge",
            "Principal",
            "RegistrationError",
            "Reject",
            "SendError",
            "SendReport",
            "StoreError",
            "Unauthorized",
            "__version__",
        ]
    )
    for name in mangum_ws.__all__:
        assert hasattr(mangum_ws, name), name


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("LocalGateway", "mangum_ws.gateways.SocketGateway"),
        ("ActionSpec", "mangum_ws.registry.ActionSpec"),
        ("MAX_MESSAGE_BYTES", "mangum_ws.limits.MAX_MESSAGE_BYTES"),
        ("PROTOCOL_VERSION", "mangum_ws.protocol.PROTOCOL_VERSION"),
    ],
)
def test_names_that_moved_still_import_with_a_warning(name: str, where: str) -> None:
    with pytest.warns(DeprecationWarning, match=where):
        value = getattr(mangum_ws, name)
    module, _, attribute = where.rpartition(".")
    assert value is getattr(__import__(module, fromlist=[attribute]), attribute)


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        mangum_ws.Nope  # noqa: B018


def test_the_version_is_the_packages() -> None:
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == mangum_ws.__version__ == "0.3.1"
