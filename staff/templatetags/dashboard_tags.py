"""`{% staff_dashboard %}`: the admin front page's figures, charts and tables."""

from __future__ import annotations

from datetime import timedelta

from django import template
from django.urls import reverse

from donations.money import format_cents
from staff import charts, dashboard

register = template.Library()


def money(cents: float) -> str:
    return format_cents(round(cents))


def percent(rate: float | None, digits: int = 1) -> str:
    return "\N{EN DASH}" if rate is None else f"{rate:.{digits}%}"


def _money_charts(figures: dict) -> dict:
    days = figures["gift_days"]
    labels = [f"{d.day:%d %b}" for d in days]
    gifts = charts.stacked_columns(
        slug="chart-gifts",
        title=f"Gifts per day, last {len(days)} days",
        desc=(
            f"{sum(d.one_time for d in days):,} one-time and {sum(d.recurring for d in days):,} "
            f"recurring gifts from {days[0].day:%d %B} to {days[-1].day:%d %B %Y}. "
            "The table below lists each day."
        ),
        labels=labels,
        series=[
            charts.Series("one-time", [d.one_time for d in days]),
            charts.Series("recurring", [d.recurring for d in days]),
        ],
    )
    revenue = charts.stacked_columns(
        slug="chart-revenue",
        title=f"Revenue per day, last {len(days)} days",
        desc=(
            f"{money(sum(d.one_time_cents for d in days))} from one-time gifts and "
            f"{money(sum(d.recurring_cents for d in days))} from recurring gifts, net of refunds. "
            "The table below lists each day."
        ),
        labels=labels,
        series=[
            charts.Series("one-time", [d.one_time_cents for d in days]),
            charts.Series("recurring", [d.recurring_cents for d in days]),
        ],
        fmt=money,
    )
    return {"gifts": gifts, "revenue": revenue}


def _funnel_charts(funnels: list[dashboard.Funnel]) -> dict:
    labels = [f.name for f in funnels]
    steps = charts.grouped_bars(
        slug="chart-funnel",
        title="Each appeal's funnel, step by step",
        desc=(
            "For each appeal: the share of impressions that were clicked, of clicks that "
            "started a checkout, and of checkouts that became a gift. The table below has "
            "every count."
        ),
        labels=labels,
        series=[
            charts.Series("clicked (of impressions)", [f.click_rate or 0 for f in funnels]),
            charts.Series("started checkout (of clicks)", [f.checkout_rate or 0 for f in funnels]),
            charts.Series("gave (of checkouts)", [f.completion_rate or 0 for f in funnels]),
        ],
        fmt=lambda v: f"{v:.1%}",
        top=1,
    )
    rpm = charts.grouped_bars(
        slug="chart-rpm",
        title="Revenue per thousand impressions, by appeal",
        desc="What each appeal raised for every thousand times it was shown.",
        labels=labels,
        series=[
            charts.Series("revenue per 1,000 impressions", [f.rpm_cents or 0 for f in funnels])
        ],
        fmt=money,
    )
    return {"steps": steps, "rpm": rpm}


def _audience_charts(figures: dict) -> dict:
    ends = figures["week_ends"]
    growth = figures["growth"]
    # A week ending at midnight is labelled with its last day.
    labels = [f"{(end - timedelta(days=1)):%d %b}" for end in ends]
    subscribers = charts.lines(
        slug="chart-subscribers",
        title=f"Confirmed subscribers per newsletter, last {len(ends)} weeks",
        desc="; ".join(
            f"{g.name}: {g.counts[0]:,} on {labels[0]}, {g.counts[-1]:,} on {labels[-1]}"
            for g in growth
        )
        or "No newsletters yet.",
        labels=labels,
        series=[charts.Series(g.name, g.counts) for g in growth],
    )
    confirmation = charts.grouped_bars(
        slug="chart-confirmation",
        title=f"Confirmation rate of new signups, last {figures['signup_days']} days",
        desc="; ".join(f"{g.name}: {g.confirmed:,} of {g.signups:,} confirmed" for g in growth)
        or "No newsletters yet.",
        labels=[g.name for g in growth],
        series=[charts.Series("confirmed", [g.confirmation_rate or 0 for g in growth])],
        fmt=lambda v: f"{v:.0%}",
        top=1,
    )
    return {"subscribers": subscribers, "confirmation": confirmation, "labels": labels}


def _edition_charts(editions: list[dashboard.EditionStats]) -> dict:
    labels = [f"{e.newsletter} {e.date:%d %b}" for e in editions]
    return {
        "reactions": charts.grouped_bars(
            slug="chart-editions",
            title="Readers' reactions to the last editions",
            desc=(
                "For each edition, readers who opened it, clicked a link, bounced, "
                "complained or unsubscribed. The table below has the numbers and the "
                "deliveries still in doubt."
            ),
            labels=labels,
            series=[
                charts.Series("opened", [e.opened for e in editions]),
                charts.Series("clicked", [e.clicked for e in editions]),
                charts.Series("bounced", [e.bounced for e in editions]),
                charts.Series("complained", [e.complained for e in editions]),
                charts.Series("unsubscribed", [e.unsubscribed for e in editions]),
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
