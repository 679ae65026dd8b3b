"""The repository contract and a small generic CRUD base.

Contract, for every repository:
- It works inside a caller-owned SQLAlchemy ``Session``; it flushes but never commits, so a
  task can put several writes (an alert's ``armed`` flip and its outbox row) in one
  transaction.
- Every write method's docstring names its idempotency key: what makes a repeat harmless.
- Bulk writes take a whole batch and return how many rows were new.
- Filters name columns; values always travel as bind parameters, never formatted into SQL.
  An unknown filter column raises ``ValueError`` (a typo must not mean "no filter").
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, delete, func, inspect, select, update
from sqlalchemy.orm import Session

from models.base import Base

M = TypeVar("M", bound=Base)

MAX_PAGE = 1000


class Repository(Generic[M]):
    model: type[M]

    def __init__(self, session: Session) -> None:
        self.session = session

    # --- reads ---------------------------------------------------------------------------
    def get(self, ident: Any) -> M | None:
        return self.session.get(self.model, ident)

    def list(
        self,
        filters: Mapping[str, Any] | None = None,
        *,
        order_by: str | Sequence[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[M]:
        """Rows matching every filter (equality; a list/tuple value means IN), paginated.

        ``order_by`` names columns; a leading ``-`` sorts descending. Defaults to the key.
        """
        if not 0 < limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        if offset < 0:
            raise ValueError("offset must be >= 0")
        stmt = self._filtered(select(self.model), filters)
        stmt = stmt.order_by(*self._ordering(order_by)).limit(limit).offset(offset)
        return list(self.session.scalars(stmt))

    def page(
        self,
        filters: Mapping[str, Any] | None = None,
        *,
        after: int | None = None,
        limit: int = 100,
    ) -> builtins.list[M]:
        """A keyset page: rows matching ``filters`` whose integer key ``id`` is above
        ``after``, by ``id``, at most ``limit`` (an API cursor is the last id of a page:
        rows added or removed meanwhile never shift the next page)."""
        if not 0 < limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        key = self._columns()["id"]
        stmt = self._filtered(select(self.model), filters)
        if after is not None:
            stmt = stmt.where(key > after)
        return list(self.session.scalars(stmt.order_by(key.asc()).limit(limit)))

    def count(self, filters: Mapping[str, Any] | None = None) -> int:
        stmt = self._filtered(select(func.count()).select_from(self.model), filters)
        return int(self.session.scalar(stmt) or 0)

    # --- writes --------------------------------------------------------------------------
    def add(self, obj: M) -> M:
        """Insert one row. Not idempotent by itself: unique constraints of the table decide."""
        self.session.add(obj)
        self.session.flush()
        return obj

    def update(self, ident: Any, **values: Any) -> M | None:
        """Set columns on the row with this key; idempotent (same values, same row)."""
        self._check_columns(values)
        obj = self.get(ident)
        if obj is None:
            return None
        for name, value in values.items():
            setattr(obj, name, value)
        self.session.flush()
        return obj

    def update_where(self, filters: Mapping[str, Any], **values: Any) -> int:
        """Set columns on every matching row; returns how many matched."""
        self._check_columns(values)
        stmt = self._filtered(update(self.model), filters).values(**values)
        result = self.session.execute(stmt.execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)

    def delete(self, ident: Any) -> bool:
        """Delete by key; idempotent (deleting a missing row returns False)."""
        obj = self.get(ident)
        if obj is None:
            return False
        self.session.delete(obj)
        self.session.flush()
        return True

    def delete_where(self, filters: Mapping[str, Any]) -> int:
        if not filters:
            raise ValueError("delete_where needs at least one filter")
        stmt = self._filtered(delete(self.model), filters)
        result = self.session.execute(stmt.execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)

    # --- helpers -------------------------------------------------------------------------
    def _columns(self) -> dict[str, Any]:
        return {c.key: c for c in inspect(self.model).columns}

    def _check_columns(self, names: Mapping[str, Any] | Sequence[str]) -> None:
        known = self._columns()
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"{self.model.__tablename__} has no column {unknown[0]!r}")

    def _conditions(self, filters: Mapping[str, Any] | None) -> builtins.list[ColumnElement[bool]]:
        if not filters:
            return []
        self._check_columns(filters)
        columns = self._columns()
        conditions = []
        for name, value in filters.items():
            column = columns[name]
            if isinstance(value, list | tuple | set | frozenset):
                conditions.append(column.in_(list(value)))
            elif value is None:
                conditions.append(column.is_(None))
            else:
                conditions.append(column == value)
        return conditions

    def _filtered(self, stmt: Any, filters: Mapping[str, Any] | None) -> Any:
        conditions = self._conditions(filters)
        return stmt.where(*conditions) if conditions else stmt

    def _ordering(self, order_by: str | Sequence[str] | None) -> builtins.list[Any]:
        if order_by is None:
            return list(inspect(self.model).primary_key)
        names = [order_by] if isinstance(order_by, str) else list(order_by)
        self._check_columns([n.lstrip("-") for n in names])
        columns = self._columns()
        return [columns[n[1:]].desc() if n.startswith("-") else columns[n].asc() for n in names]
