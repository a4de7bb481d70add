"""Encryption of secrets at rest (channel secrets, webhook secrets) and hashing of client keys.

The master key comes from GENGATE_SECRET_KEY or is generated into `<data-dir>/secret.key` (mode 0600).
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


def hash_key(client_key: str) -> str:
    # Client keys carry 200+ bits of randomness, so a fast hash is enough: no dictionary to attack.
    return hashlib.sha256(client_key.encode()).hexdigest()


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def _fernet_key(material: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(material.encode())
        if len(raw) == 32:
            return material.encode()
    except (ValueError, TypeError):
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(material.encode()).digest())


def load_master_key(secret_key: str | None, data_dir: Path) -> str:
    if secret_key:
        return secret_key
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_text().strip()
    try:
        os.write(fd, key.encode())
    finally:
        os.close(fd)
    return key


class SecretBox:
    def __init__(self, master_key: str) -> None:
        self._fernet = Fernet(_fernet_key(master_key))

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:  # wrong GENGATE_SECRET_KEY for this database
            raise RuntimeError("cannot decrypt a stored secret: is GENGATE_SECRET_KEY the one "
                               "this database was written with?") from exc
