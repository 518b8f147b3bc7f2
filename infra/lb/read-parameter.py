#!/usr/bin/env python3
# Prints one Parameter Store value, read with the instance's role: user-data.sh's way to pull the
# current backend list at boot.
#
# Only python3's standard library, because that is what both images DEPLOY.md names ship for
# sure (cloud-init, which runs user data, is written in it): Ubuntu 24.04 has no `awscli` deb
# (the AWS CLI comes as a snap there), and neither image is guaranteed botocore. So this signs
# the one GetParameter request itself (Signature Version 4, as botocore does:
# tests/infra/test_user_data.py compares the two), with credentials and region from instance
# metadata (IMDSv2).
#
#   read-parameter.py NAME
# Exit status: 0 printed the value; 3 the parameter does not exist; 1 any other failure.
# LBSIDE_IMDS_URL and LBSIDE_SSM_ENDPOINT replace the metadata service and the SSM endpoint (tests).
import datetime
import hashlib
import hmac
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

IMDS = os.environ.get("LBSIDE_IMDS_URL", "http://169.254.169.254")


def imds(path, token=None, method="GET"):
    headers = {"X-aws-ec2-metadata-token": token} if token else {}
    if method == "PUT":
        headers = {"X-aws-ec2-metadata-token-ttl-seconds": "300"}
    request = urllib.request.Request(IMDS + "/latest/" + path, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read().decode()


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signed_headers(url, region, body, target, credentials, now):
    """The headers of a SigV4-signed POST of `body` to an AWS JSON API."""
    host = urllib.parse.urlsplit(url).netloc
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    headers = {
        "content-type": "application/x-amz-json-1.1",
        "host": host,
        "x-amz-date": stamp,
        "x-amz-security-token": credentials["Token"],
        "x-amz-target": target,
    }
    names = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            "POST",
            urllib.parse.urlsplit(url).path or "/",
            "",
            *(f"{name}:{headers[name]}" for name in sorted(headers)),
            "",
            names,
            hashlib.sha256(body.encode()).hexdigest(),
        ]
    )
    scope = f"{stamp[:8]}/{region}/ssm/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + credentials["SecretAccessKey"]).encode()
    for part in (stamp[:8], region, "ssm", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials['AccessKeyId']}/{scope}, "
        f"SignedHeaders={names}, Signature={signature}"
    )
    return headers


def main(argv):
    if len(argv) != 1:
        print("usage: read-parameter.py NAME", file=sys.stderr)
        return 1
    try:
        token = imds("api/token", method="PUT")
        region = imds("meta-data/placement/region", token)
        role = imds("meta-data/iam/security-credentials/", token).split()[0]
        credentials = json.loads(imds("meta-data/iam/security-credentials/" + role, token))
    except (OSError, ValueError, IndexError) as exc:
        print(f"read-parameter: instance metadata: {exc}", file=sys.stderr)
        return 1
    url = os.environ.get("LBSIDE_SSM_ENDPOINT", f"https://ssm.{region}.amazonaws.com/")
    body = json.dumps({"Name": argv[0]})
    # datetime.UTC is Python 3.11+; AL2023's python3 is 3.9.
    now = datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017
    headers = signed_headers(url, region, body, "AmazonSSM.GetParameter", credentials, now)
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            print(json.loads(response.read())["Parameter"]["Value"], end="")
            return 0
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        print(f"read-parameter: {argv[0]}: HTTP {exc.code} {detail}", file=sys.stderr)
        return 3 if "ParameterNotFound" in detail else 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"read-parameter: {argv[0]}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
