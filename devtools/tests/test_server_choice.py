"""Which servers the fixtures start: embedded unless PATCHBAY_TEST_SERVERS=docker can really be had."""

from __future__ import annotations

import pytest
from devtools.testing.server_choice import NATS_IMAGE, POSTGRES_IMAGE, ServerChoiceError, choose_servers


def never() -> bool:
    raise AssertionError("not asked for docker: nothing to look up")


@pytest.mark.parametrize("value", [None, "", "embedded", " Embedded "])
def test_embedded_by_default_without_looking_for_docker(value: str | None) -> None:
    env = {} if value is None else {"PATCHBAY_TEST_SERVERS": value}
    assert choose_servers(env, installed=never, docker_answers=never) == "embedded"


def test_docker_when_installed_and_the_engine_answers() -> None:
    env = {"PATCHBAY_TEST_SERVERS": "docker"}
    assert choose_servers(env, installed=lambda: True, docker_answers=lambda: True) == "docker"


@pytest.mark.parametrize(("installed", "answers", "says"), [
    (False, True, "uv sync --group docker"),
    (True, False, "no Docker engine answers at tcp://10.0.0.9:2375"),
])
def test_docker_asked_for_and_not_possible_fails_saying_why(installed: bool, answers: bool, says: str) -> None:
    env = {"PATCHBAY_TEST_SERVERS": "docker", "DOCKER_HOST": "tcp://10.0.0.9:2375"}
    with pytest.raises(ServerChoiceError, match=says):
        choose_servers(env, installed=lambda: installed, docker_answers=lambda: answers)


def test_an_unknown_choice_is_refused() -> None:
    with pytest.raises(ServerChoiceError, match="use one of embedded, docker"):
        choose_servers({"PATCHBAY_TEST_SERVERS": "podman"}, installed=never, docker_answers=never)


def test_the_images_are_the_versions_of_the_wheels() -> None:
    import subprocess

    from devtools.embedded import EmbeddedNats, EmbeddedPostgres

    nats = subprocess.run([str(EmbeddedNats.binary()), "--version"], capture_output=True, text=True, check=True)
    assert nats.stdout.strip().endswith("v" + NATS_IMAGE.split(":")[1])
    postgres = subprocess.run([str(EmbeddedPostgres.bin_dir() / "postgres"), "--version"], capture_output=True,
                              text=True, check=True)
    assert postgres.stdout.split()[-1] == POSTGRES_IMAGE.split(":")[1]
