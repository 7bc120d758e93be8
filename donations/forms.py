"""The donate form and the manage-giving email form: validation only, no writes."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from donations.models import (
    Appeal,
    Frequency,
    Gift,
    Placement,
    default_amounts_annual,
    default_amounts_monthly,
    default_amounts_one_time,
)
from donations.money import AmountInvalid, format_cents, parse_amount
from donations.services import GiftRequest
from newsroom.models import Article
from newsroom.parsing import parse_int
from newsroom.text import clean_line

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
OTHER = "other"


def _too_large(high: int) -> str:
    return _(
        "For a gift above %(amount)s, please write to us: we would like to thank you in person."
    ) % {"amount": format_cents(high)}


def preset_amounts(*, appeal: Appeal | None, frequency: str) -> list[int]:
    """The suggested amounts for a frequency: the appeal's, or the newsroom's defaults."""
    amounts = appeal.amounts_for(frequency) if appeal else []
    if not amounts:
        amounts = {
            Frequency.ONE_TIME: default_amounts_one_time(),
            Frequency.MONTHLY: default_amounts_monthly(),
            Frequency.ANNUAL: default_amounts_annual(),
        }[frequency]
    low, high = settings.DONATION_MIN_CENTS, settings.DONATION_MAX_CENTS
    return [int(a) for a in amounts if low <= int(a) <= high]


class DonateForm(forms.Form):
    frequency = forms.ChoiceField(choices=Frequency.choices, widget=forms.HiddenInput)
    amount = forms.ChoiceField(label=gettext_lazy("Your gift"), widget=forms.RadioSelect)
    # No max_length: a long number gets clean_custom_amount's message, not a length rule.
    custom_amount = forms.CharField(
        label=gettext_lazy("Another amount"),
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "size": 8}),
    )
    cover_fee = forms.BooleanField(required=False)
    name = forms.CharField(
        label=gettext_lazy("Your name"),
        max_length=120,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    email = forms.EmailField(
        label=gettext_lazy("Your email"),
        max_length=254,
        help_text=gettext_lazy("For your receipt."),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        error_messages={
            "required": gettext_lazy(
                "Please enter your email address, so we can send your receipt."
            ),
            "invalid": gettext_lazy("Please enter a valid email address, like name@example.com."),
        },
    )
    anonymous = forms.BooleanField(label=gettext_lazy("Keep my gift anonymous"), required=False)
    dedication = forms.ChoiceField(
        label=gettext_lazy("Dedicate this gift"),
        choices=[
            ("", gettext_lazy("No dedication")),
            *[(v, label) for v, label in Gift.Dedication.choices if v],
        ],
        required=False,
        widget=forms.RadioSelect,
    )
    honoree_name = forms.CharField(label=gettext_lazy("Their name"), max_length=120, required=False)
    honoree_email = forms.EmailField(
        label=gettext_lazy("Their email (optional)"),
        required=False,
        help_text=gettext_lazy("We will tell them about your gift, without the amount."),
        error_messages={
            "invalid": gettext_lazy(
                "Please enter a valid email address for them, or leave it empty."
            )
        },
    )
    # A honeypot: people never see it (it is hidden and out of the tab order); bots fill it.
    website = forms.CharField(label=gettext_lazy("Leave this field empty"), required=False)
    appeal = forms.CharField(required=False, widget=forms.HiddenInput)
    placement = forms.ChoiceField(
        choices=[("", ""), *Placement.choices], required=False, widget=forms.HiddenInput
    )
    article = forms.CharField(required=False, widget=forms.HiddenInput)
    utm_source = forms.CharField(required=False, max_length=100, widget=forms.HiddenInput)
    utm_medium = forms.CharField(required=False, max_length=100, widget=forms.HiddenInput)
    utm_campaign = forms.CharField(required=False, max_length=100, widget=forms.HiddenInput)
    utm_term = forms.CharField(required=False, max_length=100, widget=forms.HiddenInput)
    utm_content = forms.CharField(required=False, max_length=100, widget=forms.HiddenInput)

    def __init__(self, *args, presets: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.presets = presets
        self.fields["amount"].choices = [
            *[(str(cents), format_cents(cents)) for cents in presets],
            (OTHER, _("Another amount")),
        ]
        self.fields["amount"].error_messages["required"] = _("Please choose an amount.")
        self.fields["amount"].error_messages["invalid_choice"] = _("Please choose an amount.")
        self.fields["frequency"].error_messages["invalid_choice"] = _(
            "Please choose one-time, monthly or annual."
        )

    @property
    def is_honeypot_filled(self) -> bool:
        return bool((self.data.get("website") or "").strip())

    def clean_custom_amount(self) -> int | None:
        raw = (self.cleaned_data.get("custom_amount") or "").strip()
        if not raw:
            return None
        try:
            return parse_amount(raw)
        except AmountInvalid as exc:
            raise forms.ValidationError(str(exc)) from None

    # Names reach receipts and the honoree's note: one line each, no control characters.
    def clean_name(self) -> str:
        return clean_line(self.cleaned_data.get("name"))

    def clean_honoree_name(self) -> str:
        return clean_line(self.cleaned_data.get("honoree_name"))

    def clean_appeal(self) -> int | None:
        pk = parse_int(self.cleaned_data.get("appeal"), minimum=1)
        return pk if pk and Appeal.objects.filter(pk=pk).exists() else None

    def clean_article(self) -> int | None:
        pk = parse_int(self.cleaned_data.get("article"), minimum=1)
        return pk if pk and Article.objects.filter(pk=pk).exists() else None

    def clean(self) -> dict:
        data = super().clean()
        choice = data.get("amount")
        if choice == OTHER:
            cents = data.get("custom_amount")
            if cents is None and "custom_amount" not in self.errors:
                self.add_error(
                    "custom_amount", _("Please enter the amount you would like to give.")
                )
        elif choice:
            cents = int(choice)
        else:
            cents = None
        if cents is not None:
            low, high = settings.DONATION_MIN_CENTS, settings.DONATION_MAX_CENTS
            if cents < low:
                self.add_error(
                    "custom_amount" if choice == OTHER else "amount",
                    _("The smallest gift we can take online is %(amount)s.")
                    % {"amount": format_cents(low)},
                )
            elif cents > high:
                self.add_error("custom_amount" if choice == OTHER else "amount", _too_large(high))
            else:
                data["amount_cents"] = cents
        if data.get("dedication") and not (data.get("honoree_name") or "").strip():
            self.add_error("honoree_name", _("Please tell us who this gift honours or remembers."))
        return data

    def gift_request(self, *, language: str) -> GiftRequest:
        data = self.cleaned_data
        return GiftRequest(
            language=language,
            amount_cents=data["amount_cents"],
            frequency=data["frequency"],
            email=data["email"].strip(),
            cover_fee=data["cover_fee"],
            name=data["name"].strip(),
            anonymous=data["anonymous"],
            dedication=data.get("dedication") or "",
            honoree_name=data["honoree_name"].strip(),
            honoree_email=data.get("honoree_email") or "",
            appeal_id=data.get("appeal"),
            placement=data.get("placement") or "",
            article_id=data.get("article"),
            utm={key: data[key] for key in UTM_FIELDS if data.get(key)},
        )


class ManageLinkForm(forms.Form):
    email = forms.EmailField(
        label=gettext_lazy("The email address you gave with"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        error_messages={
            "required": gettext_lazy("Please enter your email address."),
            "invalid": gettext_lazy("Please enter a valid email address, like name@example.com."),
        },
    )
