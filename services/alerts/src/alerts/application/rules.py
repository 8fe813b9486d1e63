"""Rules: stored in `rules`, changed by commands, cached by every evaluator (reloaded on a new revision)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg
import structlog
from shared.contracts.alerts import AlertRule, AlertRuleIn, CreateAlert, UpdateAlert
from shared.contracts.customer import CommandMeta
from shared.errors import ErrorCode, ErrorDetail, ServiceError
from shared.ids import new_id

log = structlog.get_logger(__name__)
COLUMNS = "id, body, version, created_at, updated_at"


def rule_of(row: asyncpg.Record) -> AlertRule:
    """A stored row as the API's rule."""
    body = json.loads(row["body"]) if isinstance(row["body"], str) else row["body"]
    return AlertRule.model_validate({**body, "id": row["id"], "version": row["version"],
                                     "created_at": row["created_at"], "updated_at": row["updated_at"]})


def _actor(meta: CommandMeta) -> str:
    return meta.actor.model_dump_json()


def _body(rule: AlertRuleIn) -> str:
    return rule.model_dump_json()


def _not_found(alert_id: object) -> ServiceError:
    return ServiceError(ErrorCode.NOT_FOUND, f"no alert rule {alert_id}")


def _name_taken(name: str) -> ServiceError:
    return ServiceError(ErrorCode.NAME_TAKEN, f"an alert rule named {name!r} exists",
                        [ErrorDetail(field="name", message="already taken", type="name_taken")])


class RuleStore:
    """Commands and queries on the rules table."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(self, cmd: CreateAlert) -> AlertRule:
        """A new rule (`name_taken` if its name is used)."""
        try:
            row = await self.pool.fetchrow(
                f"INSERT INTO rules (id, name, body, created_by, updated_by)"
                f" VALUES ($1, $2, $3::jsonb, $4::jsonb, $4::jsonb) RETURNING {COLUMNS}",
                new_id(), cmd.rule.name, _body(cmd.rule), _actor(cmd.meta))
        except asyncpg.UniqueViolationError:
            raise _name_taken(cmd.rule.name) from None
        log.info("alert_rule_created", alert_id=str(row["id"]), name=cmd.rule.name, area=cmd.rule.area)
        return rule_of(row)

    async def update(self, cmd: UpdateAlert) -> AlertRule:
        """Replace a rule's body; a new version (rule states of the old version count as armed)."""
        try:
            row = await self.pool.fetchrow(
                f"UPDATE rules SET name = $2, body = $3::jsonb, version = version + 1, updated_at = now(),"
                f" revision = nextval('rule_revisions'), updated_by = $4::jsonb"
                f" WHERE id = $1 AND NOT deleted AND ($5::int IS NULL OR version = $5) RETURNING {COLUMNS}",
                cmd.alert_id, cmd.rule.name, _body(cmd.rule), _actor(cmd.meta), cmd.expected_version)
        except asyncpg.UniqueViolationError:
            raise _name_taken(cmd.rule.name) from None
        if row is None:
            current = await self.get(cmd.alert_id)  # raises not_found
            raise ServiceError(ErrorCode.VERSION_MISMATCH,
                               f"the rule is at version {current.version}, not {cmd.expected_version}")
        log.info("alert_rule_updated", alert_id=str(cmd.alert_id), version=row["version"])
        return rule_of(row)

    async def set_state(self, alert_id: Any, state: str, meta: CommandMeta) -> AlertRule:
        """Pause or resume (the same state again is no change)."""
        row = await self.pool.fetchrow(
            f"UPDATE rules SET body = jsonb_set(body, '{{state}}', to_jsonb($2::text)),"
            f" updated_at = now(), revision = nextval('rule_revisions'), updated_by = $3::jsonb"
            f" WHERE id = $1 AND NOT deleted RETURNING {COLUMNS}", alert_id, state, _actor(meta))
        if row is None:
            raise _not_found(alert_id)
        log.info("alert_rule_state", alert_id=str(alert_id), state=state)
        return rule_of(row)

    async def delete(self, alert_id: Any, meta: CommandMeta) -> None:
        """Delete a rule (its firings stay)."""
        done = await self.pool.fetchval(
            "UPDATE rules SET deleted = true, updated_at = now(), revision = nextval('rule_revisions'),"
            " updated_by = $2::jsonb WHERE id = $1 AND NOT deleted RETURNING id", alert_id, _actor(meta))
        if done is None:
            raise _not_found(alert_id)
        log.info("alert_rule_deleted", alert_id=str(alert_id))

    async def get(self, alert_id: Any) -> AlertRule:
        """One rule."""
        row = await self.pool.fetchrow(f"SELECT {COLUMNS} FROM rules WHERE id = $1 AND NOT deleted", alert_id)
        if row is None:
            raise _not_found(alert_id)
        return rule_of(row)

    async def list(self) -> list[AlertRule]:
        """Every rule, by name."""
        rows = await self.pool.fetch(f"SELECT {COLUMNS} FROM rules WHERE NOT deleted ORDER BY lower(name)")
        return [rule_of(r) for r in rows]


class RuleBook:
    """The ready rules in memory; `refresh` reloads them when the table's revision moved."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.revision = -1
        self._for: dict[tuple[str, tuple[str, ...]], list[AlertRule]] = {}
        self.use([])
        self.loaded_at: datetime | None = None

    async def refresh(self, conn: asyncpg.Connection | asyncpg.Pool | None = None) -> bool:
        """Reload if anything changed; True when it did."""
        db = conn or self.pool
        revision = await db.fetchval("SELECT coalesce(max(revision), 0) FROM rules")
        if revision == self.revision:
            return False
        rows = await db.fetch(f"SELECT {COLUMNS} FROM rules WHERE NOT deleted")
        self.use([r for r in map(rule_of, rows) if r.state == "ready"])
        self.revision = revision
        log.info("alert_rules_loaded", ready=len(self.rules), revision=revision)
        return True

    def use(self, rules: list[AlertRule]) -> None:
        """Index the ready rules by scope: all, per customer, per tag."""
        self.rules = rules
        self._all = [r for r in rules if r.scope.all]
        self._by_customer: dict[str, list[AlertRule]] = {}
        self._by_tag: dict[str, list[AlertRule]] = {}
        for r in rules:
            if r.scope.customer_id is not None:
                self._by_customer.setdefault(str(r.scope.customer_id), []).append(r)
            elif r.scope.tag is not None:
                self._by_tag.setdefault(r.scope.tag, []).append(r)
        self._for.clear()

    def for_customer(self, customer_id: str, tags: tuple[str, ...]) -> list[AlertRule]:
        """The ready rules that watch this customer (its own, its tags', everyone's)."""
        key = (customer_id, tags)
        found = self._for.get(key)
        if found is None:
            if len(self._for) > 100_000:
                self._for.clear()
            found = list(self._all)
            found += self._by_customer.get(customer_id, ())
            for tag in tags:
                found += [r for r in self._by_tag.get(tag, ()) if r not in found]
            self._for[key] = found
        return found
