"""API keys (``models.api_key``): issued, found by prefix, touched, revoked."""

from __future__ import annotations

import builtins
import datetime as dt

from sqlalchemy import or_, select, update

from models.api_key import ApiKey
from models.repositories.base import Repository


class ApiKeyRepository(Repository[ApiKey]):
    model = ApiKey

    def issue(self, user_id: int, prefix: str, digest: str, name: str = "") -> ApiKey:
        """Store a new key's prefix and digest; idempotency key: ``prefix`` (unique: a
        second issue with the same prefix raises IntegrityError; prefixes are random)."""
        return self.add(ApiKey(user_id=user_id, prefix=prefix, digest=digest, name=name))

    def by_prefix(self, prefix: str) -> ApiKey | None:
        return self.session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).first()

    def of_user(self, user_id: int) -> builtins.list[ApiKey]:
        """Every key of ``user_id``, revoked ones included, oldest first."""
        stmt = select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.id)
        return list(self.session.scalars(stmt))

    def revoke(self, key_id: int, now: dt.datetime) -> bool:
        """Revoke; idempotent (a revoked key keeps its first revocation time). True when
        this call revoked it."""
        stmt = (
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        result = self.session.execute(stmt.execution_options(synchronize_session=False))
        return bool(getattr(result, "rowcount", 0))

    def touch(self, key_id: int, now: dt.datetime, older_than: dt.datetime) -> bool:
        """Set ``last_used_at`` to ``now`` unless it is already at or after ``older_than``
        (so a busy key costs one write a minute, not one per request); idempotent."""
        stmt = (
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < older_than),
            )
            .values(last_used_at=now)
        )
        result = self.session.execute(stmt.execution_options(synchronize_session=False))
        return bool(getattr(result, "rowcount", 0))
