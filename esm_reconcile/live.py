"""Read live state: function ARNs, mappings (in bulk), tags where the spec manages them.

Cost is API calls: mappings are listed unfiltered, 100 a page, and matched to functions on our
side (AWS's FunctionName filter does not say whether a name also returns its aliases' mappings).
A Get is made only where List hides data: filters encrypted with a KMS key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from .aws import AwsContext, describe_error, error_code
from .engine.protocol import LambdaMappings
from .errors import EsmError
from .model import LiveMapping, parse_function_ref

T = TypeVar("T")

FUNCTIONS_PAGE_SIZE = 50  # ListFunctions' most per page
LIST_FUNCTIONS_MIN = 3  # for fewer functions, one GetFunction each is no dearer


def unless_missing(call: Callable[[], T], concerning: str) -> T | None:
    """The call's answer, or None when AWS answers ResourceNotFoundException; any other
    failure in words naming what it concerns."""
    try:
        return call()
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise describe_error(concerning, exc) from None
    except BotoCoreError as exc:
        raise describe_error(concerning, exc) from None


class LiveReader:
    """Reads through the mapping API's protocol, so its retries are apply's."""

    def __init__(self, aws: AwsContext) -> None:
        self.aws = aws
        self.api = LambdaMappings(aws.lambda_client)

    def function_arn(self, ref: str) -> str:
        identity = self.aws.identity()
        return parse_function_ref(ref).arn(
            self.aws.region, identity["account"], identity["partition"]
        )

    def missing_functions(self, refs: list[str]) -> list[str]:
        """Functions (with their qualifier) that do not exist.

        Unqualified functions of this account and region are looked up in ListFunctions (50 a
        page) while that is cheaper than one GetFunction each; the rest, and anything the list
        leaves open, by GetFunction.
        """
        identity = self.aws.identity()
        region, account, partition = self.aws.region, identity["account"], identity["partition"]
        listable: dict[str, str] = {}  # unqualified ARN -> ref
        for ref in refs:
            parsed = parse_function_ref(ref)
            local = parsed.region in (None, region) and parsed.account in (None, account)
            if local and parsed.qualifier in (None, "$LATEST"):
                listable[replace(parsed, qualifier=None).arn(region, account, partition)] = ref
        settled = self._listed(listable) if len(listable) >= LIST_FUNCTIONS_MIN else {}
        missing = [ref for ref, exists in settled.items() if not exists]
        for ref in refs:
            if ref not in settled and not self._function_exists(ref, region, account, partition):
                missing.append(ref)
        return sorted(missing, key=refs.index)

    def _listed(self, wanted: dict[str, str]) -> dict[str, bool]:
        """Which of these functions (unqualified ARN -> ref) ListFunctions settles: found, or
        known missing once every page was read. Stops when the pages left could cost more
        than asking for the unsettled ones one by one."""
        found: set[str] = set()
        pages = 0
        try:
            for page in self.api.paged("list_functions", FUNCTIONS_PAGE_SIZE):
                pages += 1
                found |= {f.get("FunctionArn") for f in page.get("Functions", [])} & set(wanted)
                if len(found) == len(wanted):
                    break
                if pages >= len(wanted) - len(found):
                    return {wanted[arn]: True for arn in found}
            else:
                return {ref: arn in found for arn, ref in wanted.items()}  # every page read
        except ClientError as exc:
            if error_code(exc) not in ("AccessDeniedException", "AccessDenied"):
                raise describe_error("listing functions", exc) from None
            return {}  # no lambda:ListFunctions: ask for each function instead
        except BotoCoreError as exc:
            raise describe_error("listing functions", exc) from None
        return {ref: True for ref in wanted.values()}

    def _function_exists(self, ref: str, region: str, account: str, partition: str) -> bool:
        parsed = parse_function_ref(ref)
        kwargs = {"FunctionName": replace(parsed, qualifier=None).arn(region, account, partition)}
        if parsed.qualifier:
            kwargs["Qualifier"] = parsed.qualifier
        found = unless_missing(lambda: self.api.call("get_function", **kwargs), f"function {ref}")
        return found is not None

    def mapping_if_any(self, uuid: str) -> dict[str, Any] | None:
        """GetEventSourceMapping, or None when AWS has no such mapping."""
        return unless_missing(lambda: self.api.get(uuid), f"mapping {uuid}")

    def mappings(
        self, function_arns: set[str] | None, *, others: list[LiveMapping] | None = None
    ) -> list[LiveMapping]:
        """Live mappings of these functions, or of all (None); all pages of one unfiltered List.

        `others`, when given, receives the rest of the same pages: the mappings of every other
        function in the region (status lists them as unmanaged), at no extra call. They are
        as List gives them: no Get, so a filter encrypted with a KMS key shows as none."""
        found: list[LiveMapping] = []
        try:
            for page in self.api.pages():
                for item in page.get("EventSourceMappings", []):
                    if function_arns is not None and item.get("FunctionArn") not in function_arns:
                        if others is not None:
                            others.append(LiveMapping.from_response(item))
                        continue
                    if item.get("KMSKeyArn") and not item.get("FilterCriteria"):
                        # List returns encrypted filters as null; Get decrypts them.
                        item = self.api.get(item["UUID"])
                    found.append(LiveMapping.from_response(item))
        except (ClientError, BotoCoreError) as exc:
            raise describe_error("listing event source mappings", exc) from None
        return found

    def existing_functions(self, wanted: set[str] | None = None) -> set[str]:
        """The unqualified ARNs of the region's functions, from ListFunctions pages (50 a page;
        never one call per function or mapping). With `wanted` (unqualified ARNs), paging stops
        once all of those are found, and none at all is read when it is empty.

        Raises (naming lambda:ListFunctions) when the credentials may not list functions: whoever
        asked for this needs the whole list, and asking function by function is what it avoids."""
        found: set[str] = set()
        if wanted is not None and not wanted:
            return found
        try:
            for page in self.api.paged("list_functions", FUNCTIONS_PAGE_SIZE):
                found |= {
                    f["FunctionArn"] for f in page.get("Functions", []) if f.get("FunctionArn")
                }
                if wanted is not None and wanted <= found:
                    break
        except (ClientError, BotoCoreError) as exc:
            raise describe_error("listing functions (lambda:ListFunctions)", exc) from None
        return found

    def read_tags(self, mapping: LiveMapping) -> None:
        if not mapping.esm_arn:
            raise EsmError(f"mapping {mapping.uuid} has no ARN to read its tags from")
        try:
            mapping.tags = self.api.list_tags(mapping.esm_arn)
        except (ClientError, BotoCoreError) as exc:
            raise describe_error(f"tags of mapping {mapping.uuid}", exc) from None


def unqualified_function_arn(function_arn: str) -> str:
    """`arn:...:function:name[:qualifier]` → `arn:...:function:name`, as ListFunctions names it."""
    head, marker, rest = function_arn.partition(":function:")
    return f"{head}{marker}{rest.split(':', 1)[0]}" if marker else function_arn


def orphaned(mappings: list[LiveMapping], existing: set[str]) -> list[LiveMapping]:
    """The mappings whose function (unqualified ARN) is not among `existing` (the region's
    functions, LiveReader.existing_functions): AWS keeps a mapping when its function is
    deleted. A mapping on an alias or version whose function still exists is not an orphan
    here (ListFunctions names functions, not their aliases)."""
    return [m for m in mappings if unqualified_function_arn(m.function_arn) not in existing]
