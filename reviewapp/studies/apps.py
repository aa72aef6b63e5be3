from django.apps import AppConfig


class StudiesConfig(AppConfig):
    name = "reviewapp.studies"
    label = "studies"
