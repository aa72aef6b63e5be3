"""Forms of the researcher's item pages: uploads, gold labels, probe rationales."""

from __future__ import annotations

from django import forms

from .parsing import ALL_FORMATS


class ProbeRationaleForm(forms.Form):
    rationale = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=100_000,
        help_text="The AI's reasoning for the planted answer, written as the AI writes it for real items.",
    )


class GoldForm(forms.Form):
    gold_label = forms.CharField(max_length=200, required=False, help_text="Empty clears the gold label.")


class UploadForm(forms.Form):
    file = forms.FileField(
        help_text=".jsonl / .ndjson (one record per line) or .json (a document), optionally .gz; or Inspect .eval"
    )
    format = forms.ChoiceField(
        choices=[("", "detect / per record")] + [(f, f) for f in ALL_FORMATS],
        required=False,
    )
    skip_invalid = forms.BooleanField(required=False, label="Import valid records even if some are invalid")
