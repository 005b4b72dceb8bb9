"""The module Celery's command line loads: ``celery -A worker.celery_entry worker``.

Building the app at import is this module's one purpose; nothing else imports it.
No connection is opened here: clients are created in each worker process after fork.
"""

import logging

from podium.core.settings import read_settings
from worker.app import create_app
from worker.settings import WorkerSettings

settings = read_settings(WorkerSettings)
logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app(settings)
