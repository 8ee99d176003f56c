"""The security token PD236 §2.8 asks for: a JWT that also identifies its holder.

Qoima signs each request's token itself with the operator's key (RS256): PD236 §10.2 has the
operator hand the public half of its key to the service, which then knows who sent what. The
private key is read from a file given by reference (QOIMA_PD236_PRIVATE_KEY_FILE; the local
stack generates one under its secrets), never from configuration text. Each token names its
issuer (the operator), the service as audience, the access mode (`logging`, PD236 §7.4), a
short lifetime and a unique `jti`, which the testing act lists.

`verify` is the service's side of the same contract; the local stand-in uses it.
"""
from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ALGORITHM = "RS256"
MODE = "logging"   # PD236 §7.4: the protocol-only mode of the cases of Article 9


class TokenError(RuntimeError):
    """The token cannot be made: the message says which file and how to fix it."""


class TokenRefused(ValueError):
    """A token the service refuses; `reason` is one word (expired, signature, audience, ...)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Token:
    value: str
    jti: str
    issued: int
    expires: int


def _public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def generate_key(private: Path, public: Path) -> None:
    """A new RSA key pair (PEM), the private half readable by its owner only."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private.parent.mkdir(parents=True, exist_ok=True)
    private.touch(mode=0o600)
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(_public_pem(key))


def public_half(private: Path, public: Path) -> None:
    """The public key of an existing private key, written beside it for a verifier to read."""
    public.parent.mkdir(parents=True, exist_ok=True)
    public.write_bytes(_public_pem(serialization.load_pem_private_key(private.read_bytes(), password=None)))


def key_id(public_pem: bytes) -> str:
    """The key's id in the token header: the first 16 hex digits of its public key's SHA-256."""
    public = serialization.load_pem_public_key(public_pem)
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


class TokenIssuer:
    def __init__(self, key_file: Path, issuer: str, audience: str, ttl_s: int) -> None:
        if not key_file.is_file():
            raise TokenError(f"PD236 signing key {key_file} does not exist; set QOIMA_PD236_PRIVATE_KEY_FILE to the "
                             "operator's private key (PEM), or run `qoima up`, which makes one for the local stack")
        try:
            self._key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise TokenError(f"PD236 signing key {key_file} is not an unencrypted PEM private key "
                             f"({type(exc).__name__}); export it with `openssl pkey -in KEY -out {key_file}`") from None
        if not isinstance(self._key, rsa.RSAPrivateKey):
            raise TokenError(f"PD236 signing key {key_file} is not an RSA key; {ALGORITHM} needs one")
        self.kid = key_id(_public_pem(self._key))
        self.issuer, self.audience, self.ttl_s = issuer, audience, ttl_s

    def token(self, subject: str, now: float | None = None, ttl_s: int | None = None) -> Token:
        """A fresh token for one request on behalf of `subject` (the information system read)."""
        issued = int(time.time() if now is None else now)
        expires = issued + (self.ttl_s if ttl_s is None else ttl_s)
        jti = str(uuid.uuid4())
        claims = {"iss": self.issuer, "sub": subject, "aud": self.audience, "iat": issued, "nbf": issued - 5,
                  "exp": expires, "jti": jti, "mode": MODE}
        return Token(jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid}), jti, issued,
                     expires)


def verify(token: str, public_pem: bytes, audience: str, leeway_s: int = 5) -> dict:
    """The claims of a valid token; TokenRefused naming why not."""
    try:
        return jwt.decode(token, public_pem, algorithms=[ALGORITHM], audience=audience, leeway=leeway_s,
                          options={"require": ["exp", "iat", "aud", "iss", "jti"]})
    except jwt.ExpiredSignatureError:
        raise TokenRefused("expired", "the token has expired") from None
    except jwt.InvalidAudienceError:
        raise TokenRefused("audience", f"the token is not for this service (audience {audience!r})") from None
    except jwt.InvalidSignatureError:
        raise TokenRefused("signature", "the token's signature does not verify with the registered key") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenRefused("claims", f"the token lacks the claim {exc.claim!r}") from None
    except jwt.ImmatureSignatureError:
        raise TokenRefused("not_yet_valid", "the token is not valid yet") from None
    except jwt.InvalidTokenError as exc:
        raise TokenRefused("malformed", f"the token cannot be read ({type(exc).__name__})") from None
