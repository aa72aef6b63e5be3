from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "reviewapp.ingest"
    label = "ingest"
