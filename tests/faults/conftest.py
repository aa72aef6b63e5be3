"""Fixtures of the fault tests: private servers, collected static files, Celery pointed elsewhere."""

from __future__ import annotations

import os
from contextlib import contextmanager

import pytest
from django.conf import settings

from .servers import PrivateRedis, collect_static


@pytest.fixture(scope="session")
def static_root(tmp_path_factory):
    """Static files collected once, for the gunicorn processes (production storage)."""
    folder = tmp_path_factory.mktemp("static")
    collect_static(folder)
    return folder


@pytest.fixture
def private_redis(tmp_path):
    redis = PrivateRedis(tmp_path)
    redis.start()
    yield redis
    redis.kill()


def redis_transport_options() -> dict:
    return {"visibility_timeout": settings.CELERY_TASK_TIME_LIMIT + 5 * 60}


@contextmanager
def celery_broker(url: str, transport_options: dict | None = None):
    """Publish from this process to another broker (a private Redis, or a filesystem broker
    with ``transport_options`` naming its folders) for the duration.

    The Celery app keeps connection and producer pools for the broker it was configured
    with (in kombu's registry too); they are closed and forgotten on the way in and out, so
    nothing is published to the wrong broker or through a closed pool.
    """
    from kombu import pools

    from reviewapp.celery import app

    def forget_connections() -> None:
        pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    # Celery reads the CELERY_BROKER_URL environment variable before its configuration.
    saved = os.environ.get("CELERY_BROKER_URL"), app.conf.broker_url, app.conf.broker_transport_options
    forget_connections()
    os.environ["CELERY_BROKER_URL"] = url
    app.conf.broker_url = url
    app.conf.broker_transport_options = transport_options or redis_transport_options()
    try:
        yield app
    finally:
        forget_connections()
        environment, app.conf.broker_url, app.conf.broker_transport_options = saved
        if environment is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = environment
