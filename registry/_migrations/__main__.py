"""``python -m registry._migrations revision -m MESSAGE`` (or ``check``): see docs/operations.md."""

import sys

from registry._migrations import MIGRATIONS
from registry.server_kit.migrations import developer_command

sys.exit(developer_command(MIGRATIONS))
