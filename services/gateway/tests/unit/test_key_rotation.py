"""Console cookies and portal tokens use their own derived keys and survive a key rotation (issue 14)."""

from __future__ import annotations

import base64
import hashlib
import uuid

import jwt
from cryptography.fernet import Fernet
from gateway.portal.sessions import AUDIENCE, PortalSessions, session_key
from gateway.web.session import ConsoleSettings, CookieSealer, Session
from shared.keys import derive, key_id
from shared.secrets import Sealer

OLD = Sealer.new_key()
NEW = Sealer.new_key()
SETTINGS = ConsoleSettings()


def test_console_cookies_use_their_own_key_and_open_after_a_rotation() -> None:
    cookie = CookieSealer(OLD, SETTINGS).seal(Session(token="pb_x", csrf="c"))
    own = Fernet(base64.urlsafe_b64encode(derive(OLD, "console-cookies")))
    assert own.decrypt(cookie.encode())  # sealed with the `console-cookies` key
    assert CookieSealer(NEW, SETTINGS, previous=OLD).open(cookie) is not None
    assert CookieSealer(NEW, SETTINGS).open(cookie) is None
    before_hkdf = Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"patchbay:web-sessions:" + OLD.encode())
                                                  .digest())).encrypt(b'{"t": "pb_y", "c": "c"}').decode()
    assert CookieSealer(OLD, SETTINGS).open(before_hkdf) is not None


def test_portal_tokens_carry_a_key_id_and_verify_after_a_rotation() -> None:
    token, _ = PortalSessions(session_key(None, OLD), 900).issue(str(uuid.uuid4()), str(uuid.uuid4()))
    assert jwt.get_unverified_header(token)["kid"] == key_id(OLD)
    jwt.decode(token, derive(OLD, "portal-sessions"), algorithms=["HS256"], audience=AUDIENCE)
    assert PortalSessions(session_key(None, NEW, OLD), 900).check(token) is not None
    assert PortalSessions(session_key(None, NEW), 900).check(token) is None


def test_portal_tokens_from_before_key_ids_still_verify() -> None:
    legacy_key = hashlib.sha256(b"patchbay:portal-sessions:" + OLD.encode()).digest()
    legacy = PortalSessions(legacy_key, 900).issue(str(uuid.uuid4()), str(uuid.uuid4()))[0]
    unheaded = jwt.encode(jwt.decode(legacy, legacy_key, algorithms=["HS256"], audience=AUDIENCE),
                          legacy_key, algorithm="HS256")  # as issued before: no `kid` header
    assert PortalSessions(session_key(None, OLD), 900).check(unheaded) is not None
