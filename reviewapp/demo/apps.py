from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo data of `./scripts/run` (`manage.py load_demo`): at the end of the flow,
    since it drives every stage (ingest, queue, review, metrics)."""

    name = "reviewapp.demo"
