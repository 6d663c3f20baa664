import mangum_ws


def test_public_api_is_pinned() -> None:
    assert sorted(mangum_ws.__all__) == sorted(
        [
            "MAX_MESSAGE_BYTES",
            "PROTOCOL_VERSION",
            "ActionError",
            "ActionSpec",
            "AwsGateway",
            "Connection",
            "ConnectionGone",
            "ConnectionNotReady",
            "ConnectionRecord",
            "ConnectionStore",
            "DynamoDBStore",
            "ErrorCode",
            "EventSpec",
            "Gateway",
            "InMemoryStore",
            "LocalGateway",
            "MangumWS",
            "MangumWSError",
            "MissingDependencyError",
            "PayloadTooLarge",
            "RegistrationError",
            "Reject",
            "SendError",
            "SendReport",
            "StoreError",
            "__version__",
        ]
    )
    for name in mangum_ws.__all__:
        assert hasattr(mangum_ws, name), name


def test_the_version_is_the_packages() -> None:
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == mangum_ws.__version__ == "0.2.0"
