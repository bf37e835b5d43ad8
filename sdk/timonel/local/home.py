"""Where the local cluster keeps its files: ``$TIMONEL_LOCAL_HOME``, else ``~/.timonel/local``.

One place names every path so the daemon, ``timonel local`` and ``timonel.kube`` agree on them.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

#: The environment variable that moves the local cluster's home (tests point it at a tmp dir).
ENV = "TIMONEL_LOCAL_HOME"


@dataclass(frozen=True)
class Home:
    """The local cluster's directory and the files in it."""

    root: Path

    @classmethod
    def default(cls) -> Home:
        value = os.environ.get(ENV)
        return cls(Path(value).expanduser() if value else Path.home() / ".timonel" / "local")

    @property
    def kubeconfig(self) -> Path:
        """The kubeconfig ``timonel local up`` writes (context ``timonel-local``)."""
        return self.root / "kubeconfig"

    @property
    def token_file(self) -> Path:
        return self.root / "token"

    @property
    def daemon_file(self) -> Path:
        """JSON written by the running daemon once it serves: pid, ports, URL."""
        return self.root / "daemon.json"

    @property
    def settings_file(self) -> Path:
        """JSON of the ports last asked for, reused by the next ``up`` so URLs stay stable."""
        return self.root / "settings.json"

    @property
    def ca(self) -> Path:
        """The CA certificate that signed the API server's certificate."""
        return self.root / "ca.crt"

    @property
    def log(self) -> Path:
        return self.root / "daemon.log"

    def token(self) -> str:
        """The bearer token of this cluster, created on first use and kept across restarts."""
        if self.token_file.is_file():
            return self.token_file.read_text(encoding="utf-8").strip()
        self.root.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(token)
        return token
