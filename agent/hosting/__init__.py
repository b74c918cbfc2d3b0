"""One agent process for several organisations: a regional service, or a vendor that hosts many.

Each hosted organisation is a whole agent (:class:`agent.service.AgentService`) with its own
settings file: its OIN, keys, tokens, register, tasks, werkbak users and pages, and its outgoing
HTTP client with its own client certificate. What they share is the process and its event loop, the
database (on PostgreSQL one database and one connection pool, with a schema per organisation) and
one inbound endpoint that routes each message by the receiver it names (docs/hosting.md).
"""

from agent.hosting.app import HostApp, create_host_app
from agent.hosting.settings import Hosting, HostingProblem, HostingSettings, load_hosting

__all__ = [
    "HostApp",
    "Hosting",
    "HostingProblem",
    "HostingSettings",
    "create_host_app",
    "load_hosting",
]
