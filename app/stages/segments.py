"""Per-partition processing of the views-by-user repartition topic: exact unique users
per (ISO week, segment). Each user is owned by one partition, so shares add up exactly."""

from __future__ import annotations

from app.stages import by_user
from app.engine.processor import Processor
from app.engine.store import PartitionStore
from app.engine.transactions import Outbox
from app.models.dead_letter import DeadLetterRoute
from app.tables.keys import meta_key
from app.readmodels.partials import USERS, partial_key, users_partial
from app.tables.segment_users import SegmentWeeklyUsers
from app.windows import WEEK_MS

LATEST_WEEK_KEY = meta_key("latest-week")


class SegmentUsersProcessor(Processor):
    def __init__(
        self,
        partition: int,
        store: PartitionStore,
        outbox: Outbox,
        partials_topic: str,
        retention_weeks: int,
        publish_interval_s: float,
        dead_letters: DeadLetterRoute,
    ) -> None:
        """``publish_interval_s``: how often its changed shares are published.
        ``dead_letters``: where a record that makes it fail goes (written by the views
        stage only, so it is a view's: the views' dead-letter topic)."""
        super().__init__(partition, store, outbox, dead_letters)
        self._partials_topic = partials_topic
        self._retention_ms = retention_weeks * WEEK_MS
        self.users = SegmentWeeklyUsers(store)
        self.latest_week = self.applied.load(LATEST_WEEK_KEY, 0)
        self._unpublished: set[tuple[int, str]] = set(self.users.segment_weeks())
        self.schedule(publish_interval_s, self._publish)

    def step(self, offset: int, key: bytes | None, value: bytes | None, now_ms: int) -> None:
        entries = by_user.decode(key, value)
        if entries is None:  # written only by the views stage; never expected
            self.outcomes["malformed"] += 1
            return
        for user_id, week, segment in entries:
            if week < self.latest_week - self._retention_ms:
                continue
            if self.users.add_user(week, segment, user_id):
                self._unpublished.add((week, segment))
            if week > self.latest_week:
                self.latest_week = week
                self._expire()

    def _expire(self) -> None:
        for week, segment in self.users.expire_before(self.latest_week - self._retention_ms):
            self._unpublished.discard((week, segment))
            self.outbox.add(
                self._partials_topic, 0, partial_key(USERS, self.partition, week, segment), None
            )

    def _publish(self) -> None:
        for week, segment in sorted(self._unpublished):
            self.outbox.add(
                self._partials_topic,
                0,
                partial_key(USERS, self.partition, week, segment),
                users_partial(self.users.unique_users(week, segment)),
            )
        self._unpublished.clear()

    def positions(self) -> dict[bytes, int]:
        return {LATEST_WEEK_KEY: self.latest_week}
