from __future__ import annotations

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def appeal_slot(context, placement: str, article=None, paragraph: int | None = None) -> str:
    """Render the appeal chosen for `placement` (after `paragraph` for in-article ones)."""
    return ""
