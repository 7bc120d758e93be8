"""Forms of the subscriptions pages: they validate, the services decide."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from newsroom.models import Category, Topic
from subscriptions.models import Newsletter
from subscriptions.services import time_zones

SOURCES = ("footer", "newsletters-page")


class LocalNamesField(forms.ModelMultipleChoiceField):
    """Choices named in the page's language: newsletters, categories and topics."""

    def label_from_instance(self, obj) -> str:
        return obj.local_name


class SignupForm(forms.Form):
    email = forms.EmailField(
        label=_("Email address"),
        max_length=254,
        error_messages={
            "required": _("Enter your email address."),
            "invalid": _("Enter a valid email address, like name@example.com."),
        },
    )
    newsletters = LocalNamesField(
        queryset=Newsletter.objects.filter(active=True),
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": _("Choose at least one newsletter."),
            "invalid_choice": _("That newsletter is not available."),
            "invalid_pk_value": _("That newsletter is not available."),
        },
    )
    time_zone = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    # Blank: the language of the page the form was sent from.
    language = forms.ChoiceField(
        label=_("Language of your newsletter"),
        choices=settings.LANGUAGES,
        required=False,
        error_messages={"invalid_choice": _("Choose Arabic, Hebrew or English.")},
    )
    consent_version = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    source = forms.CharField(required=False, max_length=40, widget=forms.HiddenInput)
    # A field people never see: bots that fill every input give themselves away.
    website = forms.CharField(required=False, max_length=200)

    def clean_source(self) -> str:
        source = self.cleaned_data.get("source") or ""
        return source if source in SOURCES else "footer"


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(time_zones())]


class PreferencesForm(forms.Form):
    newsletters = LocalNamesField(
        queryset=Newsletter.objects.filter(active=True),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label=_("Newsletters"),
    )
    categories = LocalNamesField(
        queryset=Category.objects.all(),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label=_("Categories you follow"),
    )
    topics = LocalNamesField(
        queryset=Topic.objects.all(),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label=_("Topics you follow"),
    )
    language = forms.ChoiceField(
        label=_("Language of your newsletter"),
        help_text=_("Your newsletter, its stories and our emails to you come in this language."),
        choices=settings.LANGUAGES,
        required=False,  # left out, the reader's language stays as it is
        error_messages={"invalid_choice": _("Choose Arabic, Hebrew or English.")},
    )
    time_zone = forms.ChoiceField(
        label=_("Your time zone"),
        help_text=_("Newsletters arrive at their morning hour in this time zone."),
        error_messages={"invalid_choice": _("Choose a time zone from the list.")},
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = time_zone_choices()


class FollowForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("category", "category"), ("topic", "topic")],
        error_messages={
            "required": _("Say whether this is a category or a topic."),
            "invalid_choice": _("Only categories and topics can be followed."),
        },
    )
    slug = forms.CharField(
        max_length=200, error_messages={"required": _("Say which category or topic to follow.")}
    )
    action = forms.ChoiceField(
        choices=[("toggle", "toggle"), ("follow", "follow"), ("unfollow", "unfollow")],
        required=False,
    )
    next = forms.CharField(required=False, max_length=2000)


class DeleteForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("Yes, delete everything you hold about this address."),
        error_messages={"required": _("Tick the box to confirm that you want your data deleted.")},
    )
