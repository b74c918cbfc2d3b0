"""``python -m agent.storage._migrations revision -m MESSAGE`` (or ``check``): see operations.md."""

import sys

from agent.storage._migrations import MIGRATIONS
from registry.server_kit.migrations import developer_command

sys.exit(developer_command(MIGRATIONS))
