"""The background process behind ``timonel local up``: the API server, controller and ingress.

Run as ``python -m timonel.local.daemon --home DIR``. It serves the API on 127.0.0.1, writes the
kubeconfig, starts the ingress (``timonel.local.ingress``, on ``--ingress-port``, 8080 by
default) and the controller as a client of that API, and only then writes
``daemon.json`` (pid, URL, ports), which is how ``timonel local up`` knows it is ready. SIGTERM or
SIGINT stops the controller (and its revision processes), then the API server, and removes
``daemon.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from timonel.local import kubeconfig
from timonel.local.apiserver import certs, open_registry, start
from timonel.local.home import Home
from timonel.local.revisions import RevisionStore

log = logging.getLogger("timonel.local")


def _write_json(path: Path, data: dict[str, object]) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


async def serve(home: Home, *, api_port: int, ingress_port: int | None) -> None:
    """Serve until SIGTERM/SIGINT; see the module docstring for the order of things."""
    from timonel.kube.client import Cluster
    from timonel.local.controller import Controller
    from timonel.local.ingress.router import DEFAULT_INGRESS_PORT, Ingress

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    registry = open_registry(home.root)
    token = home.token()
    tls = certs.ensure(home.root)
    served = await start(
        registry,
        token,
        port=api_port,
        ssl_context=tls.server_context(),
        revisions=RevisionStore(home.root),  # the controller's, below
    )
    port = served.port
    url = f"https://127.0.0.1:{port}"
    kubeconfig.write(home.kubeconfig, url, token, ca_pem=tls.ca.read_bytes())
    log.info("API server listening on %s", url)
    cluster = Cluster.connect(kubeconfig=home.kubeconfig, context=kubeconfig.CONTEXT)
    controller = Controller(cluster, home.root)
    ingress = Ingress(controller)
    controller.listen(ingress.update, drain=ingress.activator.drain)
    ingress_port = await ingress.start(ingress_port or DEFAULT_INGRESS_PORT)
    log.info("ingress listening on http://127.0.0.1:%d", ingress_port)
    await loop.run_in_executor(None, controller.start)
    log.info("controller started")
    _write_json(
        home.daemon_file,
        {
            "pid": os.getpid(),
            "url": url,
            "apiPort": port,
            "ingressPort": ingress_port,
            "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    try:
        await stop.wait()
    finally:
        home.daemon_file.unlink(missing_ok=True)
        log.info("stopping")
        await loop.run_in_executor(None, controller.stop)
        await ingress.close()
        await served.close()
        cluster.close()
        registry.store.close()
        log.info("stopped")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m timonel.local.daemon")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--api-port", type=int, default=0)
    parser.add_argument("--ingress-port", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(Home(args.home), api_port=args.api_port, ingress_port=args.ingress_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
