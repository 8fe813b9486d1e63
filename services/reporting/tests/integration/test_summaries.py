"""Call summaries from stream CALLS: dedup, late records, live calls, weighted totals."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from shared.dead_letters import DeadLetter, dead_letters

from .conftest import call, cdr, money, publish

pytestmark = pytest.mark.servers


async def summary(nc: NatsClient, customer_id: str, **query: Any) -> dict[str, Any]:
    reply = await call(nc, "reporting.query.summary", {"customer_id": customer_id, **query})
    assert "error" not in reply, reply
    return reply  # type: ignore[no-any-return]


async def wait_attempts(nc: NatsClient, customer_id: str, n: int, **query: Any) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        reply = await summary(nc, customer_id, **query)
        return reply if reply["totals"]["attempts"] >= n else None

    return await wait_for(done, timeout=10, message=f"{n} attempts for {customer_id}")


async def test_daily_rows_count_a_duplicate_once_and_put_a_late_record_in_its_day(nc: NatsClient) -> None:
    js = nc.jetstream()
    cid = str(uuid.uuid4())
    day1 = datetime(2030, 3, 1, 23, 59, tzinfo=UTC)
    day2 = datetime(2030, 3, 2, 0, 1, tzinfo=UTC)
    twice = cdr(cid, day1, charge="0.2000", cost="0.1500", pdd_ms=1000)
    await publish(js, f"calls.cdr.{cid}", twice)
    await publish(js, f"calls.cdr.{cid}", cdr(cid, day2, disposition="busy", pdd_ms=3000))
    await publish(js, f"calls.cdr.{cid}", twice)  # redelivered by the switch: no Nats-Msg-Id dedup
    await publish(js, f"calls.cdr.{cid}", cdr(cid, day2, duration_s=30, charge="0.0500", cost="0.0200",
                                              pdd_ms=None))
    # a record of day 1 that arrives after day 2's
    await publish(js, f"calls.cdr.{cid}", cdr(cid, day1 - timedelta(hours=5), duration_s=120,
                                              charge="0.4000", cost="0.1000", pdd_ms=2000))
    reply = await wait_attempts(nc, cid, 4, period="daily", **{"from": "2030-03-01", "to": "2030-03-02"})
    rows = {r["period_start"]: r for r in reply["rows"]}
    assert rows["2030-03-01"]["attempts"] == 2 and rows["2030-03-01"]["connected"] == 2
    assert money(rows["2030-03-01"]["charge"]) == Decimal("0.6")
    assert rows["2030-03-01"]["billed_duration_s"] == 180
    assert rows["2030-03-02"]["attempts"] == 2 and rows["2030-03-02"]["connected"] == 1
    assert money(rows["2030-03-02"]["asr"]) == Decimal("50.00")
    totals = reply["totals"]
    assert totals["attempts"] == 4 and totals["connected"] == 3
    assert money(totals["asr"]) == Decimal("75.00")
    assert money(totals["acd_s"]) == Decimal("80.00")  # (60 + 120 + 60) / 3
    assert money(totals["charge"]) == Decimal("0.65") and money(totals["cost"]) == Decimal("0.27")
    assert money(totals["profit"]) == Decimal("0.38")
    assert money(totals["profit_pct"]) == Decimal("58.46")
    assert money(totals["avg_pdd_ms"]) == Decimal("2000.00")  # (1000 + 3000 + 2000) / 3 with a PDD
    assert (reply["from"], reply["to"]) == ("2030-03-01", "2030-03-02")


async def test_a_record_counts_in_its_utc_hour_and_day_whatever_offset_it_was_sent_with(nc: NatsClient) -> None:
    js = nc.jetstream()
    cid = str(uuid.uuid4())
    india, eastern = timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-4))
    # 2030-03-01 23:59:59.999999 UTC, the last instant of the day, sent as India's morning
    await publish(js, f"calls.cdr.{cid}", cdr(cid, datetime(2030, 3, 2, 5, 29, 59, 999999, tzinfo=india)))
    # 2030-03-02 00:00 UTC, sent as the evening before in New York
    await publish(js, f"calls.cdr.{cid}", cdr(cid, datetime(2030, 3, 1, 20, 0, tzinfo=eastern)))
    # 2030-03-02 00:30 UTC: the same day and UTC hour as the previous one
    await publish(js, f"calls.cdr.{cid}", cdr(cid, datetime(2030, 3, 2, 6, 0, tzinfo=india)))
    reply = await wait_attempts(nc, cid, 3, period="daily", **{"from": "2030-03-01", "to": "2030-03-02"})
    assert {r["period_start"]: r["attempts"] for r in reply["rows"]} == {"2030-03-01": 1, "2030-03-02": 2}


async def test_weekly_and_monthly_rows_sum_the_days(nc: NatsClient) -> None:
    js = nc.jetstream()
    cid = str(uuid.uuid4())
    days = [datetime(2030, 4, d, 12, tzinfo=UTC) for d in (28, 29, 30)] + [datetime(2030, 5, 1, 12, tzinfo=UTC)]
    for moment in days:
        await publish(js, f"calls.cdr.{cid}", cdr(cid, moment))
    rng = {"from": "2030-04-01", "to": "2030-05-31"}
    weekly = await wait_attempts(nc, cid, 4, period="weekly", **rng)
    # 2030-04-28 is a Sunday: its ISO week starts on Monday 2030-04-22
    assert [(r["period_start"], r["attempts"]) for r in weekly["rows"]] == [("2030-04-22", 1), ("2030-04-29", 3)]
    monthly = await summary(nc, cid, period="monthly", **rng)
    assert [(r["period_start"], r["attempts"]) for r in monthly["rows"]] == [("2030-04-01", 3), ("2030-05-01", 1)]


async def test_live_counts_calls_in_progress_until_their_record_or_the_staleness_bound(nc: NatsClient) -> None:
    js = nc.jetstream()
    cid = str(uuid.uuid4())
    now = datetime.now(UTC)
    ended, ongoing, stale = (uuid.uuid4().hex for _ in range(3))
    for call_id, started in ((ended, now - timedelta(minutes=3)), (ongoing, now - timedelta(minutes=1)),
                             (stale, now - timedelta(hours=5))):
        await publish(js, f"calls.started.{cid}", {"call_id": call_id, "customer_id": cid,
                                                   "started_at": started.isoformat(), "cli": "+1", "destination": "+2"})
    await publish(js, f"calls.cdr.{cid}", cdr(cid, now - timedelta(minutes=3), call_id=ended))
    # a record that overtook its own start
    early = uuid.uuid4().hex
    await publish(js, f"calls.cdr.{cid}", cdr(cid, now - timedelta(minutes=2), call_id=early))
    await publish(js, f"calls.started.{cid}", {"call_id": early, "customer_id": cid,
                                               "started_at": (now - timedelta(minutes=2)).isoformat()})
    live = await wait_attempts(nc, cid, 2, period="live")
    assert live["channels_in_use"] == 1  # `ongoing`; `stale` is past the 4 h bound
    assert live["totals"]["attempts"] == 2 and len(live["rows"]) >= 1


async def test_a_malformed_record_is_dead_lettered_and_the_summaries_go_on(nc: NatsClient) -> None:
    js = nc.jetstream()
    cid = str(uuid.uuid4())
    await js.publish(f"calls.cdr.{cid}", b'{"call_id": "x"}')
    await js.publish(f"calls.cdr.{cid}", b"\xff\xfe")
    await publish(js, f"calls.cdr.{cid}", cdr(cid, datetime(2030, 6, 1, tzinfo=UTC)))
    reply = await wait_attempts(nc, cid, 1, period="daily", **{"from": "2030-06-01", "to": "2030-06-01"})
    assert reply["totals"]["attempts"] == 1

    async def parked() -> list[DeadLetter] | None:
        # the customer service's ledger reads CALLS too and parks them under its own consumer
        letters = [d for d in await dead_letters(js) if d.original_subject == f"calls.cdr.{cid}"
                   and not d.consumer.startswith("customer")]
        return letters if len(letters) >= 2 else None

    letters = await wait_for(parked, timeout=10, message="both malformed records dead-lettered")
    assert sorted(d.data for d in letters) == sorted([b'{"call_id": "x"}', b"\xff\xfe"])
    assert all(d.error and d.original_stream == "CALLS" for d in letters), letters


async def test_bad_queries_are_validation_errors(nc: NatsClient) -> None:
    cid = str(uuid.uuid4())
    for body in ({"customer_id": cid, "period": "yearly"}, {"customer_id": "nope"},
                 {"customer_id": cid, "from": "2030-02-01", "to": "2030-01-01"}):
        reply = await call(nc, "reporting.query.summary", body)
        assert reply["error"]["code"] == "validation_error", reply
    # without from/to the range ends today (UTC) and a monthly one starts on the first of a month
    before = datetime.now(UTC).date()
    default = await summary(nc, cid, period="monthly")
    after = datetime.now(UTC).date()
    assert default["to"] in (before.isoformat(), after.isoformat()), default
    start = date.fromisoformat(default["from"])
    assert start.day == 1 and start < date.fromisoformat(default["to"]), default
