"""Times as people and links give them."""

import pytest

from rca.errors import InvalidInput
from rca.timeutil import parse_time

NS = 1_700_001_020_000_000_000


@pytest.mark.parametrize("text", ["2023-11-14T22:30:20Z", "2023-11-14T22:30:20", "1700001020", 1700001020,
                                  "1700001020000", "1700001020000000", str(NS), NS, 1700001020.0])
def test_the_same_instant_in_every_accepted_form(text):
    assert parse_time(text) == NS


@pytest.mark.parametrize("text", ["", "yesterday-ish", "2023-13-40", True])
def test_bad_times_are_clear_errors(text):
    with pytest.raises(InvalidInput):
        parse_time(text)
