"""Staff CSV exports: streamed row by row, safe to open in a spreadsheet, and audited."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from newsroom import audit
from newsroom.models import AuditEntry

# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, "CSV
# Injection"): a donor named "=HYPERLINK(...)" must stay text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """The value as CSV text, with a leading apostrophe where it could start a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


class _Echo:
    """A file whose write() hands the line back, so csv.writer can feed a stream
    (Django docs, "Streaming large CSV files")."""

    def write(self, value: str) -> str:
        return value


def require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied(f"Exporting needs the {permission} permission.")


def csv_export(
    *,
    request: HttpRequest,
    action: str,
    name: str,
    header: Sequence[str],
    rows: Iterable[Sequence],
    row_count: int,
    details: dict | None = None,
) -> StreamingHttpResponse:
    """Record the export in the audit trail, then stream `rows` as `<name>-<date>.csv`.

    The entry is written before the first byte leaves, with the number of rows the
    filter matched; when the last row has been sent it also records how many were
    written, so an interrupted download shows as one.
    """
    with transaction.atomic():
        entry = audit.audit_record(
            action=action,
            actor=audit.request_actor(request),
            object_type=name,
            object_repr=f"{row_count} row(s)",
            details={"rows": row_count, **(details or {})},
        )
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        written = 0
        for row in rows:
            yield writer.writerow([csv_cell(value) for value in row])
            written += 1
        AuditEntry.objects.filter(pk=entry.pk).update(
            details={**entry.details, "rows_written": written, "completed": True}
        )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    filename = f"{name}-{timezone.localdate():%Y-%m-%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response
