"""Read live state: function ARNs, mappings (in bulk), tags where the spec manages them.

Cost is API calls: mappings are listed unfiltered, 100 a page, and matched to functions on our
side (AWS's FunctionName filter does not say whether a name also returns its aliases' mappings).
A Get is made only where List hides data: filters encrypted with a KMS key.
"""

from __future__ import annotations

from dataclasses import replace

from botocore.exceptions import BotoCoreError, ClientError

from .aws import AwsContext, describe_error, error_code
from .errors import EsmError
from .functions import parse_function_ref
from .live_state import LiveMapping

PAGE_SIZE = 100


class LiveReader:
    def __init__(self, aws: AwsContext) -> None:
        self.aws = aws
        self.client = aws.lambda_client

    def function_arn(self, ref: str) -> str:
        identity = self.aws.identity()
        return parse_function_ref(ref).arn(
            self.aws.region, identity["account"], identity["partition"]
        )

    def missing_functions(self, refs: list[str]) -> list[str]:
        """Functions (with their qualifier) that do not exist; one GetFunction each."""
        missing = []
        identity = self.aws.identity()
        for ref in refs:
            parsed = parse_function_ref(ref)
            unqualified = replace(parsed, qualifier=None)
            kwargs = {
                "FunctionName": unqualified.arn(
                    self.aws.region, identity["account"], identity["partition"]
                )
            }
            if parsed.qualifier:
                kwargs["Qualifier"] = parsed.qualifier
            try:
                self.client.get_function(**kwargs)
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    missing.append(ref)
                else:
                    raise describe_error(f"function {ref}", exc) from None
            except BotoCoreError as exc:
                raise describe_error(f"function {ref}", exc) from None
        return missing

    def mappings(self, function_arns: set[str] | None) -> list[LiveMapping]:
        """Live mappings of these functions, or of all (None); all pages of one unfiltered List."""
        found: list[LiveMapping] = []
        try:
            paginator = self.client.get_paginator("list_event_source_mappings")
            for page in paginator.paginate(PaginationConfig={"PageSize": PAGE_SIZE}):
                for item in page.get("EventSourceMappings", []):
                    if function_arns is not None and item.get("FunctionArn") not in function_arns:
                        continue
                    if item.get("KMSKeyArn") and not item.get("FilterCriteria"):
                        # List returns encrypted filters as null; Get decrypts them.
                        item = self.client.get_event_source_mapping(UUID=item["UUID"])
                    found.append(LiveMapping.from_response(item))
        except (ClientError, BotoCoreError) as exc:
            raise describe_error("listing event source mappings", exc) from None
        return found

    def read_tags(self, mapping: LiveMapping) -> None:
        if not mapping.esm_arn:
            raise EsmError(f"mapping {mapping.uuid} has no ARN to read its tags from")
        try:
            mapping.tags = self.client.list_tags(Resource=mapping.esm_arn).get("Tags", {})
        except (ClientError, BotoCoreError) as exc:
            raise describe_error(f"tags of mapping {mapping.uuid}", exc) from None
