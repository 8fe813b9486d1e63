"""Bodies are cut at the limit however they are sent, before they are buffered (issue 14)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

pytestmark = pytest.mark.servers
CHUNK = 64 * 1024


class Counted:
    """A chunked request body (no Content-Length) that counts how much the server pulled."""

    def __init__(self, total: int, *, head: bytes = b"") -> None:
        self.total = total
        self.head = head
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.head:
            self.pulled += len(self.head)
            yield self.head
        while self.pulled < self.total:
            self.pulled += CHUNK
            yield b"a" * CHUNK


async def test_chunked_body_without_length_is_cut_at_the_limit_with_413(gateway) -> None:
    limit = gateway.settings.max_body_bytes
    body = Counted(40 * limit, head=b'{"email": "x@example.com", "password": "')
    reply = await gateway.client.post("/portal/v1/login", content=body,
                                      headers={"Content-Type": "application/json"})
    assert reply.status_code == 413, reply.text
    assert reply.json()["error"]["code"] == "payload_too_large"
    # the gateway stopped reading one chunk past the limit: nothing like the whole body was taken
    assert body.pulled <= limit + 2 * CHUNK, body.pulled


async def test_chunked_body_under_the_limit_still_works(gateway) -> None:
    body = Counted(CHUNK)
    reply = await gateway.client.post("/v1/customers", content=body,
                                      headers={"Content-Type": "application/json"})
    assert reply.status_code == 422  # read whole and judged (not JSON), not cut


async def test_multipart_upload_is_not_read_before_sign_in(gateway) -> None:
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.csv\"\r\n"
            "Content-Type: text/csv\r\n\r\n").encode()
    body = Counted(20 * gateway.settings.max_body_bytes, head=head)
    reply = await gateway.client.post(
        "/console/bulk/upload", content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "Authorization": ""},
    )
    assert reply.status_code in (303, 403), reply.status_code  # sent to sign in, nothing spooled
    assert body.pulled <= len(head) + CHUNK, body.pulled
