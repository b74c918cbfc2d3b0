"""The client's web pages on the personal link: consent, status and withdrawal (``pages``).

Server-rendered from ``templates/`` with the style in ``static/``; no JavaScript, Dutch at B1
level.
"""

__all__: list[str] = []
