"""``timonel package`` (SavedModel → release), ``timonel releases`` and ``timonel inspect``.

Storage credentials come from the environment as gcsfs and s3fs read them; ``--storage-option
KEY=VALUE`` passes anything else to the fsspec filesystem (``endpoint_url=http://127.0.0.1:4443``
for an emulator, ``project=...`` for gcsfs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from timonel.errors import SpecError

if TYPE_CHECKING:
    from timonel.releases.manifest import Manifest
    from timonel.releases.package import SavedModelInfo
    from timonel.signatures import SignatureDef

_STORAGE_OPTION_HELP = (
    "KEY=VALUE passed to the fsspec filesystem (repeatable), e.g. endpoint_url=http://host:port; "
    "VALUE is read as JSON when it parses."
)


def storage_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["endpoint_url=http://h:1", "anon=true"]`` → ``{"endpoint_url": "http://h:1",
    "anon": True}``."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SpecError(
                f"--storage-option {pair!r} is not KEY=VALUE; write e.g. "
                "--storage-option endpoint_url=http://127.0.0.1:4443",
                field="storage_option",
            )
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


def register(app: typer.Typer) -> None:
    @app.command()
    def package(
        model_dir: Path = typer.Argument(..., help="SavedModel folder (saved_model.pb inside)."),
        name: str = typer.Option(..., "--name", help="Model name: the folder under the repo."),
        repo: str = typer.Option(
            ..., "--repo", help="Model repository: a folder, file://, gs://BUCKET/.. or s3://.."
        ),
        version: int | None = typer.Option(
            None, "--version", help="Release version; default: the next free one."
        ),
        examples: Path | None = typer.Option(
            None,
            "--examples",
            help="JSON file of TF Serving REST predict bodies ({'instances': ...} or a list of "
            "them) used as warmup requests; default: synthesized from the signature.",
        ),
        signature: str = typer.Option(
            "serving_default", "--signature", help="The serving signature clients call."
        ),
        warmup: bool = typer.Option(
            True, "--warmup/--no-warmup", help="Write TF Serving warmup records."
        ),
        batching_file: Path | None = typer.Option(
            None,
            "--batching-parameters",
            help="A TF Serving batching parameters file to check and ship with the release.",
        ),
        monitoring: bool = typer.Option(
            False, "--monitoring", help="Ship a monitoring config enabling Prometheus metrics."
        ),
        models_config: bool = typer.Option(
            False, "--models-config", help="Ship a models.config serving it from /mnt/models."
        ),
        storage_option: list[str] | None = typer.Option(
            None, "--storage-option", help=_STORAGE_OPTION_HELP
        ),
        workers: int = typer.Option(4, "--workers", help="Files uploaded at once."),
    ) -> None:
        """Validate a SavedModel, add warmup records and publish it as an immutable release."""
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TransferSpeedColumn,
        )

        from timonel.cli import stderr, stdout
        from timonel.cli.spec_options import flags_named
        from timonel.releases.package import package as package_model
        from timonel.tfserving import MonitoringConfig, read_batching_parameters

        batching = read_batching_parameters(batching_file) if batching_file else None
        total = sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file())
        with (
            flags_named({"name": "--name", "version": "--version"}),
            Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=stderr,
                transient=True,
                disable=not stderr.is_terminal,
            ) as bar,
        ):
            task = bar.add_task(f"publishing {name}", total=total)
            release = package_model(
                model_dir,
                name=name,
                repo=repo,
                version=version,
                signature_name=signature,
                examples=examples,
                warmup=warmup,
                batching=batching,
                monitoring=MonitoringConfig() if monitoring else None,
                models_config=models_config,
                storage_options=storage_options(storage_option),
                workers=workers,
                progress=lambda count: bar.advance(task, count),
            )
        stdout.print(release.uri)
        _print_manifest(release.manifest)

    @app.command()
    def releases(
        name: str = typer.Argument(..., help="Model name."),
        repo: str = typer.Option(..., "--repo", help="Model repository URI."),
        discard: int | None = typer.Option(
            None,
            "--discard",
            help="Delete this version's unfinished (never published) release folder.",
        ),
        storage_option: list[str] | None = typer.Option(
            None, "--storage-option", help=_STORAGE_OPTION_HELP
        ),
    ) -> None:
        """List a model's published releases (oldest first)."""
        from timonel.cli import stdout
        from timonel.releases.layout import model_uri, release_uri
        from timonel.releases.publish import discard_unpublished
        from timonel.releases.storage import list_releases

        options = storage_options(storage_option)
        if discard is not None:
            discard_unpublished(release_uri(repo, name, discard), storage_options=options)
            stdout.print(f"discarded {release_uri(repo, name, discard)}")
            return
        found = list_releases(model_uri(repo, name), storage_options=options)
        if not found:
            stdout.print(f"no published releases of {name} in {repo}")
            return
        for release in found:  # one line each, so scripts can read it
            manifest = release.manifest
            stdout.print(
                f"{manifest.version:>5}  {manifest.created}  {_size(manifest.size_bytes):>9}  "
                f"tensorflow {manifest.tensorflow_version}  {release.uri}"
            )

    @app.command()
    def inspect(
        path_or_uri: str = typer.Argument(..., help="A SavedModel folder or a release URI."),
        storage_option: list[str] | None = typer.Option(
            None, "--storage-option", help=_STORAGE_OPTION_HELP
        ),
    ) -> None:
        """Show signatures (dtypes, shapes), the exporting TensorFlow version and the size."""
        from timonel.releases.manifest import Manifest
        from timonel.releases.package import inspect_model

        found = inspect_model(path_or_uri, storage_options=storage_options(storage_option))
        if isinstance(found, Manifest):
            _print_manifest(found)
        else:
            _print_saved_model(found)


def _print_manifest(manifest: Manifest) -> None:
    from timonel.cli import stdout

    stdout.print(
        f"[bold]{manifest.name}[/] version {manifest.version}  "
        f"tensorflow {manifest.tensorflow_version}  {_size(manifest.size_bytes)} in "
        f"{len(manifest.files)} files  warmup records {manifest.warmup_records}"
    )
    stdout.print(f"created {manifest.created} from {manifest.source}")
    stdout.print(f"content sha256 {manifest.content_sha256}")
    _print_signatures(manifest.signatures, manifest.signature_name)


def _print_saved_model(info: SavedModelInfo) -> None:
    from timonel.cli import stdout

    stdout.print(
        f"[bold]{info.path}[/]  tensorflow {info.tensorflow_version}  {_size(info.size_bytes)}"
    )
    _print_signatures(info.signatures, "serving_default")


def _print_signatures(signatures: dict[str, SignatureDef] | Any, default: str) -> None:
    from rich.table import Table

    from timonel.cli import stdout

    table = Table("signature", "method", "", "name", "dtype", "shape")
    for key in sorted(signatures, key=lambda k: (k != default, k)):
        signature = signatures[key]
        label = f"{key} (default)" if key == default else key
        for kind, tensors in (("in", signature.inputs), ("out", signature.outputs)):
            for alias, tensor in sorted(tensors.items()):
                shape = "?" if tensor.shape is None else str(list(tensor.shape))
                table.add_row(label, signature.method_name, kind, alias, tensor.dtype, shape)
                label = ""
    stdout.print(table)


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"
