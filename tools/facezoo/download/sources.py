"""Places a file can come from: a local file (mirror directory or cache), an http(s) URL, Google Drive."""
from __future__ import annotations

import hashlib
import html
import os
import re
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import quote, urlsplit

import requests
import urllib3

from facezoo.registry import ModelFile

from .errors import SourceError
from .verify import CHUNK, check_complete, hash_prefix, write_chunks
from .workdir import kind, open_owned, owned_size

GOOGLE_DRIVE_URL = "https://drive.google.com"
USER_AGENT = "facezoo-downloader/0.1"
MAX_REDIRECTS = 10
MAX_PAGE_BYTES = 1 << 20  # a Google Drive confirmation page larger than this is not one
UNRESOLVED = "cannot resolve the host name"


@dataclass
class FetchContext:
    """What a fetch needs besides the file: HTTP session, timeouts, cancellation, progress callbacks."""

    session: requests.Session
    timeout: float  # seconds for connecting and for each read
    cancel: threading.Event
    on_bytes: Callable[[int], None]
    on_start: Callable[[int], None]  # the byte offset a transfer starts from
    deadline: float | None = None  # seconds one attempt may take in all
    unresolved: set = field(default_factory=set)  # host names that failed to resolve in this run

    def until(self) -> float | None:
        return None if self.deadline is None else time.monotonic() + self.deadline


def _short_reason(exc: BaseException) -> str:
    text = str(exc)
    for pattern, reason in (
        (r"Failed to resolve|Name or service not known|nodename nor servname|NameResolutionError|"
         r"Temporary failure in name resolution|No address associated", UNRESOLVED),
        (r"Connection refused", "connection refused"),
        (r"Network is unreachable", "network is unreachable"),
        (r"timed out|Timeout", "timed out"),
        (r"IncompleteRead|Connection broken|RemoteDisconnected|ProtocolError|closed connection",
         "connection dropped mid-transfer"),
        (r"SSLError|CERTIFICATE", "TLS error"),
    ):
        if re.search(pattern, text):
            return reason
    return text.splitlines()[0][:160] if text else type(exc).__name__


