"""How an emulator finds the upstream secret in a request, in its provider's own scheme.

    secret = ctx.authenticate(request, BEARER)                 # Authorization: Bearer S
    secret = ctx.authenticate(request, TOKEN)                  # Authorization: Token S (Vidu)
    secret = ctx.authenticate(request, header_key("x-api-key"))  # the header holds S itself

A scheme may carry a `verify` step that turns the credential into the secret it proves (a JWT
signed with the secret, `id.secret` pairs); `hs256_claims` checks the HS256 JWTs that GLM and
Kling use. `EmulatorContext.authenticate` then checks the secret against the accepted ones.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from starlette.requests import Request

# Turns the raw credential into the secret it proves, or None when it proves none.
Verifier = Callable[[str], str | None]


def _same(credential: str) -> str | None:
    return credential


@dataclass(frozen=True, slots=True)
class AuthScheme:
    scheme: str | None  # "Bearer", "Token", ...: case-insensitive; None: the header's value is the credential
    header: str = "authorization"
    verify: Verifier = _same
    description: str = ""  # what the 401 message asks for; derived when empty

    def credential(self, request: Request) -> str | None:
        """The credential as sent (before `verify`), or None when the header or scheme is wrong."""
        raw = request.headers.get(self.header)
        if raw is None:
            return None
        if self.scheme is None:
            value = raw.strip()
        else:
            scheme, _, value = raw.strip().partition(" ")
            if scheme.lower() != self.scheme.lower():
                return None
            value = value.strip()
        return value or None

    def secret(self, request: Request) -> str | None:
        credential = self.credential(request)
        return None if credential is None else self.verify(credential)

    def expected(self) -> str:
        if self.description:
            return self.description
        if self.scheme is None:
            return f"{self.header}: <key>"
        return f"{self.header.title()}: {self.scheme} <key>"

    def verified_by(self, verify: Verifier, description: str = "") -> AuthScheme:
        return AuthScheme(self.scheme, self.header, verify, description or self.description)


BEARER = AuthScheme("Bearer")
TOKEN = AuthScheme("Token")


def header_key(name: str) -> AuthScheme:
    """A header whose whole value is the secret (`x-api-key: S`)."""
    return AuthScheme(None, name.lower())


def hs256_claims(token: str, key: str, *, leeway: float = 5.0) -> dict[str, Any] | None:
    """The claims of an HS256 JWT signed with `key`, or None when the signature, `exp` or `nbf`
    does not hold. Providers' keys may be short (and `sandbox-secret` is): no key-length warning."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=["HS256"], leeway=leeway, options={"verify_aud": False}
            )
    except jwt.PyJWTError:
        return None
    return claims


def unverified_claims(token: str) -> dict[str, Any] | None:
    """A JWT's claims read without checking its signature: to learn which key (`iss`,
    `api_key`) should have signed it before `hs256_claims` checks that it did."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return claims
