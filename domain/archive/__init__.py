"""Hyperliquid's historical archives into the database (``hyperwatch archive import``).

Parsing is pure and lives below (``runtime.hyperliquid.archive``); this package decides
what a file becomes — trades, tracked wallets' fills, bars — and how an import resumes.
"""

from domain.archive.importer import (
    ArchiveFile,
    ArchiveImporter,
    FileResult,
    ImportSummary,
    Progress,
    discover,
    tracked_wallets,
)

__all__ = [
    "ArchiveFile",
    "ArchiveImporter",
    "FileResult",
    "ImportSummary",
    "Progress",
    "discover",
    "tracked_wallets",
]
