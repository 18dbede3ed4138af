"""Spec files → desired mappings, with every error found offline (shape, per-kind and cross-field).

Shape errors come from the pydantic models; the AWS rules per source kind come from rules.py.
Each error names file, line and field. Nothing here calls AWS.
"""

from __future__ import annotations

import difflib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import rules
from .errors import SpecError, SpecErrors, one_line
from .loader import LoadedFile, dotted, load_file
from .model import DesiredMapping, Spec, SpecFile, kind_of, parse_arn, parse_function_ref
from .rules import Kind
from .spec import MappingSpec, SpecDocument, canonical_pattern, field_paths

KIND_NAMES = {
    Kind.SQS: "SQS",
    Kind.SQS_FIFO: "SQS FIFO",
    Kind.KINESIS: "Kinesis",
    Kind.DYNAMODB: "DynamoDB Streams",
    Kind.MSK: "Amazon MSK",
    Kind.SELF_MANAGED_KAFKA: "self-managed Kafka",
    Kind.MQ: "Amazon MQ",
    Kind.DOCUMENTDB: "DocumentDB",
}


_PATTERN_HINTS = {
    "account_id": 'must be a 12-digit AWS account id, quoted (e.g. "123456789012")',
    "region": "not a region name (like us-east-1)",
    "KAFKA_BOOTSTRAP_SERVERS": "each broker must be host:port (e.g. b-1.kafka.example.com:9092)",
    "event_source_arn": "not an ARN (arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE)",
    "destination": "must be an SQS, SNS or S3 ARN, or kafka://topic for Kafka sources",
}


