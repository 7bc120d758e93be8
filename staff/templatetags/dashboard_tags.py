"""`{% staff_dashboard %}`: the admin front page's figures, charts and tables."""

from __future__ import annotations

from datetime import timedelta

from django import template
from django.urls import reverse
from django.utils.dateformat import format as date_format
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from donations.models import Frequency
from donations.money import format_cents
from staff import charts, dashboard

register = template.Library()


def money(cents: float) -> str:
    return format_cents(round(cents))


def percent(rate: float | None, digits: int = 1) -> str:
    return "\N{EN DASH}" if rate is None else f"{rate:.{digits}%}"


def _money_charts(figures: dict) -> dict:
    days = figures["gift_days"]
    labels = [date_format(d.day, "j M") for d in days]
    gifts = charts.stacked_columns(
        slug="chart-gifts",
        title=ngettext(
            "Gifts per day, last {days} day", "Gifts per day, last {days} days", len(days)
        ).format(days=len(days)),
        desc=_(
            "{one_time} one-time and {recurring} recurring gifts from {first} to {last}. "
            "The table below lists each day."
        ).format(
            one_time=number_format(sum(d.one_time for d in days), force_grouping=True),
            recurring=number_format(sum(d.recurring for d in days), force_grouping=True),
            first=date_format(days[0].day, "j F"),
            last=date_format(days[-1].day, "j F Y"),
        ),
        labels=labels,
        series=[
            charts.Series(_("one-time"), [d.one_time for d in days]),
            charts.Series(_("recurring"), [d.recurring for d in days]),
        ],
    )
    revenue = charts.stacked_columns(
        slug="chart-revenue",
        title=ngettext(
            "Revenue per day, last {days} day", "Revenue per day, last {days} days", len(days)
        ).format(days=len(days)),
        desc=_(
            "{one_time} from one-time gifts and {recurring} from recurring gifts, net of "
            "refunds. The table below lists each day."
        ).format(
            one_time=money(sum(d.one_time_cents for d in days)),
            recurring=money(sum(d.recurring_cents for d in days)),
        ),
        labels=labels,
        series=[
            charts.Series(_("one-time"), [d.one_time_cents for d in days]),
            charts.Series(_("recurring"), [d.recurring_cents for d in days]),
        ],
        fmt=money,
    )
    return {"gifts": gifts, "revenue": revenue}


def _funnel_charts(funnels: list[dashboard.Funnel]) -> dict:
    labels = [f.name for f in funnels]
    steps = charts.grouped_bars(
        slug="chart-funnel",
        title=_("Each appeal's funnel, step by step"),
        desc=_(
            "For each appeal: the share of impressions that were clicked, of clicks that "
            "started a checkout, and of checkouts that became a gift. The table below has "
            "every count."
        ),
        labels=labels,
        series=[
            charts.Series(_("clicked (of impressions)"), [f.click_rate or 0 for f in funnels]),
            charts.Series(
                _("started checkout (of clicks)"), [f.checkout_rate or 0 for f in funnels]
            ),
            charts.Series(_("gave (of checkouts)"), [f.completion_rate or 0 for f in funnels]),
        ],
        fmt=lambda v: f"{v:.1%}",
        top=1,
    )
    rpm = charts.grouped_bars(
        slug="chart-rpm",
        title=_("Revenue per thousand impressions, by appeal"),
        desc=_("What each appeal raised for every thousand times it was shown."),
        labels=labels,
        series=[
            charts.Series(_("revenue per 1,000 impressions"), [f.rpm_cents or 0 for f in funnels])
        ],
        fmt=money,
    )
    return {"steps": steps, "rpm": rpm}


