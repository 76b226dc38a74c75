"""Appending to a JSON list kept as text."""

from __future__ import annotations

import json

from server.json_lists import appended


def test_an_item_goes_at_the_end_of_the_list() -> None:
    listed = appended(appended("[]", '{"user":"ada"}'), '{"user":"bob"}')
    assert listed == '[{"user":"ada"},{"user":"bob"}]'
    assert json.loads(appended(listed, '"cy"')) == [{"user": "ada"}, {"user": "bob"}, "cy"]
