"""Plain forms for study configuration. Rules that span models live in services.py."""

from __future__ import annotations

import json

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.validators import ASCIIUsernameValidator
from django.core.validators import validate_email

from .models import Arm, Study
from .schema import DEFAULT_FLAG_THRESHOLDS, schema_errors, with_block_value
from .services import DESIGN_FIELDS


class PrettyJSONField(forms.JSONField):
    def prepare_value(self, value):
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


class StudyForm(forms.ModelForm):
    label_schema = PrettyJSONField(
        widget=forms.Textarea(attrs={"rows": 14, "class": "mono"}),
        help_text='Fields of type nominal / ordinal (with "choices") or interval (with "min", "max"); exactly one '
        'has "decision": true, and it may name the answer that blocks the action ("block_value": "reject"), which '
        'the decision-quality metrics need. Optional "confidence": true and "comment": true.',
    )
    flag_thresholds = PrettyJSONField(
        widget=forms.Textarea(attrs={"rows": 8, "class": "mono"}),
        required=False,
        help_text="Rubber-stamp thresholds; a reviewer is flagged when two or more are crossed.",
    )
    overlap_k = forms.IntegerField(min_value=1, max_value=50, label="Overlap k (reviewers per item)")
    lease_seconds = forms.IntegerField(min_value=30, max_value=24 * 3600, label="Lease length (seconds)")
    probe_rate = forms.FloatField(min_value=0, max_value=1, help_text="Share of items turned into probes, 0 to 1.")
    reading_wpm = forms.IntegerField(min_value=50, max_value=2000, label="Reading-speed floor (words per minute)")
    reviewer_quota = forms.IntegerField(
        min_value=1,
        required=False,
        label="Items per reviewer (quota)",
        help_text="The most items one reviewer may label; empty for no limit. An arm can set its own.",
    )
    item_order = forms.ChoiceField(
        choices=Study.ItemOrder.choices,
        required=False,
        label="Item order",
        help_text="Shuffled: each reviewer meets the items in their own seeded order, so an item's position is "
        "balanced across reviewers (higher priority still comes first). Fixed: everyone in the same order.",
    )
    reviewer_share_warning = forms.FloatField(
        required=False,
        min_value=0.01,
        max_value=1,
        label="Warn when one reviewer gave more than this share of an arm's labels",
        help_text="0 to 1; e.g. 0.25 warns when one person gave over a quarter of an arm's labels.",
    )

    confidence_level = forms.FloatField(
        required=False,
        label="Confidence level of every interval",
        help_text="Strictly between 0 and 1, e.g. 0.95 for 95% intervals (0.9 and 0.99 are common too).",
    )
    min_reviewers_for_interval = forms.IntegerField(
        required=False,
        min_value=2,
        max_value=1000,
        label="Minimum reviewers per arm for an interval",
        help_text="Below this, an arm's rates and contrasts show no interval, only “too few reviewers (n) for an "
        "interval”: with fewer reviewers, intervals over reviewers do not hold (Cameron & Miller 2015). Default 5.",
    )

    class Meta:
        model = Study
        fields = [
            "title",
            "slug",
            "instructions",
            "label_schema",
            "design",
            "stratify_by",
            "overlap_k",
            "lease_seconds",
            "probe_rate",
            "reading_wpm",
            "flag_thresholds",
            "seed",
            "item_order",
            "hide_item_titles",
            "reviewer_quota",
            "reviewer_share_warning",
            "confidence_level",
            "min_reviewers_for_interval",
        ]
        widgets = {"instructions": forms.Textarea(attrs={"rows": 6})}
        labels = {"hide_item_titles": "Hide item titles from reviewers"}
        help_texts = {
            "hide_item_titles": "A title can lead the answer; hidden, reviewers see only the transcript.",
        }

    def __init__(self, *args, locked_reason: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.pk:
            # A ModelForm for a new object starts empty; start from the model's defaults.
            for name in self.Meta.fields:
                self.initial.setdefault(name, getattr(self.instance, name))
            self.initial["flag_thresholds"] = self.initial.get("flag_thresholds") or DEFAULT_FLAG_THRESHOLDS
        else:
            # The slug is in every URL and token scope; it does not change.
            self.fields["slug"].disabled = True
        if locked_reason:
            for name in DESIGN_FIELDS:
                self.fields[name].disabled = True
                self.fields[name].help_text = locked_reason
            self._offer_block_value()

    def _offer_block_value(self) -> None:
        """With the schema locked, the block value (analysis only) can still be chosen here."""
        fields = self.instance.label_schema.get("fields", [])
        decision = next((f for f in fields if isinstance(f, dict) and f.get("decision") is True), {})
        if not isinstance(decision.get("choices"), list):
            return
        self.fields["block_value"] = forms.ChoiceField(
            choices=[("", "None: no decision-quality metrics")] + [(c, c) for c in decision["choices"]],
            required=False,
            initial=decision.get("block_value", ""),
            label="Answer that blocks the action",
            help_text="Analysis only, so it can change after the lock: which answer of the decision field the "
            "decision-quality metrics (catch rate, false blocks) count as blocking the agent's action.",
        )

    def clean(self):
        cleaned = super().clean()
        if "block_value" in self.fields and "block_value" in self.changed_data:
            cleaned["label_schema"] = with_block_value(self.instance.label_schema, cleaned.get("block_value"))
        return cleaned

    def changes(self) -> dict:
        """The model fields this post changes, by name (a new block value changes the label schema)."""
        names = [name for name in self.changed_data if name in self.Meta.fields]
        if "block_value" in self.changed_data:
            names.append("label_schema")
        return {name: self.cleaned_data[name] for name in dict.fromkeys(names)}

    def clean_reviewer_share_warning(self):
        # Left empty (or not sent): keep what the study has.
        value = self.cleaned_data.get("reviewer_share_warning")
        return self.instance.reviewer_share_warning if value is None else value

    def clean_confidence_level(self):
        value = self.cleaned_data.get("confidence_level")
        if value is None:  # left empty (or not sent): keep what the study has
            return self.instance.confidence_level
        # 1 would ask for infinitely wide intervals (it came out as NaN); 0 for none at all.
        if not 0 < value < 1:
            raise forms.ValidationError(
                "The confidence level must be strictly between 0 and 1, e.g. 0.95 for 95% intervals."
            )
        return value

    def clean_min_reviewers_for_interval(self):
        value = self.cleaned_data.get("min_reviewers_for_interval")
        return self.instance.min_reviewers_for_interval if value is None else value

    def clean_item_order(self):
        return self.cleaned_data.get("item_order") or self.instance.item_order

    def clean_label_schema(self):
        schema = self.cleaned_data["label_schema"]
        errors = schema_errors(schema)
        if errors:
            raise forms.ValidationError(errors)
        return schema

    def clean_flag_thresholds(self):
        thresholds = self.cleaned_data.get("flag_thresholds") or {}
        if not isinstance(thresholds, dict):
            raise forms.ValidationError("Thresholds must be a JSON object of name: number.")
        bad = [k for k, v in thresholds.items() if isinstance(v, bool) or not isinstance(v, (int, float))]
        if bad:
            raise forms.ValidationError(f"Thresholds must be numbers; not: {', '.join(bad)}.")
        return thresholds


class StudyCreateForm(StudyForm):
    three_arm_preset = forms.BooleanField(
        required=False,
        initial=True,
        label="Create the classic three arms (control, recommendation, recommendation + rationale)",
    )


class ArmForm(forms.ModelForm):
    weight = forms.IntegerField(min_value=0, max_value=100)
    rationale_display = forms.ChoiceField(
        choices=Arm.RationaleDisplay.choices, required=False, initial=Arm.RationaleDisplay.EXPANDED
    )
    reviewer_quota = forms.IntegerField(min_value=1, required=False)

    def clean_rationale_display(self):
        # Expanded unless asked otherwise: a rationale behind a click is a weaker treatment.
        return self.cleaned_data.get("rationale_display") or Arm.RationaleDisplay.EXPANDED

    class Meta:
        model = Arm
        fields = [
            "name",
            "weight",
            "shows_ai_recommendation",
            "shows_ai_rationale",
            "rationale_display",
            "shows_ai_confidence",
            "reveal",
            "reviewer_quota",
        ]
        labels = {
            "shows_ai_recommendation": "Recommendation",
            "shows_ai_rationale": "Rationale",
            "rationale_display": "Rationale shown",
            "reviewer_quota": "Quota",
            "shows_ai_confidence": "Confidence",
            "reveal": "Reveal mode",
        }


ArmFormSet = forms.modelformset_factory(Arm, form=ArmForm, extra=1, can_delete=True)


class EnrolForm(forms.Form):
    usernames = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One username per line (existing reviewer accounts).",
    )

    def clean_usernames(self):
        names = [line.strip() for line in self.cleaned_data["usernames"].splitlines() if line.strip()]
        users = {u.get_username(): u for u in get_user_model().objects.filter(username__in=names)}
        missing = [n for n in names if n not in users]
        if missing:
            raise forms.ValidationError(f"No such accounts: {', '.join(missing)}.")
        return [users[n] for n in names]


