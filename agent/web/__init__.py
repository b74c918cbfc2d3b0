"""The client's web pages on the personal link: consent, status and withdrawal (``pages``);
the werkbak for the organisation's own consulenten, planners and operators (``werkbak``).

Server-rendered from ``templates/`` with the style in ``static/``; no JavaScript, Dutch at B1
level.
"""

__all__: list[str] = []
