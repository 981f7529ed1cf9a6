"""The post-deploy smoke test: `assistant smoke --api URL`."""
from __future__ import annotations

import sys

import click

from shared.settings import get_settings


@click.command("smoke")
@click.option("--api", "api_url", required=True, help="the api's base URL, e.g. http://127.0.0.1:8000")
@click.option("--timeout", default=30.0, show_default=True, help="seconds the quick add may take to finish")
def smoke(api_url: str, timeout: float) -> None:
    """Post-deploy smoke test: health, readiness, sign-in, a quick-add round trip; exits 1 on any failure."""
    import time

    from shared.smoke import Smoke, SmokeFailed

    settings = get_settings()
    if not settings.smoke_password:
        raise click.ClickException("SMOKE_PASSWORD is not set: the smoke test signs in as SMOKE_EMAIL with it")
    started = time.perf_counter()

    def report(step) -> None:
        click.echo(f"ok    {step.name:<17} {step.seconds * 1000:7.0f} ms  {step.detail}")

    try:
        Smoke(api_url, settings, timeout=timeout, report=report).run()
    except SmokeFailed as exc:
        click.echo(f"FAIL  {exc}", err=True)
        sys.exit(1)
    click.echo(f"smoke test passed in {time.perf_counter() - started:.1f} s")
