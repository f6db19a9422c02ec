"""Tests of the board layer (``boards/``)."""

#: Every board of the catalog, in catalog order; a new board is added here too.
NAMES = ["icebreaker", "ulx3s-12f", "ulx3s-25f", "ulx3s-45f", "ulx3s-85f", "orangecrab-25f",
         "orangecrab-85f", "colorlight-5a75b"]
