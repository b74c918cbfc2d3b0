"""The werkbak: server-rendered pages for the organisation's own people, under ``/werkbak``.

Consulenten (gemeente), planners (supplier) and operators sign in with OpenID Connect
(``sign_in``; in development also without a provider), keep a server-side session that expires
(``sessions``) and act through the same service functions the JSON API calls (``consulent``,
``planner``, ``operator``). No JavaScript; every form carries the session's CSRF token.
"""

__all__: list[str] = []
