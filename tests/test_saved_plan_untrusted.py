"""A saved plan is untrusted input (issue 9): `esm apply PLANFILE` never does anything that
`esm apply -f` on the spec recorded in the file would not do.

The CLI runs in-process against moto (`moto_aws`). Every Lambda call is recorded at the client
(`lambda_calls`), and the live mappings and their tags are read back with plain boto3 before and
after, so "nothing was changed" is checked twice: no write request was sent, and nothing moved.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from esm_reconcile import aws as aws_module
from esm_reconcile import saved_plan
from esm_reconcile.diff import diff
from esm_reconcile.errors import EsmError
from esm_reconcile.loader import load_text
from esm_reconcile.model import LiveMapping
from esm_reconcile.ownership import split_by_scope
from esm_reconcile.plan import Change
from esm_reconcile.planning import ScopePlan, managed_functions, plan_scopes
from esm_reconcile.saved_plan_check import rederived_plans, saved_plan_text, verified_plans
from esm_reconcile.validate import load_spec, spec_from_loaded
from tests.cli_runner import CliResult, run_esm
from tests.conftest import ACCOUNT, REGION, Seeded, client

WRITES = frozenset(
    {
        "CreateEventSourceMapping",
        "UpdateEventSourceMapping",
        "DeleteEventSourceMapping",
        "TagResource",
        "UntagResource",
    }
)


@pytest.fixture
def lambda_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every Lambda API call the CLI makes (through aws.connect's clients)."""
    calls: list[str] = []
    real_connect = aws_module.connect

    def recording_connect(*args: Any, **kwargs: Any) -> aws_module.AwsContext:
        context = real_connect(*args, **kwargs)
        context.lambda_client.meta.events.register(
            "before-call.lambda", lambda model, **_: calls.append(model.name)
        )
        return context

    monkeypatch.setattr(aws_module, "connect", recording_connect)
    return calls


def live_state(region: str = REGION) -> dict[str, Any]:
    """Every mapping in the region with its tags, as plain boto3 reads them."""
    lam = client("lambda", region=region)
    state = {}
    for mapping in lam.list_event_source_mappings()["EventSourceMappings"]:
        tags = lam.list_tags(Resource=mapping["EventSourceMappingArn"]).get("Tags", {})
        state[mapping["UUID"]] = {**mapping, "Tags": tags}
    return state


def one_line_error(run: CliResult, *fragments: str) -> str:
    line = run.error_line()
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


# -- the world: alpha is managed, gamma is not -------------------------------------------------


@dataclass
class World:
    seeded: Seeded
    spec: Path
    planfile: Path
    gamma_uuid: str  # gamma's mapping: unmanaged, must never be touched
    gamma_esm_arn: str
    stale_uuid: str  # alpha's mapping the spec no longer lists: deleted by the plan

    @property
    def alpha_arn(self) -> str:
        return self.seeded.functions["alpha"]

    @property
    def gamma_arn(self) -> str:
        return self.seeded.functions["gamma"]

    def document(self) -> dict[str, Any]:
        return json.loads(self.planfile.read_text())

    def write(self, document: dict[str, Any]) -> None:
        self.planfile.write_text(json.dumps(document))


SPEC_TEMPLATE = """\
version: 1
region: us-east-1
functions:
  alpha:
    - event_source_arn: {qa}
      batch_size: 5
      tags: {{team: orders}}
    - event_source_arn: {qb}
"""


@pytest.fixture
def world(moto_aws: None, seed: Callable[..., Seeded], tmp_path: Path) -> World:
    """alpha: qa (batch 10, tag team=old) to update, qc to delete, qb to create; gamma: qg,
    unmanaged. A saved plan of that in `planfile`, made by `esm plan --out`."""
    seeded = seed(functions=["alpha", "gamma"], queues=["qa", "qb", "qc", "qg"])
    lam = client("lambda")
    lam.create_event_source_mapping(
        FunctionName="alpha", EventSourceArn=seeded.queues["qa"], Tags={"team": "old"}
    )
    stale = lam.create_event_source_mapping(
        FunctionName="alpha", EventSourceArn=seeded.queues["qc"]
    )
    gamma = lam.create_event_source_mapping(
        FunctionName="gamma", EventSourceArn=seeded.queues["qg"]
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC_TEMPLATE.format(qa=seeded.queues["qa"], qb=seeded.queues["qb"]))
    planfile = tmp_path / "reviewed.plan"
    made = run_esm("plan", "-f", spec, "--out", planfile)
    assert made.code == 0, made.err
    assert "Plan: 1 to create, 1 to update, 0 to replace, 1 to delete." in made.out
    return World(
        seeded, spec, planfile, gamma["UUID"], gamma["EventSourceMappingArn"], stale["UUID"]
    )


