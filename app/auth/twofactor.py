"""Optional TOTP two-factor sign-in (RFC 6238 via pyotp), and the short-lived signed token
that carries a password-checked user to the code prompt."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from pathlib import Path

import jwt
import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken

from app.auth.tokens import load_key_file

ISSUER = "Avocet"
# Not the API's issuer ("avocet") and with an audience: the API's JWT check refuses it, so a
# half-signed-in user can never use this token as a Bearer token.
_PENDING_ISSUER = "avocet-2fa"
_PENDING_AUDIENCE = "avocet-ui-2fa"
PENDING_TTL = 300
_CODE = re.compile(r"^\d{6}$")
_SECRET = re.compile(r"^[A-Z2-7]{32}$")


def new_secret() -> str:
    return pyotp.random_base32(32)


def is_secret(value: str) -> bool:
    return bool(_SECRET.match(value))


def provisioning_uri(secret: str, email: str) -> str:
    """The otpauth:// URI an authenticator app takes (typed or pasted: no QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step the 6-digit code belongs to (this one, or one either side for clock
    drift), else None."""
    code = code.strip().replace(" ", "")
    if not _CODE.match(code):
        return None
    totp = pyotp.TOTP(secret)
    moment = time.time() if now is None else now
    step = int(moment // totp.interval)
    for candidate in (step, step - 1, step + 1):
        if pyotp.utils.strings_equal(totp.generate_otp(candidate), code):
            return candidate
    return None


def pending_key(jwt_secret: bytes) -> bytes:
    """A key of its own for pending tokens, derived from the instance's JWT secret."""
    return hashlib.sha256(b"avocet-ui-2fa:" + jwt_secret).digest()


def issue_pending(secret: bytes, user_id: str, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": user_id,
        "iat": issued,
        "exp": issued + PENDING_TTL,
        "iss": _PENDING_ISSUER,
        "aud": _PENDING_AUDIENCE,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def pending_user(secret: bytes, token: str) -> str | None:
    """The user id of a valid, unexpired pending-sign-in token, else None."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            issuer=_PENDING_ISSUER,
            audience=_PENDING_AUDIENCE,
            options={"require": ["sub", "exp", "iat"]},
        )
    except jwt.PyJWTError:
        return None
    sub = claims.get("sub")
    return sub if isinstance(sub, str) else None


class SecretBox:
    """Seals TOTP secrets at rest (Fernet: AES-128-CBC + HMAC-SHA256) with a key kept beside
    jwt.secret as data_dir/totp.key (0600). A copy of meta.sqlite3 alone yields no secret."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._code_key = hashlib.sha256(b"avocet recovery codes:" + key).digest()

    def code_digest(self, code: str) -> bytes:
        """What is stored of a recovery code: an HMAC under a key that is not in the database."""
        return hmac.new(self._code_key, normalize_code(code).encode(), hashlib.sha256).digest()

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, stored: str) -> str | None:
        """The secret of a sealed value (a legacy clear secret passes through), or None when
        the key can't open it (the key file was lost: two-factor sign-in is then off)."""
        if is_secret(stored):
            return stored
        try:
            return self._fernet.decrypt(stored.encode()).decode()
        except (InvalidToken, ValueError):
            return None


_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
_RECOVERY = re.compile(r"^[a-z2-7]{5}-?[a-z2-7]{5}$")
RECOVERY_CODES = 10


def new_recovery_codes() -> list[str]:
    """Ten one-time codes such as 'k7m2q-x4hba' (50 random bits each)."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_BASE32) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalize_code(code: str) -> str:
    return code.strip().lower().replace(" ", "").replace("-", "")


def is_recovery_code(code: str) -> bool:
    return bool(_RECOVERY.match(code.strip().lower().replace(" ", "")))


def qr_svg(uri: str) -> str:
    """A URI (a provisioning URI, an opt-out link) as an inline SVG QR code (no script, no
    external image)."""
    return str(segno.make(uri, error="m").svg_inline(scale=5, dark="#111", light="#fff", border=3))


def load_secret_box(data_dir: Path) -> SecretBox:
    return SecretBox(load_key_file(data_dir / "totp.key", Fernet.generate_key))
