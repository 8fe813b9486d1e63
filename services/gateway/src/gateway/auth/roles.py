"""Roles and what each may do, as data."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """The role of an operator API token."""

    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"
    BILLING = "billing"


class Permission(StrEnum):
    """One thing a route needs."""

    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"
    SETTINGS_READ = "settings:read"
    SETTINGS_WRITE = "settings:write"
    TOKENS_MANAGE = "tokens:manage"
    PAYMENTS = "payments:manage"  # record, change and list payments; the PayPal IPN log
    ALERTS = "alerts:manage"  # alert rules and their firings
    PERSONAL_DATA_ERASE = "personal-data:erase"  # admin only (product.md section 15)


_READ = frozenset({Permission.CUSTOMERS_READ, Permission.SETTINGS_READ})

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: _READ,
    Role.BILLING: _READ | {Permission.PAYMENTS},
    Role.OPERATOR: _READ | {Permission.CUSTOMERS_WRITE, Permission.ALERTS},
    Role.ADMIN: frozenset(Permission),
}


def roles_with(permission: Permission) -> list[Role]:
    """The roles that hold a permission, for error messages and docs."""
    return [role for role, perms in ROLE_PERMISSIONS.items() if permission in perms]