def forge(document: dict[str, Any]) -> dict[str, Any]:
    """Make the stored changes what the document's (edited) spec and observation give, as an
    attacker who knows esm would: the file is then self-consistent and only the staleness
    check stands between it and the account."""
    (part,) = [document] if document["kind"] == saved_plan.KIND else document["plans"]
    spec = spec_from_loaded([load_text(f["path"], f["text"]) for f in part["spec_files"]])
    functions = managed_functions(spec, part["region"], part["account"], part["partition"])
    observed = [saved_plan.ObservedMapping.model_validate(m) for m in part["observed_mappings"]]
    plan = diff(functions, [m.to_live() for m in observed])
    part["changes"] = [saved_plan.saved_change(c) for c in plan.changes]
    return document


def observed(document: dict[str, Any], uuid: str) -> dict[str, Any]:
    return next(m for m in document["observed_mappings"] if m["uuid"] == uuid)


def change_of(document: dict[str, Any], action: str) -> dict[str, Any]:
    return next(c for c in document["changes"] if c["action"] == action)


# -- a valid saved plan still applies ------------------------------------------------------------


def test_a_saved_plan_records_its_spec_and_observation_and_applies(
    world: World, lambda_calls: list[str]
) -> None:
    document = world.document()
    assert document["kind"] == "esm-saved-plan" and document["version"] == 2
    assert document["spec_files"] == [{"path": str(world.spec), "text": world.spec.read_text()}]
    assert (document["region"], document["account"], document["partition"]) == (
        REGION,
        ACCOUNT,
        "aws",
    )
    # Every live mapping of the managed function, tags where the spec manages them; not gamma's.
    by_uuid = {m["uuid"]: m for m in document["observed_mappings"]}
    assert world.stale_uuid in by_uuid and world.gamma_uuid not in by_uuid
    assert len(by_uuid) == 2
    qa = next(m for m in by_uuid.values() if m["uuid"] != world.stale_uuid)
    assert qa["tags"] == {"team": "old"} and by_uuid[world.stale_uuid]["tags"] is None
    assert qa["settings"]["batch_size"] == 10 and qa["state"] == "Enabled"

    lambda_calls.clear()
    applied = run_esm("apply", world.planfile, "--auto-approve", "--detailed-exitcode")
    assert applied.code == 2, applied.err
    writes = [c for c in lambda_calls if c in WRITES]
    assert sorted(writes) == [
        "CreateEventSourceMapping",
        "DeleteEventSourceMapping",
        "TagResource",
        "UpdateEventSourceMapping",
    ]
    after = live_state()
    assert world.gamma_uuid in after and world.stale_uuid not in after
    alpha = {m["EventSourceArn"]: m for m in after.values() if m["FunctionArn"] == world.alpha_arn}
    assert set(alpha) == {world.seeded.queues["qa"], world.seeded.queues["qb"]}
    assert alpha[world.seeded.queues["qa"]]["BatchSize"] == 5
    assert alpha[world.seeded.queues["qa"]]["Tags"] == {"team": "orders"}
    again = run_esm("plan", "-f", world.spec, "--detailed-exitcode")
    assert again.code == 0 and "No changes." in again.out, again.out + again.err


