"""`python -m podium.web`: the page as `podium up` and the containers start it (PODIUM_WEB_* settings)."""

from __future__ import annotations

import logging
import sys

from podium.core.errors import PodiumError
from podium.core.settings import read_settings
from podium.web.server import serve
from podium.web.settings import WebSettings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = read_settings(WebSettings)
        print(f"web: http://{settings.host}:{settings.port}", flush=True)
        serve(settings)
    except PodiumError as exc:
        print(f"error: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