def _open_mirror_file(path: Path) -> int:
    """A read descriptor on a mirror's regular file (links followed: the mirror is the user's)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SourceError("no such file") from None
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise SourceError(f"not a regular file ({kind(mode)})")
    return fd


class LocalFileSource:
    """A file on disk: a mirror directory entry or a cache entry (`opener` returns a read
    descriptor, None when there is no such file)."""

    def __init__(self, path: Path, label: str, on_mismatch: Callable[[], None] | None = None,
                 opener: Callable[[], int | None] | None = None):
        self.path = path
        self.label = label
        self.on_mismatch = on_mismatch
        self.opener = opener or (lambda: _open_mirror_file(path))

    def describe(self) -> str:
        return self.label

    def fetch(self, part: Path, file: ModelFile, ctx: FetchContext) -> None:
        src = self.opener()
        if src is None:
            raise SourceError("no such file")
        hasher = hashlib.sha256()
        ctx.on_start(0)
        try:
            out = open_owned(part, append=False)
            try:
                size = write_chunks(iter(lambda: os.read(src, CHUNK), b""), out, hasher, 0, file.size,
                                    ctx.on_bytes, ctx.cancel)
            finally:
                os.close(out)
            check_complete(size, file.size, hasher.hexdigest(), file.sha256)
        except SourceError:
            part.unlink(missing_ok=True)
            if self.on_mismatch:
                self.on_mismatch()
            raise
        except OSError as exc:
            raise SourceError(f"cannot copy: {exc.strerror or exc}") from None
        finally:
            os.close(src)


def _raw_chunks(resp: requests.Response):
    """The body as it arrives (each read returns what the socket has, up to CHUNK), so a deadline
    and a cancellation are checked even when a server sends one byte at a time."""
    while chunk := resp.raw.read1(CHUNK):
        yield chunk


class HttpSource:
    """An http(s) URL; resumes a partial file with a Range request."""

    def __init__(self, url: str, label: str | None = None):
        self.url = url
        self.label = label or url

    def describe(self) -> str:
        return self.label

    def _open(self, ctx: FetchContext, headers: dict[str, str]) -> requests.Response:
        return ctx.session.get(self.url, headers=headers, stream=True, timeout=ctx.timeout)

    def fetch(self, part: Path, file: ModelFile, ctx: FetchContext) -> None:
        try:
            host = urlsplit(self.url).hostname
        except ValueError as exc:
            raise SourceError(f"invalid URL: {exc}") from None
        if host in ctx.unresolved:
            raise SourceError(f"{UNRESOLVED} (already failed in this run)")
        offset = owned_size(part)
        if offset > file.size:
            part.unlink()
            offset = 0
        resumed = offset > 0
        try:
            self._transfer(part, file, ctx, offset)
        except SourceError as exc:
            if not exc.transient:
                part.unlink(missing_ok=True)
                if resumed and exc.reason.startswith("sha256 mismatch"):
                    # the bytes kept from an earlier attempt may be the bad ones: start afresh once
                    raise SourceError(exc.reason + " (after resuming; retrying from the start)", transient=True)
            raise
        except requests.TooManyRedirects:
            raise SourceError(f"redirect loop (more than {MAX_REDIRECTS} redirects)") from None
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                requests.exceptions.MissingSchema, requests.exceptions.InvalidHeader) as exc:
            raise SourceError(f"invalid URL or redirect: {_short_reason(exc)}") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            reason = _short_reason(exc)
            if reason == UNRESOLVED:  # permanent for this source: no retry, and no other source
                ctx.unresolved.add(host)  # on the same host tries again in this run
                raise SourceError(reason) from None
            raise SourceError(reason, transient=True) from None

    def _transfer(self, part: Path, file: ModelFile, ctx: FetchContext, offset: int) -> None:
        if offset and offset == file.size:
            check_complete(offset, file.size, hash_prefix(part).hexdigest(), file.sha256)
            return
        until = ctx.until()
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        ctx.session.max_redirects = MAX_REDIRECTS
        with self._open(ctx, headers) as resp:
            status = resp.status_code
            if status == 206 and offset:
                match = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
                if not match or int(match.group(1)) != offset:
                    part.unlink(missing_ok=True)
                    raise SourceError("server answered a Range request with the wrong range", transient=True)
            elif status == 200:
                offset = 0
            elif status == 416:
                part.unlink(missing_ok=True)
                raise SourceError("HTTP 416 (range not satisfiable); restarting", transient=True)
            else:
                retry_after = _retry_after(resp.headers.get("Retry-After"))
                transient = status in (408, 425, 429) or status >= 500
                raise SourceError(f"HTTP {status} {resp.reason or ''}".strip(), transient=transient,
                                  retry_after=retry_after)
            length = resp.headers.get("Content-Length")
            if length is not None and length.isdigit() and offset + int(length) != file.size:
                raise SourceError(f"size mismatch: server announces {offset + int(length)} bytes, "
                                  f"expected {file.size}")
            hasher = hash_prefix(part) if offset else hashlib.sha256()
            ctx.on_start(offset)
            out = open_owned(part, append=bool(offset))
            try:
                size = write_chunks(_raw_chunks(resp), out, hasher, offset, file.size, ctx.on_bytes, ctx.cancel,
                                    until)
            finally:
                os.close(out)
        check_complete(size, file.size, hasher.hexdigest(), file.sha256)


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit() and len(value.strip()) < 10:
        return float(value.strip())
    return None


class GoogleDriveSource(HttpSource):
    """A Google Drive file id; follows the virus-scan confirmation page that large files get."""

    def __init__(self, file_id: str, base_url: str = GOOGLE_DRIVE_URL):
        super().__init__(f"{base_url.rstrip('/')}/uc?export=download&id={quote(file_id)}",
                         label=f"google_drive:{file_id}")
        self.file_id = file_id

    def _open(self, ctx: FetchContext, headers: dict[str, str]) -> requests.Response:
        resp = ctx.session.get(self.url, headers=headers, stream=True, timeout=ctx.timeout)
        if not resp.headers.get("Content-Type", "").startswith("text/html"):
            return resp
        page = _read_page(resp)
        url, params = _confirmation_target(page, resp.url, self.file_id, ctx.session.cookies)
        if url is None:
            raise SourceError("Google Drive answered with a page but no download link "
                              "(quota exceeded, or the file is not shared publicly)")
        return ctx.session.get(url, params=params, headers=headers, stream=True, timeout=ctx.timeout)


def _read_page(resp: requests.Response) -> str:
    """An HTML page's text, at most MAX_PAGE_BYTES of it (an endless page is not read to the end)."""
    data = b""
    with resp:
        for chunk in _raw_chunks(resp):
            data += chunk
            if len(data) > MAX_PAGE_BYTES:
                raise SourceError(f"Google Drive answered with a page larger than {MAX_PAGE_BYTES} bytes")
    return data.decode(resp.encoding or "utf-8", errors="replace")


def _confirmation_target(page: str, page_url: str, file_id: str, cookies) -> tuple[str | None, dict]:
    """The URL and query parameters behind Drive's 'download anyway' confirmation."""
    form = re.search(r'<form[^>]*id="download-form"[^>]*action="([^"]+)"[^>]*>(.*?)</form>', page, re.S)
    if form:
        params = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form.group(2)))
        return html.unescape(form.group(1)), {k: html.unescape(v) for k, v in params.items()}
    token = re.search(r"confirm=([0-9A-Za-z_-]+)", page)
    if token is None:
        token_value = next((v for k, v in cookies.items() if k.startswith("download_warning")), None)
    else:
        token_value = token.group(1)
    if token_value:
        base = page_url.split("?", 1)[0]
        return base, {"export": "download", "id": file_id, "confirm": token_value}
    return None, {}


def registry_sources(model_name: str, file: ModelFile, mirrors: list[str], gdrive_url: str = GOOGLE_DRIVE_URL):
    """Candidate sources for one file, in the order they are tried: mirrors first, then model.yml's."""
    out: list = []
    for mirror in mirrors:
        if re.match(r"^https?://", mirror):
            out.append(HttpSource(f"{mirror.rstrip('/')}/{quote(model_name)}/{quote(file.name)}"))
        else:
            path = Path(mirror) / model_name / file.name
            out.append(LocalFileSource(path, f"mirror {path}"))
    for source in file.sources:
        if source.kind == "google_drive":
            out.append(GoogleDriveSource(source.location, gdrive_url))
        else:
            out.append(HttpSource(source.location))
    return out



