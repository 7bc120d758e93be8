"""English dates as the newsroom prints them: 30 November 2026, day first."""

DATE_FORMAT = "j F Y"
DATETIME_FORMAT = "j F Y, H:i T"