def _audience_charts(figures: dict) -> dict:
    ends = figures["week_ends"]
    growth = figures["growth"]
    # A week ending at midnight is labelled with its last day.
    labels = [date_format(end - timedelta(days=1), "j M") for end in ends]
    subscribers = charts.lines(
        slug="chart-subscribers",
        title=ngettext(
            "Confirmed subscribers per newsletter, last {weeks} week",
            "Confirmed subscribers per newsletter, last {weeks} weeks",
            len(ends),
        ).format(weeks=len(ends)),
        desc="; ".join(
            _("{name}: {first} on {first_day}, {last} on {last_day}").format(
                name=g.name,
                first=number_format(g.counts[0], force_grouping=True),
                first_day=labels[0],
                last=number_format(g.counts[-1], force_grouping=True),
                last_day=labels[-1],
            )
            for g in growth
        )
        or _("No newsletters yet."),
        labels=labels,
        series=[charts.Series(g.name, g.counts) for g in growth],
    )
    confirmation = charts.grouped_bars(
        slug="chart-confirmation",
        title=ngettext(
            "Confirmation rate of new signups, last {days} day",
            "Confirmation rate of new signups, last {days} days",
            figures["signup_days"],
        ).format(days=figures["signup_days"]),
        desc="; ".join(
            _("{name}: {confirmed} of {signups} confirmed").format(
                name=g.name,
                confirmed=number_format(g.confirmed, force_grouping=True),
                signups=number_format(g.signups, force_grouping=True),
            )
            for g in growth
        )
        or _("No newsletters yet."),
        labels=[g.name for g in growth],
        series=[charts.Series(_("confirmed"), [g.confirmation_rate or 0 for g in growth])],
        fmt=lambda v: f"{v:.0%}",
        top=1,
    )
    return {"subscribers": subscribers, "confirmation": confirmation, "labels": labels}


def _edition_charts(editions: list[dashboard.EditionStats]) -> dict:
    labels = [f"{e.newsletter} {date_format(e.date, 'j M')}" for e in editions]
    return {
        "reactions": charts.grouped_bars(
            slug="chart-editions",
            title=_("Readers' reactions to the last editions"),
            desc=_(
                "For each edition, readers who opened it, clicked a link, bounced, "
                "complained or unsubscribed. The table below has the numbers and the "
                "deliveries still in doubt."
            ),
            labels=labels,
            series=[
                charts.Series(_("opened"), [e.opened for e in editions]),
                charts.Series(_("clicked"), [e.clicked for e in editions]),
                charts.Series(_("bounced"), [e.bounced for e in editions]),
                charts.Series(_("complained"), [e.complained for e in editions]),
                charts.Series(_("unsubscribed"), [e.unsubscribed for e in editions]),
            ],
        )
    }


@register.inclusion_tag("staff/dashboard.html", takes_context=True)
def staff_dashboard(context) -> dict:
    """The sections the signed-in staff member may see, charts drawn, tables ready."""
    user = context["request"].user
    figures = dashboard.dashboard_for(user)
    shown = figures["shown"]
    figures["can_export_donors"] = user.has_perm("donations.export_donors")
    figures["can_export_subscribers"] = user.has_perm("subscriptions.export_subscribers")
    drawn: dict = {}
    if shown["money"]:
        drawn["money"] = _money_charts(figures)
        days = figures["gift_days"]
        figures["totals"] = {
            "one_time": sum(d.one_time for d in days),
            "recurring": sum(d.recurring for d in days),
            "one_time_cents": sum(d.one_time_cents for d in days),
            "recurring_cents": sum(d.recurring_cents for d in days),
        }
        figures["gift_days_newest_first"] = list(reversed(days))
        figures["plans_url"] = reverse("admin:donations_recurringplan_changelist")
    if shown["appeals"] and figures["funnels"]:
        drawn["funnels"] = _funnel_charts(figures["funnels"])
    if shown["audience"]:
        drawn["audience"] = _audience_charts(figures)
    if shown["editions"] and figures["editions"]:
        drawn["editions"] = _edition_charts(figures["editions"])
    return {**figures, "charts": drawn}


@register.filter
def cents(value) -> str:
    return money(value or 0)


@register.filter
def rate(value, digits: int = 1) -> str:
    return percent(value, int(digits))


@register.filter
def frequency(value: str) -> str:
    """A plan's frequency as donors read it, in the page's language."""
    return Frequency(value).label if value in Frequency.values else value