def test_a_targeted_saved_plan_applies_only_its_targets_and_keeps_them(
    world: World, tmp_path: Path
) -> None:
    planfile = tmp_path / "targeted.plan"
    address = f"alpha[{world.seeded.queues['qb']}]"
    made = run_esm("plan", "-f", world.spec, "--target", address, "--out", planfile)
    assert made.code == 0, made.err
    document = json.loads(planfile.read_text())
    assert document["targets"] == [address] and len(document["changes"]) == 1

    # Dropping the targets would let the file carry the whole plan: refused.
    document["targets"] = []
    planfile.write_text(json.dumps(document))
    before = live_state()
    one_line_error(run_esm("apply", planfile, "--auto-approve"), "changes are not what")
    assert live_state() == before

    planfile.write_text(json.dumps({**document, "targets": [address]}))
    applied = run_esm("apply", planfile, "--auto-approve")
    assert applied.code == 0, applied.err
    after = live_state()
    assert world.stale_uuid in after  # its delete was not targeted
    assert len(after) == len(before) + 1


# -- edited changes: refused, nothing written -------------------------------------------------


def _point_create_at_gamma(document: dict[str, Any], world: World) -> None:
    change_of(document, "create")["create_request"]["FunctionName"] = world.gamma_arn


def _swap_delete_uuid_for_gammas(document: dict[str, Any], world: World) -> None:
    change_of(document, "delete")["uuid"] = world.gamma_uuid


def _batch_size_10000(document: dict[str, Any], world: World) -> None:
    change_of(document, "update")["update_request"]["BatchSize"] = 10000


def _add_a_delete_of_gammas_mapping(document: dict[str, Any], world: World) -> None:
    extra = dict(change_of(document, "delete"))
    extra.update(
        address=f"gamma[{world.seeded.queues['qg']}]",
        function_arn=world.gamma_arn,
        event_source=world.seeded.queues["qg"],
        uuid=world.gamma_uuid,
    )
    document["changes"].append(extra)


def _remove_the_delete(document: dict[str, Any], world: World) -> None:
    document["changes"].remove(change_of(document, "delete"))


def _update_becomes_delete(document: dict[str, Any], world: World) -> None:
    change_of(document, "update")["action"] = "delete"


def _tag_gammas_mapping(document: dict[str, Any], world: World) -> None:
    change_of(document, "update")["tag_changes"]["arn"] = world.gamma_esm_arn


def _wait_for_gammas_mapping(document: dict[str, Any], world: World) -> None:
    change_of(document, "create")["wait_gone"] = [world.gamma_uuid]


def _observed_batch_size_edited(document: dict[str, Any], world: World) -> None:
    qa = next(m for m in document["observed_mappings"] if m["uuid"] != world.stale_uuid)
    qa["settings"]["batch_size"] = 7


def _spec_claims_a_create_for_gamma(document: dict[str, Any], world: World) -> None:
    document["spec_files"][0]["text"] += (
        f"  gamma:\n    - event_source_arn: {world.seeded.queues['qc']}\n"
    )


@pytest.mark.parametrize(
    ("tamper", "where"),
    [
        (_point_create_at_gamma, "create_request.FunctionName"),
        (_swap_delete_uuid_for_gammas, ".uuid: the file says"),
        (_batch_size_10000, "update_request.BatchSize: the file says 10000"),
        (_add_a_delete_of_gammas_mapping, "changes[3]: the file has a delete of"),
        (_remove_the_delete, "changes[0]"),
        (_update_becomes_delete, '.action: the file says "delete"'),
        (_tag_gammas_mapping, "tag_changes.arn"),
        (_wait_for_gammas_mapping, "wait_gone[0]"),
        (_observed_batch_size_edited, "fields[0].before: the file says 10"),
        (_spec_claims_a_create_for_gamma, "give a create of gamma["),
    ],
)
def test_edited_changes_are_refused_and_nothing_is_written(
    world: World,
    lambda_calls: list[str],
    tamper: Callable[[dict[str, Any], World], None],
    where: str,
) -> None:
    document = world.document()
    tamper(document, world)
    world.write(document)
    before = live_state()
    lambda_calls.clear()
    line = one_line_error(
        run_esm("apply", world.planfile, "--auto-approve"),
        str(world.planfile),
        "the saved plan's changes are not what its spec and observed state give "
        "(edited or damaged?); nothing was changed; plan again",
        where,
    )
    assert line.count("changes[") == 1
    assert lambda_calls == []  # refused before any AWS call
    assert live_state() == before


