"""Aggregate states kept in memory between commands; the database's version check keeps them honest."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import replace

from shared.eventstore import EventStore

from customer.domain.evolve import fold
from customer.domain.state import CustomerState
from customer.projections.dial_views import DialViews, dial_inputs


class StateCache:
    """A bounded LRU of customer states; a stale entry only costs a retry (version conflict)."""

    def __init__(self, store: EventStore, max_entries: int = 50_000) -> None:
        self.store = store
        self.max_entries = max_entries
        self._states: OrderedDict[str, CustomerState | None] = OrderedDict()

    def get(self, stream_id: str) -> CustomerState | None:
        """A cached state (call `ensure` first)."""
        self._states.move_to_end(stream_id)
        return self._states[stream_id]

    async def ensure(self, stream_ids: Iterable[str]) -> None:
        """Load (by folding their events) the states not in memory yet, in one query."""
        missing = [s for s in set(stream_ids) if s not in self._states]
        if not missing:
            return
        loaded = await self.store.load(missing)
        for stream_id, events in loaded.items():
            self.put(stream_id, fold(events))

    def put(self, stream_id: str, state: CustomerState | None) -> None:
        """Remember a state after a successful append."""
        self._states[stream_id] = state
        self._states.move_to_end(stream_id)
        while len(self._states) > self.max_entries:
            self._states.popitem(last=False)

    def forget(self, stream_ids: Iterable[str]) -> None:
        """Drop states that may be stale."""
        for stream_id in stream_ids:
            self._states.pop(stream_id, None)


class StateCacheWithDialViews(StateCache):
    """The command core's state cache, also giving every committed (or loaded) state to the dial views."""

    def __init__(self, store: EventStore, views: DialViews, max_entries: int = 50_000) -> None:
        super().__init__(store, max_entries)
        self.views = views

    def put(self, stream_id: str, state: CustomerState | None) -> None:
        """Remember the state, and update the customer's dial view.

        A change that leaves the view's inputs as they were (notes, name, tags...) moves the
        view's version on instead of building it again.
        """
        previous = self._states.get(stream_id)
        super().put(stream_id, state)
        if state is None:
            return
        view = self.views.by_customer.get(stream_id)
        if (
            previous is not None and view is not None and view.version == previous.version
            and state.version > previous.version and dial_inputs(previous) == dial_inputs(state)
        ):
            self.views.put(stream_id, replace(view, version=state.version))
            self.views.apply_credit(stream_id, state)
        else:
            self.views.apply_state(stream_id, state)
