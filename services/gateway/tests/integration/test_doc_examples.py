"""The examples in README.md and docs/ are run: JSON blocks parse, curl commands answer as shown."""

from __future__ import annotations

import json
import re
import shlex
import uuid
from pathlib import Path
from typing import Any

import pytest
from shared.contracts.alerts import AlertRuleIn

pytestmark = pytest.mark.servers
ROOT = Path(__file__).parents[4]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# commands that need state a fresh customer does not have (a removed contact, a deleted customer)
NEEDS_MORE = ("/erase",)


def json_blocks() -> list[tuple[str, str]]:
    """Every ```json block of the docs, with where it is."""
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for block in re.finditer(r"```json\n(.*?)```", text, re.S):
            found.append((f"{doc.name}:{text[:block.start()].count(chr(10)) + 1}", block.group(1)))
    return found


def curl_commands(doc: Path) -> list[str]:
    """Each `curl` of a doc's code blocks, its continuation lines joined."""
    commands = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", doc.read_text(), re.S):
        lines = re.sub(r"\\\n\s*", " ", block).splitlines()
        for at, line in enumerate(lines):
            if not line.strip().removeprefix("$ ").startswith("curl "):
                continue
            for end in range(at + 1, len(lines) + 1):  # a quoted body may go on over lines
                command = " ".join(lines[at:end]).strip().removeprefix("$ ")
                try:
                    shlex.split(command)
                except ValueError:
                    continue
                commands.append(command)
                break
    return commands


def test_every_json_example_parses() -> None:
    blocks = json_blocks()
    assert len(blocks) >= 4
    for where, text in blocks:
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"{where}: not JSON a reader can paste ({exc})") from None


def test_the_alert_rule_example_is_a_valid_rule() -> None:
    (text,) = [t for where, t in json_blocks() if where.startswith("alerts.md")]
    AlertRuleIn.model_validate(json.loads(text))


async def run_curl(client: Any, command: str, env: dict[str, str]) -> Any:
    """Run one documented curl against the in-process gateway (its shell variables from `env`)."""
    for name, value in env.items():
        command = command.replace(f"${name}", value)
    args = shlex.split(command)[1:]
    method, headers, body, url = "GET", {}, None, None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-X":
            method, i = args[i + 1], i + 1
        elif arg == "-H":
            name, _, value = args[i + 1].partition(":")
            headers[name.strip()] = value.strip()
            i += 1
        elif arg == "-d":
            body, i = args[i + 1], i + 1
            method = "POST" if method == "GET" else method
        elif not arg.startswith("-"):
            url = arg
        i += 1
    assert url, command
    path = re.sub(r"^(https?://)?(localhost|127\.0\.0\.1):8000", "", url)
    return await client.request(method, path, headers=headers, content=body)


async def test_the_documented_curl_commands_answer(gateway: Any, real_services: None) -> None:
    client = gateway.client
    billing = await gateway.make_token("billing")
    card = (await client.post("/v1/customers", json={"name": f"docs-{uuid.uuid4().hex[:8]}",
                                                     "currency": "EUR"})).json()
    env = {"TOKEN": gateway.admin_token, "ADMIN": gateway.admin_token, "BILLING": billing, "ID": card["id"],
           "API": ""}
    ran = 0
    for doc in DOCS:
        for command in curl_commands(doc):
            if any(part in command for part in NEEDS_MORE):
                continue
            if "Acme Telecom" in command:  # the README's first customer, made unique for this run
                command = command.replace("Acme Telecom", f"Acme Telecom {uuid.uuid4().hex[:6]}")
            reply = await run_curl(client, command, env)
            assert reply.status_code < 300, f"{doc.name}: {command}\n{reply.status_code} {reply.text[:300]}"
            ran += 1
    assert ran >= 4
