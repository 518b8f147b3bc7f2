"""Finding a deployed stage's prober function: chalice's deploy record, else the stage's stack.

The stack is read with botocore's Stubber: the exact request (the stack's name) matters, and the
answer's shape is CloudFormation's own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib import deployed

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:lb-failover-prod-ProbePrivate-1A2B"


@pytest.fixture
def cloudformation() -> Any:
    return boto3.client(
        "cloudformation",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def stack(outputs: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "Stacks": [
            {
                "StackName": "lb-failover-prod",
                "CreationTime": "2026-01-01T00:00:00Z",
                "StackStatus": "UPDATE_COMPLETE",
                "Outputs": outputs,
            }
        ]
    }


def test_the_stack_output_names_the_function(tmp_path: Path, cloudformation: Any) -> None:
    with Stubber(cloudformation) as stub:
        stub.add_response(
            "describe_stacks",
            stack(
                [
                    {"OutputKey": "ReconcileFunctionName", "OutputValue": "x"},
                    {"OutputKey": "ProbePrivateFunctionName", "OutputValue": ARN},
                ]
            ),
            {"StackName": "lb-failover-prod"},
        )
        found = deployed.prober_function("prod", tmp_path, lambda: cloudformation)
    assert found == (ARN, "stack lb-failover-prod, output ProbePrivateFunctionName")


def test_chalice_deploy_record_is_read_first_and_no_stack_is_asked(
    tmp_path: Path, cloudformation: Any
) -> None:
    record = tmp_path / ".chalice" / "deployed" / "prod.json"
    record.parent.mkdir(parents=True)
    resources = [{"name": "probe_private", "resource_type": "lambda_function", "lambda_arn": ARN}]
    record.write_text(json.dumps({"resources": resources, "schema_version": "2.0"}))
    with Stubber(cloudformation) as stub:  # an unplanned call would fail the test
        assert deployed.prober_function("prod", tmp_path, lambda: cloudformation)[0] == ARN
        stub.assert_no_pending_responses()


def test_a_stack_without_the_output_finds_nothing(tmp_path: Path, cloudformation: Any) -> None:
    with Stubber(cloudformation) as stub:
        stub.add_response("describe_stacks", stack([]), {"StackName": "lb-failover-prod"})
        found, why = deployed.prober_function("prod", tmp_path, lambda: cloudformation)
    assert found is None
    assert "no output ProbePrivateFunctionName" in why


def test_a_missing_stack_finds_nothing_and_says_why(tmp_path: Path, cloudformation: Any) -> None:
    with Stubber(cloudformation) as stub:
        stub.add_client_error(
            "describe_stacks", "ValidationError", "Stack with id lb-failover-prod does not exist"
        )
        found, why = deployed.prober_function("prod", tmp_path, lambda: cloudformation)
    assert found is None
    assert "does not exist" in why
