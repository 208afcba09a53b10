"""Request signatures and safe mode (AES-256-CBC) of the WeChat Official Account platform.

Written on the standard library and ``cryptography`` rather than wechatpy: wechatpy's last
release (1.8.18, 2021) declares Python ≤ 3.7, compares signatures with ``!=`` and pulls in
``requests`` and ``xmltodict``; what we need is SHA-1 over sorted strings and one cipher.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeChat pads PKCS#7-style to a multiple of 32 bytes, not AES's 16


class CryptoError(ValueError):
    """A ciphertext that does not decrypt into a message for this account."""


def signature(*parts: str) -> str:
    """SHA-1 hex of the parts sorted and joined: ``signature`` (token, timestamp, nonce) and
    ``msg_signature`` (the same plus the ``Encrypt`` text)."""
    return hashlib.sha1("".join(sorted(parts)).encode(), usedforsecurity=False).hexdigest()


def signature_ok(given: str, *parts: str) -> bool:
    """Constant-time comparison of a request's signature with the expected one."""
    return hmac.compare_digest(given.lower().encode(), signature(*parts).encode())


def _pad(data: bytes) -> bytes:
    n = BLOCK - len(data) % BLOCK
    return data + bytes([n]) * n


def _unpad(data: bytes) -> bytes:
    if not data:
        raise CryptoError("empty plaintext")
    n = data[-1]
    if not 1 <= n <= BLOCK or data[-n:] != bytes([n]) * n:
        raise CryptoError("bad padding")
    return data[:-n]


class MessageCrypto:
    """Encrypt and decrypt message bodies of one account (AppID) with its EncodingAESKey."""

    def __init__(self, encoding_aes_key: str, app_id: str) -> None:
        key = base64.b64decode(encoding_aes_key + "=")
        if len(key) != 32:
            raise ValueError("an EncodingAESKey decodes to 32 bytes")
        self.key = key
        self.app_id = app_id.encode()

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, xml: bytes, *, random16: bytes | None = None) -> str:
        """``Encrypt`` text: base64(AES(random 16 ‖ length ‖ xml ‖ AppID))."""
        head = random16 if random16 is not None else os.urandom(16)
        plain = _pad(head + struct.pack(">I", len(xml)) + xml + self.app_id)
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    def decrypt(self, encrypted: str) -> bytes:
        """The XML inside ``Encrypt``; CryptoError when it is not ours or not intact."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except ValueError as err:
            raise CryptoError("Encrypt is not base64") from err
        if not data or len(data) % 16:
            raise CryptoError("ciphertext is not whole AES blocks")
        decryptor = self._cipher().decryptor()
        plain = _unpad(decryptor.update(data) + decryptor.finalize())
        if len(plain) < 20:
            raise CryptoError("plaintext too short")
        (length,) = struct.unpack(">I", plain[16:20])
        xml, app_id = plain[20 : 20 + length], plain[20 + length :]
        if len(xml) != length:
            raise CryptoError("length field exceeds the plaintext")
        if not hmac.compare_digest(app_id, self.app_id):
            raise CryptoError("encrypted for another AppID")
        return xml