# -- self-consistent forgeries: the staleness check refuses them --------------------------------


def _spec_claims_gamma_changes_left(document: dict[str, Any], world: World) -> None:
    # `gamma: []` with gamma's mapping not observed: the re-derived plan is the stored one, so
    # the tamper check passes; gamma is now managed, so its mapping "appeared".
    document["spec_files"][0]["text"] += "  gamma: []\n"


def _unmanaged_mapping_observed_as_alphas(document: dict[str, Any], world: World) -> None:
    gamma = live_state()[world.gamma_uuid]
    document["observed_mappings"].append(
        {
            "uuid": world.gamma_uuid,
            "function_arn": world.alpha_arn,
            "state": "Enabled",
            "settings": {"event_source_arn": gamma["EventSourceArn"], "batch_size": 10},
            "esm_arn": world.gamma_esm_arn,
            "tags": None,
        }
    )
    forge(document)  # now also a delete of gamma's mapping


def _observed_batch_size_matches_the_spec(document: dict[str, Any], world: World) -> None:
    qa = next(m for m in document["observed_mappings"] if m["uuid"] != world.stale_uuid)
    qa["settings"]["batch_size"] = 5
    forge(document)


def _observed_esm_arn_is_gammas(document: dict[str, Any], world: World) -> None:
    qa = next(m for m in document["observed_mappings"] if m["uuid"] != world.stale_uuid)
    qa["esm_arn"] = world.gamma_esm_arn  # the tag change would go to gamma's mapping
    forge(document)


def _live_mapping_observed_as_deleting(document: dict[str, Any], world: World) -> None:
    observed(document, world.stale_uuid)["state"] = "Deleting"
    forge(document)  # the delete disappears from the plan


def _unmanaged_mapping_observed_as_deleting(document: dict[str, Any], world: World) -> None:
    # The create of alpha[qb] would wait for gamma's mapping to go away.
    document["observed_mappings"].append(
        {
            "uuid": world.gamma_uuid,
            "function_arn": world.alpha_arn,
            "state": "Deleting",
            "settings": {"event_source_arn": world.seeded.queues["qb"]},
            "esm_arn": world.gamma_esm_arn,
            "tags": None,
        }
    )
    forge(document)
    assert change_of(document, "create")["wait_gone"] == [world.gamma_uuid]


@pytest.mark.parametrize(
    ("forgery", "reason"),
    [
        (_spec_claims_gamma_changes_left, "appeared since the plan was made"),
        (_unmanaged_mapping_observed_as_alphas, "is gone since the plan was made"),
        (_observed_batch_size_matches_the_spec, "batch_size changed from 5 to 10"),
        (_observed_esm_arn_is_gammas, "ARN changed from"),
        (_live_mapping_observed_as_deleting, "appeared since the plan was made"),
        (_unmanaged_mapping_observed_as_deleting, "now it is a mapping of"),
    ],
)
def test_self_consistent_forgeries_are_refused_as_stale(
    world: World,
    lambda_calls: list[str],
    forgery: Callable[[dict[str, Any], World], None],
    reason: str,
) -> None:
    document = world.document()
    forgery(document, world)
    world.write(document)
    before = live_state()
    lambda_calls.clear()
    refused = run_esm("apply", world.planfile, "--auto-approve")
    assert refused.code == 1, refused.out + refused.err
    assert "is stale, nothing was changed; plan again" in refused.err
    assert reason in refused.err
    assert not WRITES & set(lambda_calls)
    assert live_state() == before


# -- edits the file's own checks catch ------------------------------------------------------


def _region_edited(document: dict[str, Any], world: World) -> None:
    document["region"] = "eu-west-1"


def _tags_dropped_from_observation(document: dict[str, Any], world: World) -> None:
    next(m for m in document["observed_mappings"] if m["tags"] is not None)["tags"] = None
    forge(document)


