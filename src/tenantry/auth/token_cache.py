"""The CLI's token cache: token sets per issuer and client in a file only its owner can read, refreshed on use."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import structlog

from tenantry.auth.login import (
    Clock,
    LoginError,
    LoginUnavailableError,
    ProviderMetadata,
    TokenSet,
    json_number,
    optional_str,
    refresh,
)

log = structlog.get_logger(__name__)


class TokenCache:
    """Token sets per (issuer, client id) in a JSON file only its owner can read (0600, directory 0700)."""

    def __init__(self, path: Path, *, clock: Clock = time.time) -> None:
        self._path = path
        self._clock = clock

    def get(self, issuer: str, client_id: str) -> TokenSet | None:
        for entry in self._load():
            if entry.get("issuer") == issuer and entry.get("client_id") == client_id:
                return _entry_tokens(entry)
        return None

    def put(self, issuer: str, client_id: str, tokens: TokenSet) -> None:
        entries = [e for e in self._load() if (e.get("issuer"), e.get("client_id")) != (issuer, client_id)]
        entries.append(
            {
                "issuer": issuer,
                "client_id": client_id,
                "access_token": tokens.access_token,
                "refresh_token": tokens.refresh_token,
                "expires_at": tokens.expires_at,
                "scope": tokens.scope,
            }
        )
        self._save(entries)

    def forget(self, issuer: str, client_id: str) -> None:
        entries = self._load()
        kept = [e for e in entries if (e.get("issuer"), e.get("client_id")) != (issuer, client_id)]
        if len(kept) != len(entries):
            self._save(kept)

    async def access_token(
        self, metadata: ProviderMetadata, client_id: str, http: httpx.AsyncClient, *, client_secret: str | None = None
    ) -> str | None:
        """A cached access token valid for at least 30 s more, else one refreshed; None means log in again.

        A refresh the issuer refuses (revoked or expired refresh token) drops the entry; an unreachable
        issuer raises LoginUnavailableError rather than throwing away tokens that may still work later.
        """
        tokens = self.get(metadata.issuer, client_id)
        if tokens is None:
            return None
        if tokens.usable(self._clock()):
            return tokens.access_token
        if tokens.refresh_token is None:
            return None
        try:
            renewed = await refresh(
                metadata, client_id, tokens.refresh_token, http, client_secret=client_secret, clock=self._clock
            )
        except LoginUnavailableError:
            raise
        except LoginError as err:
            log.info("auth.token_cache.refresh_refused", issuer=metadata.issuer, client_id=client_id, error=err.error)
            self.forget(metadata.issuer, client_id)
            return None
        self.put(metadata.issuer, client_id, renewed)
        return renewed.access_token

    def _load(self) -> list[dict[str, Any]]:
        try:
            document = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as err:
            # Never echo the file: it holds tokens. A broken cache only means logging in again.
            log.warning("auth.token_cache.unreadable", path=str(self._path), cause=type(err).__name__)
            return []
        entries = document.get("entries") if isinstance(document, dict) else None
        return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []

    def _save(self, entries: list[dict[str, Any]]) -> None:
        directory = self._path.parent
        if not directory.exists():
            directory.mkdir(parents=True, mode=0o700)
            directory.chmod(0o700)  # mkdir's mode is filtered by the umask; be explicit
        # mkstemp creates the file 0600 from the start, so the tokens are never readable by others, and
        # the rename keeps a concurrent reader from ever seeing half a file.
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tokens-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"version": 1, "entries": entries}, handle)
                handle.flush()
                os.fsync(handle.fileno())
            Path(tmp).chmod(0o600)
            Path(tmp).replace(self._path)
        except BaseException:
            with contextlib.suppress(OSError):
                Path(tmp).unlink()
            raise


def _entry_tokens(entry: Mapping[str, Any]) -> TokenSet | None:
    access_token, expires_at = entry.get("access_token"), json_number(entry.get("expires_at"))
    if not isinstance(access_token, str) or expires_at is None:
        return None
    return TokenSet(
        access_token=access_token,
        expires_at=expires_at,
        refresh_token=optional_str(entry.get("refresh_token")),
        scope=optional_str(entry.get("scope")),
    )
