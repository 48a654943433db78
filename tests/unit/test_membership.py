"""GROUP_INSTANCE_ID: the ``group.instance.id`` a worker joins its group with (static
membership), and clear refusals of a value the broker could not take."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from app.engine.identity import worker_id
from app.main import create_app
from app.membership import AUTO, instance_id
from app.settings import Settings


def test_unset_is_dynamic_membership_and_a_name_is_used_as_it_is():
    never = lambda: pytest.fail("no worker id is made for a fixed or unset id")  # noqa: E731
    assert instance_id(None, "pa", never) is None
    assert instance_id("worker-a", "pa", never) == "worker-a"
    assert instance_id(AUTO, "pa", lambda: "0123456789ab") == "pa-0123456789ab"


def test_auto_differs_per_data_dir_and_stays_across_restarts(tmp_path):
    ids = {
        name: instance_id(AUTO, "pa", lambda d=tmp_path / name: worker_id(d)) for name in ("w1", "w2")
    }
    assert ids["w1"] != ids["w2"] and all(i.startswith("pa-") for i in ids.values())
    again = instance_id(AUTO, "pa", lambda: worker_id(tmp_path / "w1"))
    assert again == ids["w1"]


def test_the_faust_consumer_is_given_the_instance_id(tmp_path):
    app = create_app(Settings(app_id="pa-static", worker_data_dir=tmp_path, group_instance_id=AUTO))
    assert app.conf.consumer_group_instance_id == f"pa-static-{worker_id(tmp_path)}"
    assert create_app(Settings(app_id="pa-dyn", worker_data_dir=tmp_path)).conf.consumer_group_instance_id is None


@pytest.mark.parametrize("value", ["", None])
def test_empty_is_unset(value):
    assert Settings(group_instance_id=value).group_instance_id is None


@given(st.text(min_size=1, max_size=300))
def test_any_value_is_taken_as_a_name_or_refused_naming_what_is_allowed(text):
    allowed = len(text) <= 200 and all(c.isascii() and (c.isalnum() or c in "._-") for c in text)
    try:
        settings = Settings(group_instance_id=text)
    except ValidationError as exc:
        assert not allowed, text
        assert "`auto` or 1-200 letters, digits" in str(exc)
    else:
        assert allowed, text
        assert settings.group_instance_id == text