def _tags_recorded_where_unmanaged(document: dict[str, Any], world: World) -> None:
    observed(document, world.stale_uuid)["tags"] = {}


def _profile_edited(document: dict[str, Any], world: World) -> None:
    document["profile"] = "prod"


def _observation_names_an_unmanaged_function(document: dict[str, Any], world: World) -> None:
    observed(document, world.stale_uuid)["function_arn"] = world.gamma_arn


def _observation_twice(document: dict[str, Any], world: World) -> None:
    document["observed_mappings"].append(observed(document, world.stale_uuid))


def _spec_not_valid(document: dict[str, Any], world: World) -> None:
    document["spec_files"][0]["text"] = document["spec_files"][0]["text"].replace(
        "batch_size: 5", "batch_size: 1000000"
    )


def _spec_says_another_account(document: dict[str, Any], world: World) -> None:
    document["spec_files"][0]["text"] += 'account_id: "210987654321"\n'


def _observed_settings_of_the_wrong_shape(document: dict[str, Any], world: World) -> None:
    qa = next(m for m in document["observed_mappings"] if m["uuid"] != world.stale_uuid)
    qa["settings"]["filter_criteria"] = 5


@pytest.mark.parametrize(
    ("tamper", "fragments"),
    [
        (_region_edited, ("spec_files[0]", "region us-east-1, the plan says eu-west-1")),
        (_tags_dropped_from_observation, (".tags: not recorded",)),
        (_tags_recorded_where_unmanaged, (".tags: recorded where",)),
        (_profile_edited, ('profile: the plan says "prod"',)),
        (_observation_names_an_unmanaged_function, (".function_arn:", "gamma")),
        (_observation_twice, ("observed_mappings[2].uuid", "recorded twice")),
        (_spec_not_valid, ("spec recorded in the saved plan is not valid", "batch_size")),
        (_spec_says_another_account, ("account_id 210987654321, the plan says 123456789012",)),
        (_observed_settings_of_the_wrong_shape, ("observed_mappings: settings not in the form",)),
    ],
)
def test_inconsistent_files_are_refused_before_any_aws_call(
    world: World,
    lambda_calls: list[str],
    tamper: Callable[[dict[str, Any], World], None],
    fragments: tuple[str, ...],
) -> None:
    document = world.document()
    tamper(document, world)
    world.write(document)
    before = live_state()
    lambda_calls.clear()
    one_line_error(
        run_esm("apply", world.planfile, "--auto-approve"), str(world.planfile), *fragments
    )
    assert lambda_calls == []
    assert live_state() == before


def test_credentials_of_another_account_or_region_are_refused(world: World) -> None:
    saved = saved_plan.load(str(world.planfile))
    for identity, region in [
        ({"account": "210987654321", "partition": "aws"}, REGION),
        ({"account": ACCOUNT, "partition": "aws"}, "eu-west-1"),
    ]:
        calls: list[str] = []
        aws = aws_module.connect(region=region)
        aws._identity = identity  # as if sts:GetCallerIdentity had said so
        aws.lambda_client.meta.events.register(
            "before-call.lambda", lambda model, _calls=calls, **_: _calls.append(model.name)
        )
        with pytest.raises(EsmError) as refused:
            verified_plans(str(world.planfile), saved, lambda part, _aws=aws: _aws)
        message = str(refused.value)
        assert "nothing was changed" in message and "\n" not in message
        assert f"account {identity['account']} region {region}" in message
        assert f"made for account {ACCOUNT} region {REGION}" in message
        assert calls == []  # not even a read


# -- damaged files: one line, no AWS call, bounded time ---------------------------------------


def _valid_text(world: World) -> str:
    return world.planfile.read_text()


def _json_edit(edit: Callable[[dict[str, Any]], None]) -> Callable[[World], bytes]:
    def make(world: World) -> bytes:
        document = world.document()
        edit(document)
        return json.dumps(document).encode()

    return make


