"""One repository per aggregate; see ``base.py`` for the contract they all keep."""

from models.repositories.alerts import AlertRepository
from models.repositories.api_keys import ApiKeyRepository
from models.repositories.archive_imports import ArchiveImportRepository
from models.repositories.asset_contexts import AssetContextRepository
from models.repositories.bars import BarRepository
from models.repositories.base import Repository
from models.repositories.channels import ChannelRepository
from models.repositories.dead_letters import DeadLetterRepository
from models.repositories.fills import FillRepository
from models.repositories.gaps import GapRepository, GapSummary, LedgerRow
from models.repositories.health_metrics import HealthMetricRepository
from models.repositories.notifications import NotificationRepository
from models.repositories.polling import PollingRepository
from models.repositories.positions import PositionRepository
from models.repositories.rest_history import RestHistoryRepository
from models.repositories.sessions import SessionRepository
from models.repositories.snapshots import BulkResult
from models.repositories.trades import TradeRepository
from models.repositories.users import UserRepository
from models.repositories.wallets import TrackedWalletRepository

__all__ = [
    "AlertRepository",
    "ApiKeyRepository",
    "ArchiveImportRepository",
    "AssetContextRepository",
    "BarRepository",
    "BulkResult",
    "ChannelRepository",
    "DeadLetterRepository",
    "FillRepository",
    "GapRepository",
    "GapSummary",
    "HealthMetricRepository",
    "LedgerRow",
    "NotificationRepository",
    "PollingRepository",
    "PositionRepository",
    "Repository",
    "RestHistoryRepository",
    "SessionRepository",
    "TrackedWalletRepository",
    "TradeRepository",
    "UserRepository",
]
