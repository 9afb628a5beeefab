"""One module per benchmark; each exposes ``TITLE``, ``ABOUT``, ``ORDER`` and ``run(ctx) -> list[Row]``."""