def _set_change(index: int, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        document["changes"][index][key] = value

    return edit


DAMAGED: list[tuple[str, Callable[[World], bytes], str]] = [
    (
        "truncated",
        lambda w: _valid_text(w)[: len(_valid_text(w)) // 2].encode(),
        "not valid JSON",
    ),
    ("null", lambda w: b"null", "not a saved plan (write one with: esm plan --out FILE)"),
    ("list", lambda w: b"[]", "not a saved plan (write one with: esm plan --out FILE)"),
    ("empty", lambda w: b"", "not valid JSON"),
    ("not UTF-8", lambda w: b"\xff\xfe{}", "not UTF-8"),
    (
        "unknown action",
        _json_edit(_set_change(0, "action", "destroy")),
        "damaged saved plan: changes[0].action: Input should be",
    ),
    (
        "null uuid on a delete",
        _json_edit(_set_change(0, "uuid", None)),
        "damaged saved plan: changes[0].uuid: a delete needs the uuid",
    ),
    (
        "uuid on a create",
        _json_edit(_set_change(2, "uuid", "0c8f1c1e-1111-2222-3333-444455556666")),
        "damaged saved plan: changes[2].uuid: a create has no uuid yet",
    ),
    (
        "create without request",
        _json_edit(_set_change(2, "create_request", None)),
        "changes[2].create_request: a create needs its create_request",
    ),
    (
        "missing key",
        _json_edit(lambda d: d["changes"][1].pop("update_request")),
        "changes[1].update_request: Field required",
    ),
    (
        "extra key",
        _json_edit(lambda d: d["changes"][1].update(run_this="rm -rf /")),
        "changes[1].run_this: Extra inputs are not permitted",
    ),
    (
        "wrong type",
        _json_edit(_set_change(1, "kind", 5)),
        "changes[1].kind: Input should be a valid string",
    ),
    (
        "bad account",
        _json_edit(lambda d: d.update(account=123456789012)),
        "damaged saved plan: account: Input should be a valid string",
    ),
    (
        "version 1",
        _json_edit(lambda d: d.update(version=1)),
        "saved plan format version 1 was made by an older esm; plan again",
    ),
    (
        "version 3",
        _json_edit(lambda d: d.update(version=3)),
        "saved plan format version 3 was made by a newer esm",
    ),
    ("version text", _json_edit(lambda d: d.update(version="2")), "version: Input should be 2"),
    (
        "key with a line break",
        _json_edit(lambda d: d.update({"evil\nkey": 1})),
        '"evil\\nkey": Extra inputs are not permitted',
    ),
    (
        "uuid with a terminal escape",
        _json_edit(_set_change(0, "uuid", "\x1b[2J")),
        "changes[0].uuid: String should match pattern",
    ),
    (
        "setting name with a line break",
        _json_edit(lambda d: d["observed_mappings"][0]["settings"].update({"a\nb": 1})),
        'observed_mappings[0].settings."a\\nb" (key): String should match pattern',
    ),
    (
        "duplicate key",
        lambda w: _valid_text(w).replace('"kind": ', '"kind": "x", "kind": ', 1).encode(),
        "the key kind is given twice",
    ),
    ("NaN", lambda w: b'{"kind": "esm-saved-plan", "version": NaN}', "NaN is not a JSON number"),
    (
        "huge number",
        lambda w: b'{"kind": "esm-saved-plan", "version": ' + b"9" * 5000 + b"}",
        "damaged saved plan: a number with more digits than a saved plan may have",
    ),
    (
        "100k-deep nesting",
        lambda w: b"[" * 100_000 + b"]" * 100_000,
        "damaged saved plan: nested deeper than a saved plan may be",
    ),
    (
        "deep nesting in a value",
        _json_edit(
            lambda d: d["changes"][1]["fields"][0].update(after=json.loads("[" * 500 + "]" * 500))
        ),
        "damaged saved plan: nested deeper than 100 levels",
    ),
]


@pytest.mark.parametrize(
    ("make", "message"), [(m, msg) for _, m, msg in DAMAGED], ids=[n for n, _, _ in DAMAGED]
)
def test_damaged_files_are_one_line_errors(
    world: World,
    lambda_calls: list[str],
    make: Callable[[World], bytes],
    message: str,
) -> None:
    world.planfile.write_bytes(make(world))
    before = live_state()
    lambda_calls.clear()
    started = time.monotonic()
    one_line_error(run_esm("apply", world.planfile, "--auto-approve"), str(world.planfile), message)
    assert time.monotonic() - started < 5
    assert lambda_calls == []
    assert live_state() == before


def test_a_100_mb_file_is_refused_without_reading_it(
    tmp_path: Path, lambda_calls: list[str]
) -> None:
    huge = tmp_path / "huge.plan"
    with huge.open("wb") as handle:
        handle.truncate(100 * 2**20)  # sparse: quick to make, 100 MB by its size
    started = time.monotonic()
    one_line_error(
        run_esm("apply", huge, "--auto-approve"), f"{huge}: not a saved plan: larger than 64 MiB"
    )
    assert time.monotonic() - started < 1
    assert lambda_calls == []


def test_a_bundle_of_one_part_is_not_what_esm_writes(world: World) -> None:
    document = world.document()
    bundle = {"kind": saved_plan.BUNDLE_KIND, "version": 2, "plans": [document]}
    with pytest.raises(EsmError, match=r"plans: List should have at least 2 items"):
        saved_plan.parse(json.dumps(bundle).encode(), "one.plan")
    document["changes"][0]["uuid"] = None
    bundle = {"kind": saved_plan.BUNDLE_KIND, "version": 2, "plans": [document, document]}
    with pytest.raises(EsmError, match=r"plans\[0\]\.changes\[0\]\.uuid: a delete needs"):
        saved_plan.parse(json.dumps(bundle).encode(), "two.plan")


# -- writing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["missing directory", "/dev/full"])
def test_a_plan_that_cannot_be_written_is_one_line(
    world: World, tmp_path: Path, where: str
) -> None:
    if where == "/dev/full" and not Path(where).exists():
        pytest.skip("no /dev/full here")
    out = tmp_path / "no-such-dir" / "p.plan" if where == "missing directory" else Path(where)
    one_line_error(run_esm("plan", "-f", world.spec, "--out", out), f"cannot write {out}")


def test_a_spec_edited_while_planning_is_not_saved(world: World) -> None:
    spec = load_spec([world.spec])
    scopes = split_by_scope(spec, None, None, lambda profile: REGION)
    contexts = [aws_module.connect(region=REGION)]
    planned = plan_scopes(scopes, contexts)
    assert saved_plan.parse(saved_plan_text("p.plan", planned, ()).encode(), "p")
    world.spec.write_text(world.spec.read_text().replace("batch_size: 5", "batch_size: 6"))
    with pytest.raises(EsmError, match=r"cannot save the plan: .*changes are not what"):
        saved_plan_text("p.plan", planned, ())


def test_a_plan_too_large_to_load_is_not_written(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    (part,) = saved_plan.load(str(world.planfile))
    monkeypatch.setattr(saved_plan, "MAX_FILE_BYTES", 1000)
    with pytest.raises(EsmError, match="cannot save the plan: it would take more than"):
        saved_plan.dumps([part])


def test_the_format_has_every_field_of_a_change() -> None:
    # A field added to plan.Change must be added to the saved format (and so compared).
    assert set(saved_plan.SavedChange.model_fields) == {f.name for f in dataclasses.fields(Change)}


# -- several regions: all parts checked, all refused ------------------------------------------

REGIONS = ("us-east-1", "eu-west-1")


@pytest.fixture
def two_regions(moto_aws: None, seed: Callable[..., Seeded], tmp_path: Path) -> Path:
    for region in REGIONS:
        queue_name = f"orders-{region}"
        queue = seed(functions=["orders"], queues=[queue_name], region=region).queues[queue_name]
        (tmp_path / f"{region}.yaml").write_text(
            json.dumps(
                {
                    "version": 1,
                    "region": region,
                    "functions": {"orders": [{"event_source_arn": queue, "batch_size": 5}]},
                }
            )
        )
    planfile = tmp_path / "both.plan"
    made = run_esm("plan", "-f", tmp_path, "--out", planfile)
    assert made.code == 0, made.err
    return planfile


def test_a_bundle_with_one_edited_part_is_refused_whole(
    two_regions: Path, lambda_calls: list[str]
) -> None:
    document = json.loads(two_regions.read_text())
    assert document["kind"] == "esm-saved-plans" and len(document["plans"]) == 2
    original = json.dumps(document)
    index = [p["region"] for p in document["plans"]].index("eu-west-1")
    document["plans"][index]["changes"][0]["create_request"]["BatchSize"] = 10000
    two_regions.write_text(json.dumps(document))
    lambda_calls.clear()
    one_line_error(
        run_esm("apply", two_regions, "--auto-approve"),
        f"plans[{index}].changes[0]",
        "create_request.BatchSize: the file says 10000",
    )
    assert lambda_calls == []
    assert all(live_state(region) == {} for region in REGIONS)

    # One function managed in two parts (the second reaching the first's region through a
    # profile): `plan` refuses that, so the file is refused too.
    document = json.loads(original)
    second = copy.deepcopy(document["plans"][0])
    spec_text = json.loads(second["spec_files"][0]["text"])
    second["spec_files"][0]["text"] = json.dumps({**spec_text, "profile": "other"})
    second["profile"] = "other"
    document["plans"][1] = second
    two_regions.write_text(json.dumps(document))
    one_line_error(
        run_esm("apply", two_regions, "--auto-approve"),
        "plans[1].spec_files: function arn:aws:lambda:",
        "is also managed in plans[0]",
    )
    assert lambda_calls == []

    two_regions.write_text(original)
    applied = run_esm("apply", two_regions, "--auto-approve")
    assert applied.code == 0, applied.err
    for region in REGIONS:
        (mapping,) = live_state(region).values()
        assert mapping["BatchSize"] == 5


def test_read_backs_that_json_changes_re_derive_to_the_same_plan(tmp_path: Path) -> None:
    """Timestamps (datetime from boto3) and filter pattern text survive the file: the plan
    re-derived from it equals the one made from the live objects. Offline: no AWS."""
    stream = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/clicks"
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders"
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(
        "version: 1\nregion: us-east-1\nfunctions:\n  alpha:\n"
        f"    - event_source_arn: {stream}\n      starting_position: AT_TIMESTAMP\n"
        '      starting_position_timestamp: "2024-01-02T03:04:05Z"\n      batch_size: 50\n'
        f"    - event_source_arn: {queue}\n"
        "      filter_criteria: {filters: [{pattern: {body: {a: [1]}}}]}\n"
    )
    spec = load_spec([spec_path])
    scopes = split_by_scope(spec, None, None, lambda profile: REGION)
    aws = aws_module.AwsContext(
        None, None, aws_module.RateLimiter(), REGION, {"account": ACCOUNT, "partition": "aws"}
    )
    alpha = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:alpha"
    live = [
        LiveMapping.from_response(
            {
                "UUID": "11111111-2222-3333-4444-555555555555",
                "FunctionArn": alpha,
                "State": "Enabled",
                "EventSourceArn": stream,
                "StartingPosition": "AT_TIMESTAMP",
                "StartingPositionTimestamp": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
                "BatchSize": 100,
                "LastModified": datetime(2024, 5, 1, tzinfo=UTC),
            }
        ),
        LiveMapping.from_response(
            {
                "UUID": "66666666-2222-3333-4444-555555555555",
                "FunctionArn": alpha,
                "State": "Enabled",
                "EventSourceArn": queue,
                "BatchSize": 10,
                "FilterCriteria": {"Filters": [{"Pattern": '{"body": {"a": [2]}}'}]},
            }
        ),
    ]
    functions = managed_functions(spec, REGION, ACCOUNT, "aws")
    plan = diff(functions, live)
    assert [c.action for c in plan.changes] == ["update", "update"]
    text = saved_plan_text("p.plan", [ScopePlan(scopes[0], aws, plan, live, functions)], ())
    (part,) = saved_plan.parse(text.encode(), "p.plan")
    (rederived,) = rederived_plans("p.plan", [part])
    assert [saved_plan.saved_change(c) for c in rederived.changes] == [
        saved_plan.saved_change(c) for c in plan.changes
    ]
