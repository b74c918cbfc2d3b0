"""Sign-in with OpenID Connect: the authorization code flow with PKCE (RFC 7636), Authlib's
OAuth 2.0 parameters, the ID token verified with joserfc against the provider's JWKS.

The provider is found by discovery (OpenID Connect Discovery 1.0 §4) and its metadata cached
for the process. Roles come from a configured claim, mapped to werkbak roles; a provider that
serves several organisations names the organisation in another claim, which must be this
agent's OIN. Signing out also ends the session at the provider when it offers an
``end_session_endpoint`` (OpenID Connect RP-Initiated Logout 1.0 §2).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from agent.settings import AgentSettings, WerkbakRole
from protocol.clock import Clock

__all__ = [
    "CALLBACK_PATH",
    "SIGNED_OUT_PATH",
    "Identity",
    "OidcClient",
    "SignInFailed",
    "allowed_roles",
]

CALLBACK_PATH = "/werkbak/inloggen/terug"
# Where the provider sends the person after signing out (its post_logout_redirect_uri).
SIGNED_OUT_PATH = "/werkbak/uitgelogd"
# Asymmetric algorithms only: the client secret never verifies an ID token.
_ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]
_TIMEOUT = 10.0


class SignInFailed(Exception):
    """The provider's answer cannot sign anyone in; the message says why (for the log)."""


@dataclass(frozen=True)
class Identity:
    """The person the provider vouches for, with the werkbak roles the claims give."""

    subject: str
    name: str
    roles: tuple[WerkbakRole, ...]


def allowed_roles(settings: AgentSettings) -> tuple[WerkbakRole, ...]:
    """The werkbak roles an agent of this kind has pages for."""
    if settings.role == "gemeente":
        return ("consulent", "operator")
    return ("planner", "operator")


class OidcClient:
    """The werkbak as an OpenID Connect relying party of one provider."""

    def __init__(self, settings: AgentSettings, *, http: httpx.AsyncClient, clock: Clock) -> None:
        werkbak = settings.werkbak
        if werkbak.oidc_issuer is None or werkbak.oidc_client_id is None:
            raise ValueError("no OpenID Connect provider configured")
        self._settings = settings
        self._issuer = werkbak.oidc_issuer.rstrip("/")
        self._client_id = werkbak.oidc_client_id
        self._http = http
        self._clock = clock
        self._metadata: dict[str, Any] | None = None
        base = (werkbak.base_url or settings.public_base_url).rstrip("/")
        self.redirect_uri = base + CALLBACK_PATH
        self.post_logout_redirect_uri = base + SIGNED_OUT_PATH

    async def _provider(self) -> dict[str, Any]:
        if self._metadata is None:
            document = await self._get_json(f"{self._issuer}/.well-known/openid-configuration")
            if document.get("issuer", "").rstrip("/") != self._issuer:
                raise SignInFailed("the discovery document names another issuer")
            self._metadata = document
        return self._metadata

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            answer = await self._http.get(url, timeout=_TIMEOUT)
            answer.raise_for_status()
            document = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInFailed(f"provider unreachable or invalid answer: {exc}") from exc
        if not isinstance(document, dict):
            raise SignInFailed("the provider's answer is not a JSON object")
        return document

    async def authorization_url(self) -> tuple[str, dict[str, str]]:
        """Where to send the person, and what the pending session keeps until they return."""
        provider = await self._provider()
        kept = {
            "state": secrets.token_urlsafe(32),
            "nonce": secrets.token_urlsafe(32),
            "verifier": secrets.token_urlsafe(48),
        }
        url = add_params_to_uri(
            provider["authorization_endpoint"],
            [
                ("response_type", "code"),
                ("client_id", self._client_id),
                ("redirect_uri", self.redirect_uri),
                ("scope", self._settings.werkbak.oidc_scopes),
                ("state", kept["state"]),
                ("nonce", kept["nonce"]),
                ("code_challenge", create_s256_code_challenge(kept["verifier"])),
                ("code_challenge_method", "S256"),
            ],
        )
        return url, kept

    async def identity(self, code: str, kept: dict[str, str]) -> Identity:
        """Exchange the code (with the PKCE verifier) and verify the ID token it brings."""
        provider = await self._provider()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": kept["verifier"],
        }
        secret = self._settings.werkbak.oidc_client_secret
        if not secret:
            # A public client names itself in the body; a confidential one in the Basic header.
            form["client_id"] = self._client_id
        try:
            if secret:
                basic = httpx.BasicAuth(self._client_id, secret)
                answer = await self._http.post(
                    provider["token_endpoint"], data=form, auth=basic, timeout=_TIMEOUT
                )
            else:
                answer = await self._http.post(
                    provider["token_endpoint"], data=form, timeout=_TIMEOUT
                )
            answer.raise_for_status()
            tokens = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInFailed(f"token request refused: {exc}") from exc
        id_token = tokens.get("id_token") if isinstance(tokens, dict) else None
        if not isinstance(id_token, str):
            raise SignInFailed("the token answer holds no ID token")
        claims = await self._verified_claims(id_token, kept["nonce"])
        return self._identity(claims)

    async def end_session_url(self, state: str) -> str | None:
        """Where to send the person to sign out at the provider; None when it offers no way.

        RP-Initiated Logout 1.0 §2 with ``client_id`` instead of ``id_token_hint``: no token in a
        URL and none kept with the session (the provider may ask the person to confirm).
        ``post_logout_redirect_uri`` brings the person back to the werkbak with ``state``.
        """
        endpoint = (await self._provider()).get("end_session_endpoint")
        if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
            return None
        url: str = add_params_to_uri(
            endpoint,
            [
                ("client_id", self._client_id),
                ("post_logout_redirect_uri", self.post_logout_redirect_uri),
                ("state", state),
            ],
        )
        return url

    async def _verified_claims(self, id_token: str, nonce: str) -> dict[str, Any]:
        provider = await self._provider()
        jwks: Any = await self._get_json(provider["jwks_uri"])
        try:
            keys = KeySet.import_key_set(jwks)
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise SignInFailed(f"the provider's keys cannot be read: {exc}") from exc
        try:
            token = jwt.decode(id_token, keys, algorithms=_ALGORITHMS)
            jwt.JWTClaimsRegistry(
                now=lambda: int(self._clock.now().timestamp()),
                leeway=60,
                iss={"essential": True, "value": self._issuer},
                aud={"essential": True, "value": self._client_id},
                nonce={"essential": True, "value": nonce},
                sub={"essential": True},
                exp={"essential": True},
            ).validate(token.claims)
        except (JoseError, ValueError) as exc:
            raise SignInFailed(f"ID token refused: {exc}") from exc
        return dict(token.claims)

    def _identity(self, claims: dict[str, Any]) -> Identity:
        werkbak = self._settings.werkbak
        organisation = werkbak.organisation_claim
        if organisation is not None and claims.get(organisation) != self._settings.oin:
            raise SignInFailed("the person belongs to another organisation")
        values = claims.get(werkbak.roles_claim, [])
        if isinstance(values, str):
            values = values.split()
        mapped = {
            werkbak.role_values[v]
            for v in values
            if isinstance(v, str) and v in werkbak.role_values
        }
        roles = tuple(role for role in allowed_roles(self._settings) if role in mapped)
        name = claims.get(werkbak.name_claim)
        return Identity(
            subject=str(claims["sub"]),
            name=name if isinstance(name, str) and name else str(claims["sub"]),
            roles=roles,
        )
