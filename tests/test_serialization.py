"""The converter: enum-safe, subclass-safe, strict, and clear about what failed where."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from decimal import Decimal

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flujo_trio import PipelineContext, SerializationError
from flujo_trio.serialization import converter, make_flujo_converter, structure, unstructure
from tests.models import Address, Color, DeeperContext, Mood, Priority, Profile, RichContext

texts = st.text(max_size=10)
addresses = st.builds(Address, city=texts, zip_code=st.none() | texts)
profiles = st.builds(
    Profile,
    name=texts,
    color=st.sampled_from(Color),
    address=st.none() | addresses,
    tags=st.sets(texts, max_size=3),
)
any_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | texts
    | st.sampled_from(Color)
    | st.sampled_from(Priority)
    | st.sampled_from(Mood)
    | st.floats(allow_nan=False, allow_infinity=False)
    | addresses,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(texts, inner, max_size=3)
    ),
    max_leaves=8,
)


def contexts(cls):
    return st.builds(
        cls,
        color=st.sampled_from(Color),
        priority=st.sampled_from(Priority),
        mood=st.sampled_from(Mood),
        profile=st.none() | profiles,
        when=st.none() | st.datetimes(timezones=st.just(UTC)),
        amount=st.decimals(allow_nan=False, allow_infinity=False, places=4),
        ids=st.sets(st.integers(), max_size=4),
        counts=st.dictionaries(texts, st.integers(), max_size=3),
        maybe=st.none() | st.integers() | texts,
        anything=any_values,
        step_outputs=st.dictionaries(texts, any_values, max_size=3),
    )


@given(context=contexts(RichContext) | contexts(DeeperContext))
def test_contexts_round_trip_as_their_own_subclass(context):
    data = converter.unstructure(context, unstructure_as=PipelineContext)
    back = converter.structure(data, PipelineContext)
    assert type(back) is type(context)
    assert back == context


def test_enums_are_stored_by_value_and_come_back_as_members():
    context = RichContext(color=Color.GREEN, priority=Priority.HIGH, mood=Mood.ANGRY)
    data = converter.unstructure(context, unstructure_as=PipelineContext)
    assert (data["color"], data["priority"], data["mood"]) == ("green", 2, "angry")
    assert type(data["priority"]) is int and type(data["mood"]) is str
    back = converter.structure(data, PipelineContext)
    assert back.color is Color.GREEN and back.priority is Priority.HIGH
    assert back.mood is Mood.ANGRY


def test_subclass_defined_after_the_converter_round_trips():
    @attrs.define
    class LateContext(PipelineContext):
        notes: list[str] = attrs.field(factory=list)
        color: Color = Color.RED

    context = LateContext(notes=["a"], color=Color.GREEN)
    back = converter.structure(
        converter.unstructure(context, unstructure_as=PipelineContext), PipelineContext
    )
    assert isinstance(back, LateContext) and back == context


def test_any_values_keep_their_types():
    value = {
        "t": (1, Color.RED),
        "s": {1, 2},
        "d": Decimal("1.5"),
        "when": datetime(2024, 1, 2),
        "obj": Address("Paris"),
        3: "int key",
    }
    assert converter.structure(converter.unstructure(value, unstructure_as=object), object) == value


def test_a_value_that_cannot_be_stored_names_its_path():
    context = RichContext(anything={"ok": [1, 2, object()]})
    with pytest.raises(SerializationError, match=r"\$\.anything\['ok'\]\[2\] \(object\)"):
        unstructure(context, PipelineContext, what="run 'r1'")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"color": "purple"}, r"'purple' is not a Color.*\$\.color"),
        ({"priority": "2"}, r"\$\.priority"),
        ({"extra_field": 1}, r"extra fields found \(extra_field\)"),
    ],
)
def test_stored_data_that_no_longer_fits_is_an_error_naming_path_and_run(change, match):
    data = converter.unstructure(RichContext(), unstructure_as=PipelineContext)
    data.update(change)
    with pytest.raises(SerializationError, match=match) as info:
        structure(data, PipelineContext, what="run 'r7'")
    assert "run 'r7'" in str(info.value)


def test_missing_field_and_wrong_primitive_types_are_rejected():
    data = converter.unstructure(Profile("n", Color.RED), unstructure_as=Profile)
    del data["name"]
    with pytest.raises(SerializationError, match=r"\$\.name"):
        structure(data, Profile, what="input")
    with pytest.raises(SerializationError, match="expected bool"):
        structure("yes", bool, what="input")
    with pytest.raises(SerializationError, match="expected int"):
        structure(True, int, what="input")


def test_unknown_context_class_is_a_clear_error():
    data = converter.unstructure(RichContext(), unstructure_as=PipelineContext)
    data["__type__"] = "nowhere.Missing"
    with pytest.raises(SerializationError, match=r"class 'nowhere\.Missing'.*register"):
        structure(data, PipelineContext, what="run 'x'")


def test_plain_enum_in_any_position_round_trips_here_and_is_refused_elsewhere():
    class Local(enum.Enum):
        A = "a"

    data = unstructure(Local.A, object, what="v")
    assert structure(data, object, what="v") is Local.A  # this process serialized it
    elsewhere = make_flujo_converter()  # a process that never saw Local
    with pytest.raises(Exception, match="does not allow"):
        elsewhere.structure(data, object)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(context=contexts(RichContext) | contexts(DeeperContext), output=any_values)
def test_contexts_and_outputs_round_trip_through_sqlite(tmp_path_factory, context, output):
    import trio

    from flujo_trio import RunStatus, SqliteStore
    from flujo_trio.state import RunState
    from flujo_trio.state.journal import FieldChange, SavedStep, StepStatus

    store = SqliteStore(tmp_path_factory.mktemp("db") / "runs.db")
    saved = SavedStep(
        ("s",),
        (0,),
        "step",
        StepStatus.OK,
        output=output,
        changes=[FieldChange("anything", "set", output)],
    )
    state = RunState("r", "p", RunStatus.PAUSED, output, context, journal=(saved,))

    async def round_trip():
        await store.save_run(state)
        return await store.load_run("r")

    loaded = trio.run(round_trip)
    store.close()
    assert type(loaded.context) is type(context) and loaded.context == context
    assert loaded.input == output and loaded.steps[0].output == output
    assert loaded.journal[0].changes[0].value == output