class InvitationForm(forms.Form):
    KINDS = [
        ("personal", "Personal links: one per email address, each used once"),
        ("single-use", "One single-use link"),
        ("open", "An open link anyone who has it can use"),
    ]
    kind = forms.ChoiceField(
        choices=KINDS,
        initial="personal",
        widget=forms.RadioSelect,
        label="Link type",
        help_text="Open links cannot stop one person joining twice under two accounts (and landing in two arms); "
        "the app refuses a second account from the same browser and lists look-alike sign-ups below.",
    )
    emails = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Personal links: one email address per line (or separated by commas).",
    )
    label = forms.CharField(max_length=100, required=False, help_text="For you, e.g. 'pilot cohort'.")
    max_uses = forms.IntegerField(min_value=1, required=False, help_text="Open links: empty means unlimited.")
    stratum_value = forms.CharField(
        max_length=100, required=False, help_text="Value of the stratification attribute for everyone joining here."
    )

    def clean_emails(self):
        raw = self.cleaned_data["emails"].replace(",", "\n")
        emails = [line.strip().lower() for line in raw.splitlines() if line.strip()]
        bad = []
        for email in emails:
            try:
                validate_email(email)
            except forms.ValidationError:
                bad.append(email)
        if bad:
            raise forms.ValidationError(f"Not email addresses: {', '.join(bad[:10])}.")
        if len(emails) > 1000:
            raise forms.ValidationError("At most 1,000 addresses at a time.")
        return emails

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") == "personal" and not cleaned.get("emails"):
            self.add_error("emails", "Give the email addresses to make personal links for.")
        return cleaned


class ReviewerSignupForm(UserCreationForm):
    """Sign-up through an invitation link.

    Usernames are plain ASCII letters, digits and @ . + - _ (Django's form already refuses
    one that differs from another only in case), so no account can pass for another in a list
    of names: a Cyrillic U+0430 for "a", say. A personal link fixes the email address.
    """

    email = forms.EmailField(required=False, help_text="Optional, unless your invitation was sent to you by email.")

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")

    def __init__(self, *args, invitation_email: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].validators.append(ASCIIUsernameValidator())
        self.fields["username"].help_text = "Letters (a-z), digits and @ . + - _ only; 150 characters at most."
        self.invitation_email = invitation_email
        if invitation_email:
            self.fields["email"].initial = invitation_email
            self.fields["email"].disabled = True
            self.fields["email"].help_text = "The address this personal link was made for."

    def clean_email(self):
        return self.invitation_email or self.cleaned_data.get("email", "")


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Who uses it, e.g. 'eval pipeline'.")
