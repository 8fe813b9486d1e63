"""Guards on provider settings: no secret sent to a new destination, https only, quiet test errors.

- Changing where a secret goes (the SMTP host, port or security; the SMS API base URL) needs the
  secret again: otherwise anyone who may edit settings could point the stored password or token at
  a server of theirs (issue 14).
- The SMS API base URL must be https (plain http only with PATCHBAY_ALLOW_INSECURE_PROVIDERS=1,
  for local test doubles), with no credentials, query or fragment in it.
- A test message's answer says what failed in words an admin can act on, never the network
  detail behind it (addresses, ports, the far side's own text), so it cannot map a network.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import structlog
from shared.errors import ErrorCode, ErrorDetail, ServiceError

from notifier.domain.retry import AUTH_CODES, Outcome, OutcomeKind

log = structlog.get_logger(__name__)

# the fields that say where a channel's secret is sent, and the secret's own field
DESTINATION = {"email": ("smtp_host", "smtp_port", "security"), "sms": ("api_base_url",)}
SECRET_FIELD = {"email": "smtp_password", "sms": "auth_token"}
PROVIDER = {"email": "the SMTP server", "sms": "the SMS API"}
SMTP_REPLY = re.compile(r"^SMTP (-?\d+)\b")
TWILIO_REPLY = re.compile(r"^Twilio (\d{3})(?: code (\d+))?")
SMTP_FAILURE = re.compile(r"^SMTP: (\w+)")


def _same(field: str, old: Any, new: Any) -> bool:
    if field in ("smtp_host", "api_base_url") and isinstance(old, str) and isinstance(new, str):
        return old.strip().lower().rstrip("/") == new.strip().lower().rstrip("/")
    return bool(old == new)


def require_secret_for_new_destination(
    channel: str, stored: dict[str, Any] | None, new: dict[str, Any], has_secret: bool, secret_given: bool
) -> None:
    """422 when a stored secret would go to another destination without being given again."""
    if not has_secret or secret_given or stored is None:
        return
    moved = [f for f in DESTINATION[channel] if not _same(f, stored.get(f), new.get(f))]
    if not moved:
        return
    secret = SECRET_FIELD[channel]
    raise ServiceError(
        ErrorCode.VALIDATION,
        f"changing {', '.join(moved)} needs {secret} again: the stored one is not sent to a new destination",
        [ErrorDetail(field=secret, message="required when the destination changes", type="secret_required")],
    )


def check_api_base_url(url: str, *, allow_insecure: bool) -> None:
    """422 unless the SMS API base URL is https (http only when insecure providers are allowed)."""
    parts = urlsplit(url)
    why = None
    if parts.scheme != "https" and not (allow_insecure and parts.scheme == "http"):
        why = "must be an https URL (plain http only with PATCHBAY_ALLOW_INSECURE_PROVIDERS=1)"
    elif not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        why = "must be a plain base URL: a host, no credentials, query or fragment"
    if why:
        raise ServiceError(ErrorCode.VALIDATION, f"api_base_url {why}",
                           [ErrorDetail(field="api_base_url", message=why, type="url_not_allowed")])


def public_reason(outcome: Outcome, channel: str) -> str | None:
    """What a test message's failure may tell the admin (the full error goes to the log only)."""
    error = outcome.error
    if error is None:
        return None
    log.info("test_message_failed", channel=channel, error=error)
    provider = PROVIDER[channel]
    if outcome.kind is OutcomeKind.SENT:
        return f"{provider} took the message but did not confirm it; it may or may not arrive"
    if "CERTIFICATE_VERIFY_FAILED" in error:
        return (f"{provider}'s TLS certificate is not trusted (CERTIFICATE_VERIFY_FAILED): fix it, or trust"
                " its CA with PATCHBAY_SMTP_CA_FILE")
    reply = SMTP_REPLY.match(error)
    code = int(reply.group(1)) if reply else 0
    if outcome.link_down or (reply and not 200 <= code < 600):  # no SMTP server there at all
        return f"could not connect to {provider}: check the host, port and security settings"
    if reply:
        hint = ": the login was refused, check the username and password" if code in AUTH_CODES else ""
        return f"{provider} refused with reply code {code}{hint}"
    if found := TWILIO_REPLY.match(error):
        status = int(found.group(1))
        code = f", error code {found.group(2)}" if found.group(2) else ""
        hint = ": check the account SID and auth token" if status in (401, 403) else ""
        return f"{provider} refused with HTTP {status}{code}{hint}"
    if error.startswith("not a deliverable address"):
        return "the recipient is not a deliverable address"
    if found := SMTP_FAILURE.match(error):
        return f"the conversation with {provider} failed ({found.group(1)})"
    kind = "permanent" if outcome.kind is OutcomeKind.PERMANENT else "temporary"
    return f"{provider} could not take the message ({kind} failure; the notifier's log has the detail)"
