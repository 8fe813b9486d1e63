"""System message templates, kept in the repo (`notifier/templates/<template>.<channel>.txt`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from notifier.domain.rendering import render

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
# the values the producers send (customer: contact_name, customer_name, login_email, portal_url;
# verification: contact_name, expires_minutes, link_base), the link made from link_base, the secret
OFFERED = ("contact_name", "customer_name", "login_email", "portal_url", "expires_minutes", "link", "secret",
           "amount", "currency", "reference", "payment_kind", "payment_status",
           # alerts: a rule fired (alert_customer, alert_operator)
           "alert_name", "area", "value", "threshold", "direction", "level", "penalty_until")
DEFAULTS = {"expires_minutes": "10"}


@dataclass(frozen=True)
class Template:
    """A subject (e-mail only) and a body with `{{placeholders}}`."""

    subject: str | None
    body: str


@dataclass(frozen=True)
class Rendered:
    """A rendered message."""

    subject: str | None
    body: str


class TemplateNotFound(LookupError):
    """No template for this name and channel."""


def load(name: str, channel: str, directory: Path = TEMPLATE_DIR) -> Template:
    """Read one template; an e-mail's first line is `Subject: ...`, then a blank line, then the body."""
    path = directory / f"{name}.{channel}.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateNotFound(f"no {channel} template named {name!r}") from None
    if channel != "email":
        return Template(None, text.strip())
    head, _, body = text.partition("\n\n")
    if not head.startswith("Subject:"):
        raise TemplateNotFound(f"{path.name}: the first line must be 'Subject: ...'")
    return Template(head.removeprefix("Subject:").strip(), body)


def values(variables: dict[str, str], secret: str | None) -> dict[str, str]:
    """What a system template may use: the producer's variables (only the offered ones) and the secret."""
    out = {name: DEFAULTS.get(name, "") for name in OFFERED}
    out.update({k: v for k, v in variables.items() if k in OFFERED and v})
    if not out["link"] and variables.get("link_base") and secret:
        out["link"] = variables["link_base"] + quote(secret)
    out["secret"] = secret or ""
    return out


def render_system(name: str, channel: str, variables: dict[str, str], secret: str | None) -> Rendered:
    """Render a system template for one recipient."""
    template = load(name, channel)
    context = values(variables, secret)
    subject = render(template.subject, context) if template.subject is not None else None
    return Rendered(subject, render(template.body, context))
