"""OCI image references, registry credentials, and durations of waits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitops_glue import durations, redact
from gitops_glue.errors import UsageError
from gitops_glue.integrations import oci


@pytest.mark.parametrize(
    ("image", "registry", "name", "scheme"),
    [
        ("registry.example.com/team/a", "registry.example.com", "team/a", "https"),
        ("127.0.0.1:5000/team/a", "127.0.0.1:5000", "team/a", "http"),
        ("localhost:5000/a", "localhost:5000", "a", "http"),
        ("nginx", "registry-1.docker.io", "library/nginx", "https"),
        ("http://reg.internal:80/a/b", "reg.internal:80", "a/b", "http"),
    ],
)
def test_image_references(image: str, registry: str, name: str, scheme: str) -> None:
    ref = oci.parse_image(image)
    assert (ref.registry, ref.name, ref.scheme) == (registry, name, scheme)


def test_bad_image_references_and_durations() -> None:
    with pytest.raises(UsageError, match="includes a tag"):
        oci.parse_image("registry.example.com/a:v1")
    assert durations.parse_duration("10m") == 600
    assert durations.parse_duration("1m30s") == 90
    assert durations.parse_duration("45") == 45
    with pytest.raises(UsageError):
        durations.parse_duration("soon")


def test_docker_config_credentials(tmp_path: Path) -> None:
    import base64

    auth = base64.b64encode(b"robot:s3cret-pass").decode()
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {"https://reg.example.com": {"auth": auth}}})
    )
    creds = oci.credentials_for("reg.example.com", {"DOCKER_CONFIG": str(tmp_path)})
    assert creds is not None and (creds.username, creds.password) == ("robot", "s3cret-pass")
    assert redact.redact("password s3cret-pass leaked") == "password *** leaked"
    env = {"GLUE_REGISTRY_USER": "u", "GLUE_REGISTRY_PASSWORD": "p" * 8}
    assert oci.credentials_for("other", env) == oci.Credentials("u", "p" * 8)
