#!/usr/bin/env python3
"""Checks template.yaml the way a deploy would see it.

1. `sam validate --lint` (SAM's own schema plus cfn-lint on the SAM template).
2. The template transformed to plain CloudFormation offline with aws-sam-translator, then cfn-lint
   on the result: plain cfn-lint on a SAM template misses typos inside event properties
   (BatchSiz, ReportBatchItemFailure...), which only surface once SAM expands them.
"""
import json
import os
os.environ.setdefault("SAM_CLI_TELEMETRY", "0")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
import subprocess
import sys
import tempfile

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATE = os.path.join(ROOT, "template.yaml")


class OfflinePolicyLoader:
    """SAM asks IAM for managed policy ARNs; offline, none are needed for the policy templates used."""

    def load(self):
        return {}


def run(cmd):
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT).returncode


def main():
    failures = 0
    if run(["sam", "validate", "--lint", "--template-file", TEMPLATE, "--region", "us-east-1"]) != 0:
        failures += 1

    with open(TEMPLATE) as f:
        template = yaml_parse(f.read())
    # Local CodeUri paths are only resolved by `sam build`; the transform needs S3 locations.
    for name, res in template.get("Resources", {}).items():
        props = res.get("Properties", {})
        if res.get("Type") in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion"):
            if isinstance(props.get("CodeUri"), str) and not props["CodeUri"].startswith("s3://"):
                props["CodeUri"] = f"s3://placeholder-bucket/{name}.zip"
    params = {
        "DatabaseSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
        "VpcSubnetIds": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
        "VpcSecurityGroupIds": "sg-0123456789abcdef0",
        "VpcId": "vpc-0123456789abcdef0",
        "AWS::Region": "us-east-1",
    }
    cfn = transform(template, params, OfflinePolicyLoader())
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
        json.dump(cfn, out, indent=1)
        path = out.name
    print(f"transformed template: {path} ({len(cfn.get('Resources', {}))} resources)")
    if run(["cfn-lint", "--regions", "us-east-1", "--", path]) != 0:
        failures += 1
    if failures:
        print(f"template checks failed ({failures})", file=sys.stderr)
        sys.exit(1)
    print("template checks passed")


if __name__ == "__main__":
    main()
