"""`python -m app.healthcheck`: exit 0 when the server answers GET /api/health on the host
and port the configuration names (config file and AVOCET_* variables, read as `avocet
serve` reads them), else 1 with the reason on stderr. Docker's HEALTHCHECK runs it, so a
changed port (AVOCET_PORT) is followed without editing the image."""

from __future__ import annotations

import sys
import urllib.request

from app.config import ConfigError, load_settings

TIMEOUT_SECONDS = 2.0


def main() -> int:
    try:
        settings = load_settings(None)
    except ConfigError as exc:
        print(f"healthcheck: {exc}", file=sys.stderr)
        return 1
    url = f"{settings.local_url}/api/health"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer:
            status = int(answer.status)
    except OSError as exc:  # URLError and HTTPError (a 5xx) included
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"healthcheck: {url} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