def _pydantic_errors(loaded: LoadedFile, exc: ValidationError) -> list[SpecError]:
    errors: list[SpecError] = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            key = str(loc[-1])
            candidates = field_paths() + ["ignore_changes", *SpecDocument.model_fields]
            close = difflib.get_close_matches(key, [c.rsplit(".", 1)[-1] for c in candidates], 1)
            message = "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")
        elif err["type"] == "missing":
            message = "required field is missing"
        elif err["type"] == "literal_error" and loc == ("version",):
            message = "unsupported spec version; this tool reads version: 1"
        elif err["type"] == "string_pattern_mismatch":
            key = next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
            message = _PATTERN_HINTS.get(key, message)
            message = f"{err['input']!r}: {message}"
        elif err["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        errors.append(SpecError(loaded.path, loaded.line_of(loc), dotted(loc), message))
    return errors


def load_spec(paths: list[str | Path], now: datetime | None = None) -> Spec:
    """Load and validate spec files. Raises SpecErrors with every problem found."""
    errors: list[SpecError] = []
    loaded: list[LoadedFile] = []
    for path in paths:
        try:
            loaded.append(load_file(path))
        except SpecErrors as exc:
            errors.extend(exc.errors)
    try:
        spec = spec_from_loaded(loaded, now=now)
    except SpecErrors as exc:
        raise SpecErrors([*errors, *exc.errors]) from None
    if errors:
        raise SpecErrors(errors)
    return spec


def spec_from_loaded(loaded: list[LoadedFile], now: datetime | None = None) -> Spec:
    """Validate already-loaded files, each alone and together (cross-file checks).
    Raises SpecErrors with every problem found."""
    errors: list[SpecError] = []
    files: list[SpecFile] = []
    for one in loaded:
        spec_file, file_errors = validate_loaded(one, now=now)
        errors.extend(file_errors)
        if spec_file is not None:
            files.append(spec_file)
    errors.extend(_cross_file_errors(files))
    if errors:
        raise SpecErrors(errors)
    return Spec(files)


def validate_loaded(
    loaded: LoadedFile, now: datetime | None = None
) -> tuple[SpecFile | None, list[SpecError]]:
    data = loaded.data
    if not isinstance(data, dict):
        what = "empty" if data is None else f"a {type(data).__name__}"
        return None, [
            SpecError(
                loaded.path,
                loaded.line_of(()),
                "",
                f"a spec file must be a mapping with 'version' and 'functions' (this one is {what})",
            )
        ]
    errors: list[SpecError] = []
    try:
        document = SpecDocument.model_validate(data)
        raw_defaults = document.defaults
        functions: dict[str, list[tuple[MappingSpec | None, set[str]]]] = {
            name: [(item, set()) for item in items] for name, items in document.functions.items()
        }
        region, account_id, profile = document.region, document.account_id, document.profile
    except ValidationError as exc:
        errors.extend(_pydantic_errors(loaded, exc))
        # Still check the per-kind rules of every mapping whose shape is right, so one run
        # reports every problem.
        raw_defaults = _salvage(data.get("defaults") or {})[0]
        raw_functions = data.get("functions")
        functions = {
            str(name): [_salvage(item) for item in items]
            for name, items in (raw_functions.items() if isinstance(raw_functions, dict) else ())
            if isinstance(items, list)
        }
        region = account_id = profile = None

    spec_file = SpecFile(loaded.path, region, account_id, profile)
    defaults = raw_defaults.model_dump(exclude_unset=True) if raw_defaults else {}
    if "event_source_arn" in defaults or "self_managed_event_source" in defaults:
        errors.append(
            SpecError(
                loaded.path,
                loaded.line_of(("defaults",)),
                "defaults",
                "a source cannot be a default; name it in each mapping",
            )
        )
    for function, items in functions.items():
        spec_file.function_lines[function] = loaded.line_of(("functions", function))
        ferr = _check_function_ref(function)
        if ferr:
            errors.append(
                SpecError(
                    loaded.path,
                    loaded.line_of(("functions", function)),
                    dotted(("functions", function)),
                    ferr,
                )
            )
        mappings: list[DesiredMapping] = []
        seen: dict[str, int] = {}
        for index, (item, dropped) in enumerate(items):
            if item is None:
                continue  # its shape errors are reported already
            own = item.model_dump(exclude_unset=True)
            # A default reaches only the mappings whose kind has that field (the SPEC's own
            # example sets maximum_retry_attempts beside an SQS mapping).
            own_kind = kind_of(own)
            merged = {
                k: v for k, v in defaults.items() if own_kind is None or rules.applies(k, own_kind)
            }
            if own_kind is not None and "ignore_changes" in merged:
                merged["ignore_changes"] = [
                    e for e in merged["ignore_changes"] if rules.applies(e.split(".")[0], own_kind)
                ]
            merged.update(own)
            base = ("functions", function, index)

            def where(key: str, _own: dict[str, Any] = own, _base: tuple = base) -> tuple:
                return (*_base, key) if key in _own or key not in defaults else ("defaults", key)

            # Keys with shape errors were dropped to check the rest; skip what follows from that
            # (a dropped key may be a misspelling of a required one: skip "required" then too).
            found = [
                (k, m)
                for k, m in check_mapping(merged, now=now)
                if k.split(".")[0] not in dropped and not (dropped and m.startswith("required"))
            ]
            for key, message in found:
                top, *rest = key.split(".")
                loc = (*where(top), *(int(p) if p.isdigit() else p for p in rest))
                errors.append(SpecError(loaded.path, loaded.line_of(loc), dotted(loc), message))
            if dropped:
                continue
            if found:
                continue
            desired = DesiredMapping(
                function=function,
                kind=kind_of(merged),  # type: ignore[arg-type]  # checked above
                settings={k: v for k, v in merged.items() if k != "ignore_changes"},
                ignore_changes=tuple(merged.get("ignore_changes") or ()),
                file=loaded.path,
                line=loaded.line_of(base),
                index=index,
                key_lines={
                    p: loaded.line_of((*where(p.split(".")[0]), *p.split(".")[1:]))
                    for p in (*rules.CONSUMER_GROUP_PATHS, "event_source_arn")
                },
            )
            if desired.source in seen:
                errors.append(
                    SpecError(
                        loaded.path,
                        desired.line,
                        dotted(base),
                        f"duplicate mapping: {one_line(function)} already maps "
                        f"{one_line(desired.source)} (line {seen[desired.source]})",
                    )
                )
                continue
            seen[desired.source] = desired.line
            mappings.append(desired)
        spec_file.functions[function] = mappings
    errors.extend(region_errors(spec_file))
    return (None if errors else spec_file), errors


def region_errors(spec_file: SpecFile, region: str | None = None) -> list[SpecError]:
    """Functions and sources that cannot meet, found offline: a function ARN in another region
    than the file's (or in another account than its account_id), a source ARN in another
    region than its function (a mapping lives in its function's region and polls a source
    there). `region` is where the file goes once the command line resolved it; the file's own
    `region:` comes first. With neither, the sources of its bare-named functions, which all go
    to one region, must at least agree with each other."""
    file_region = spec_file.region or region
    errors: list[SpecError] = []
    first_unplaced: DesiredMapping | None = None  # a bare-named function's source, no region
    for function, mappings in spec_file.functions.items():
        if _check_function_ref(function):
            continue  # reported already
        ref = parse_function_ref(function)
        line = spec_file.function_lines.get(function, 0)
        if ref.region and file_region and ref.region != file_region:
            errors.append(
                SpecError(
                    spec_file.path,
                    line,
                    dotted(("functions", function)),
                    f"the function ARN is in region {ref.region}, but this file's region is "
                    f"{file_region}; put the function in a file for {ref.region}",
                )
            )
        if ref.account and spec_file.account_id and ref.account != spec_file.account_id:
            errors.append(
                SpecError(
                    spec_file.path,
                    line,
                    dotted(("functions", function)),
                    f"the function ARN is in account {ref.account}, but this file's account_id "
                    f"is {spec_file.account_id}",
                )
            )
        function_region = ref.region or file_region
        for desired in mappings:
            source_region = _region_of_source(desired)
            if not source_region:
                continue
            if function_region is None:
                if first_unplaced is None:
                    first_unplaced = desired
                    continue
                other = _region_of_source(first_unplaced)
                if source_region == other:
                    continue
                message = (
                    f"the source is in region {source_region}, but the source of "
                    f"{first_unplaced.function} (line {first_unplaced.line}) is in {other}; "
                    "this file's functions are all in one region, and a mapping's source must "
                    "be in its function's region"
                )
            elif source_region != function_region:
                whose = "its ARN" if ref.region else "this file's region"
                message = (
                    f"the source is in region {source_region}, but the function is in "
                    f"{function_region} ({whose}); a mapping's source must be in its "
                    "function's region"
                )
            else:
                continue
            errors.append(
                SpecError(
                    desired.file,
                    desired.key_lines.get("event_source_arn", desired.line),
                    dotted(("functions", function, desired.index, "event_source_arn")),
                    message,
                )
            )
    return errors


def _region_of_source(desired: DesiredMapping) -> str | None:
    """The region in the source's ARN; None for self-managed Kafka or an ARN without one."""
    arn = desired.settings.get("event_source_arn")
    parsed = parse_arn(arn) if arn else None
    return (parsed.region if parsed else None) or None


def _salvage(item: Any) -> tuple[MappingSpec | None, set[str]]:
    """Validate a mapping whose shape is wrong somewhere, without its wrong keys, so the per-kind
    rules of the rest are still checked in the same run. Returns the model and the dropped keys."""
    try:
        return MappingSpec.model_validate(item), set()
    except ValidationError as exc:
        if not isinstance(item, dict):
            return None, set()
        dropped = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
    try:
        rest = {k: v for k, v in item.items() if k not in dropped}
        return MappingSpec.model_validate(rest), dropped
    except ValidationError:
        return None, set()


def _check_function_ref(ref: str) -> str | None:
    try:
        parse_function_ref(ref)
        if not ref.isprintable() or ref != ref.strip():
            # functions._REF ends in `$`, which in Python also matches before a final newline.
            raise ValueError("not a function reference: it holds spaces or control characters")
    except ValueError as exc:
        return str(exc)
    return None


def _cross_file_errors(files: list[SpecFile]) -> list[SpecError]:
    """A function managed by two files of one region would be fought over; refuse it.
    (Files whose region or profile is left to the command line are checked again once those
    are resolved: reconcile.split_by_scope.)"""
    errors: list[SpecError] = []
    owner: dict[tuple[str | None, str | None, str], SpecFile] = {}
    for spec_file in files:
        for function in spec_file.functions:
            key = (spec_file.region, spec_file.profile, function)
            if key in owner and owner[key] is not spec_file:
                errors.append(
                    SpecError(
                        spec_file.path,
                        spec_file.function_lines[function],
                        dotted(("functions", function)),
                        f"function is also managed by {owner[key].path}; one file must own it",
                    )
                )
            owner.setdefault(key, spec_file)
    # AWS: a consumer group id is unique per Kafka source ("... consumerGroupId ... already exists").
    groups: dict[tuple[str, str], DesiredMapping] = {}
    for spec_file in files:
        for desired in (m for ms in spec_file.functions.values() for m in ms):
            config_key = next(
                (
                    k
                    for k in (
                        "amazon_managed_kafka_event_source_config",
                        "self_managed_kafka_event_source_config",
                    )
                    if desired.settings.get(k)
                ),
                None,
            )
            config = desired.settings.get(config_key) or {} if config_key else {}
            group = config.get("consumer_group_id")
            if not group:
                continue
            key = (desired.source.split("#")[0], group)
            if key in groups:
                first = groups[key]
                path = f"{config_key}.consumer_group_id"
                errors.append(
                    SpecError(
                        desired.file,
                        desired.key_lines.get(path, desired.line),
                        dotted(("functions", desired.function, desired.index, *path.split("."))),
                        f"consumer_group_id {group!r} is already used on this Kafka source by "
                        f"{first.function} ({first.file}:{first.line})",
                    )
                )
            groups.setdefault(key, desired)
    return errors


def check_mapping(s: dict[str, Any], now: datetime | None = None) -> list[tuple[str, str]]:
    """AWS's per-kind and cross-field rules for one merged mapping: [(field path, message)]."""
    errors: list[tuple[str, str]] = []
    arn, self_managed = s.get("event_source_arn"), s.get("self_managed_event_source")
    if arn and self_managed:
        return [
            (
                "self_managed_event_source",
                "give event_source_arn or self_managed_event_source, not both",
            )
        ]
    if not arn and not self_managed:
        return [
            (
                "event_source_arn",
                "required: the source's ARN (or self_managed_event_source for self-managed Kafka)",
            )
        ]
    kind = kind_of(s)
    if kind is None:
        return [
            (
                "event_source_arn",
                "unrecognised event source: expected an SQS queue, Kinesis "
                "stream, DynamoDB stream, MSK cluster, Amazon MQ broker or DocumentDB cluster ARN",
            )
        ]
    name = KIND_NAMES[kind]

    for key in s:
        if key in rules.APPLIES_TO and not rules.applies(key, kind):
            hint = ""
            if key == "maximum_batching_window_in_seconds" and kind is Kind.SQS_FIFO:
                hint = " (Batching window is not supported for FIFO queues)"
            errors.append((key, f"not supported for {name} sources{hint}"))
    for key in rules.REQUIRED.get(kind, ()):
        if not s.get(key):
            errors.append((key, f"required for {name} sources"))
    if kind in rules.REQUIRED_ACCESS and not s.get("source_access_configurations"):
        errors.append(
            (
                "source_access_configurations",
                f"required for {name} sources: a {rules.REQUIRED_ACCESS[kind]} entry",
            )
        )

    access = s.get("source_access_configurations") or []
    allowed = rules.ACCESS_TYPES.get(kind, frozenset())
    for index, entry in enumerate(
        access if rules.applies("source_access_configurations", kind) else []
    ):
        if (entry.get("uri") is None) != (entry["type"] in rules.ACCESS_WITHOUT_URI):
            needs = "takes no uri" if entry["type"] in rules.ACCESS_WITHOUT_URI else "needs a uri"
            errors.append((f"source_access_configurations.{index}.uri", f"{entry['type']} {needs}"))
        if entry["type"] not in allowed:
            errors.append(
                (
                    f"source_access_configurations.{index}.type",
                    f"{entry['type']} is not used by {name} sources "
                    f"(allowed: {', '.join(sorted(allowed))})",
                )
            )
    needed = rules.REQUIRED_ACCESS.get(kind)
    if needed and access and not any(e["type"] == needed for e in access):
        errors.append(
            (
                "source_access_configurations",
                f"{name} sources need a {needed} entry "
                "(the Secrets Manager secret with the credentials)",
            )
        )
    for entry_type in ("BASIC_AUTH", "VIRTUAL_HOST"):
        if sum(e["type"] == entry_type for e in access) > 1:
            errors.append(("source_access_configurations", f"only one {entry_type} entry"))
    if kind is Kind.DOCUMENTDB:
        config = s.get("document_db_event_source_config") or {}
        if config and not config.get("database_name"):
            errors.append(
                ("document_db_event_source_config.database_name", "required for DocumentDB sources")
            )
    if kind in rules.KAFKA_KINDS and not s.get("provisioned_poller_config"):
        for key in rules.KAFKA_PROVISIONED_ONLY:
            if s.get(key) not in (None, [], -1, False):
                errors.append(
                    (
                        key,
                        f"{name} error handling needs provisioned mode: set "
                        "provisioned_poller_config",
                    )
                )

    batch = s.get("batch_size")
    if batch is not None and batch > rules.MAX_BATCH_SIZE.get(kind, 10000):
        errors.append(("batch_size", f"at most {rules.MAX_BATCH_SIZE[kind]} for {name} sources"))
    if kind is Kind.SQS and (batch or 0) > 10 and not s.get("maximum_batching_window_in_seconds"):
        errors.append(
            (
                "maximum_batching_window_in_seconds",
                "must be at least 1 when batch_size is greater than 10 (AWS: Maximum batch "
                "window in seconds must be greater than 0 if maximum batch size is greater "
                "than 10)",
            )
        )

    position, timestamp = s.get("starting_position"), s.get("starting_position_timestamp")
    if position == "AT_TIMESTAMP" and kind is Kind.DYNAMODB:
        errors.append(("starting_position", "AT_TIMESTAMP is not supported for DynamoDB Streams"))
    elif (
        position == "AT_TIMESTAMP"
        and timestamp is None
        and rules.applies("starting_position_timestamp", kind)
    ):
        errors.append(("starting_position_timestamp", "required with AT_TIMESTAMP"))
    if (
        timestamp is not None
        and position != "AT_TIMESTAMP"
        and rules.applies("starting_position_timestamp", kind)
    ):
        errors.append(
            ("starting_position_timestamp", "only allowed with starting_position: AT_TIMESTAMP")
        )
    if isinstance(timestamp, datetime):
        aware = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
        if aware > (now or datetime.now(UTC)):
            errors.append(("starting_position_timestamp", "cannot be in the future"))

    age = s.get("maximum_record_age_in_seconds")
    if age is not None and 0 <= age < 60:
        errors.append(("maximum_record_age_in_seconds", "must be -1 or between 60 and 604800"))

    filters = (s.get("filter_criteria") or {}).get("filters") or []
    if len(filters) > rules.FILTER_LIMIT:
        errors.append(
            (
                "filter_criteria.filters",
                f"at most {rules.FILTER_LIMIT} filters (AWS quota; 5 by default)",
            )
        )
    patterns = [canonical_pattern(f["pattern"]) for f in filters]
    if len(set(patterns)) != len(patterns):
        errors.append(("filter_criteria.filters", "the same filter pattern is given twice"))

    destination = s.get("destination_config") or {}
    if destination.get("on_success") is not None:
        errors.append(
            (
                "destination_config.on_success",
                "not supported: AWS accepts no OnSuccess destination for event source mappings",
            )
        )
    on_failure = destination.get("on_failure")
    if on_failure is not None:
        target = on_failure.get("destination")
        if not target:
            errors.append(
                (
                    "destination_config.on_failure.destination",
                    "required for an on_failure configuration",
                )
            )
        elif target.startswith("kafka://") and kind not in rules.KAFKA_KINDS:
            errors.append(
                (
                    "destination_config.on_failure.destination",
                    f"a kafka:// destination is only for Kafka sources, not {name}",
                )
            )
        elif target.startswith("kafka://") and target[8:] in (s.get("topics") or []):
            errors.append(
                (
                    "destination_config.on_failure.destination",
                    "the on-failure topic must differ from the source topic",
                )
            )
        elif not target.startswith("kafka://"):
            service = getattr(parse_arn(target), "service", None)
            if service not in ("sqs", "sns", "s3"):
                errors.append(
                    (
                        "destination_config.on_failure.destination",
                        "must be an SQS queue, SNS topic or S3 bucket ARN",
                    )
                )

    pollers = s.get("provisioned_poller_config")
    if pollers:
        low = 2 if kind in rules.SQS_KINDS else 1
        minimum, maximum = pollers.get("minimum_pollers"), pollers.get("maximum_pollers")
        if minimum is not None and minimum < low:
            errors.append(
                ("provisioned_poller_config.minimum_pollers", f"at least {low} for {name} sources")
            )
        if maximum is not None and maximum < low:
            errors.append(
                ("provisioned_poller_config.maximum_pollers", f"at least {low} for {name} sources")
            )
        high = rules.MAX_POLLERS.get(kind)
        if maximum is not None and high is not None and maximum > high:
            errors.append(
                ("provisioned_poller_config.maximum_pollers", f"at most {high} for {name} sources")
            )
        if minimum is not None and maximum is not None and minimum > maximum:
            errors.append(
                ("provisioned_poller_config.minimum_pollers", "must not exceed maximum_pollers")
            )
        if kind in rules.SQS_KINDS and s.get("scaling_config"):
            errors.append(
                (
                    "scaling_config",
                    "maximum concurrency and provisioned pollers are mutually exclusive",
                )
            )
        if kind in rules.SQS_KINDS and pollers.get("poller_group_name"):
            errors.append(
                ("provisioned_poller_config.poller_group_name", f"not supported for {name} sources")
            )
    metrics = (s.get("metrics_config") or {}).get("metrics") or []
    for metric in metrics:
        if metric != "EventCount" and kind not in rules.KAFKA_KINDS:
            errors.append(("metrics_config.metrics", f"{metric} is only for Kafka sources"))
    if len(set(metrics)) != len(metrics):
        errors.append(("metrics_config.metrics", "a metric is listed twice"))

    for key, value in (s.get("tags") or {}).items():
        if not 1 <= len(key) <= 128:
            errors.append((f"tags.{key}", "tag keys are 1-128 characters"))
        if len(value) > 256:
            errors.append((f"tags.{key}", "tag values are at most 256 characters"))

    known = set(field_paths())
    for entry in s.get("ignore_changes") or []:
        top = entry.split(".")[0]
        if entry not in known:
            errors.append(("ignore_changes", f"{entry!r} is not a field"))
        elif top in rules.IDENTITY_FIELDS:
            errors.append(
                ("ignore_changes", f"{entry!r} identifies the mapping; it cannot be ignored")
            )
        elif not rules.applies(top, kind):
            errors.append(("ignore_changes", f"{entry!r} does not apply to {name} sources"))
    return errors
