"""The head of a plain HTTP/1.1 request, read without an HTTP library. Pure.

Two hot paths read request heads themselves: the REST port of ``timonel serve`` and the local
ingress. Most of their requests are small TF Serving calls, a ``POST`` whose body is framed by
``Content-Length``, and building an HTTP library's request and response objects for those costs
as much of the event loop as the model call. So both read the head here and hand anything else
(``parse_request_head`` answers None) to aiohttp with the bytes read so far: another HTTP
version, a chunked body, ``Expect: 100-continue``, an upgrade, a malformed or ambiguous head.
"""

from __future__ import annotations

from dataclasses import dataclass

#: the end of a request's head
HEAD_END = b"\r\n\r\n"
_HANDED_OVER = (b"transfer-encoding", b"expect", b"upgrade")


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    #: the request target as sent: the path, percent-encoded, and the query if any
    target: str
    #: header values by lower-case name
    headers: dict[bytes, bytes]
    #: the body's ``Content-Length`` (0 without one)
    length: int
    #: the client asked to close the connection after the answer
    close: bool

    @property
    def path(self) -> str:
        """The target without its query, still percent-encoded."""
        return self.target.split("?", 1)[0]


def parse_request_head(head: bytes) -> RequestHead | None:
    """The head (up to, not including, its blank line) of a plain HTTP/1.1 request; None for a
    request an HTTP library must read."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1" or not parts[0].isalpha():
        return None
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        name = name.lower()
        if not sep or not name or name != name.strip() or name in headers:
            return None  # malformed, whitespace before the colon, or a repeated header
        headers[name] = value.strip()
    length = headers.get(b"content-length", b"0")
    if not length.isdigit() or any(name in headers for name in _HANDED_OVER):
        return None
    connection = {token.strip() for token in headers.get(b"connection", b"").lower().split(b",")}
    if b"upgrade" in connection:
        return None
    return RequestHead(
        method=parts[0].decode("ascii"),
        target=parts[1].decode("latin-1"),
        headers=headers,
        length=int(length),
        close=b"close" in connection,
    )
