"""hyperwatch's data model: SQLAlchemy 2.0 models, engine, repositories, migrations.

Importing this package registers every model on ``Base.metadata`` (Alembic and the tests
rely on that).
"""

from models.alert import Alert
from models.api_key import ApiKey
from models.archive_import import ArchiveImport
from models.asset_context import AssetContextSnapshot
from models.base import Base
from models.cold_export import ColdExport
from models.dead_letter import DeadLetter
from models.fill import UserFill
from models.gap import Gap
from models.health_metric import HealthMetric
from models.notification import Notification
from models.notification_channel import NotificationChannel
from models.position import PositionSnapshot
from models.rest_history import FundingRate, RestBar
from models.session import Session
from models.tracked_wallet import TrackedWallet
from models.trade import TradeBar, TradeSnapshot
from models.user import User
from models.wallet import Wallet

__all__ = [
    "Alert",
    "ApiKey",
    "ArchiveImport",
    "AssetContextSnapshot",
    "Base",
    "ColdExport",
    "DeadLetter",
    "FundingRate",
    "Gap",
    "HealthMetric",
    "Notification",
    "NotificationChannel",
    "PositionSnapshot",
    "RestBar",
    "Session",
    "TrackedWallet",
    "TradeBar",
    "TradeSnapshot",
    "User",
    "UserFill",
    "Wallet",
]

# Tables range-partitioned by day on their `time` column (ms) on PostgreSQL.
PARTITIONED_TABLES = ("trade_snapshots", "asset_context_snapshots", "position_snapshots")
