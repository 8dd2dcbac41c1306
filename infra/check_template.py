"""Offline checks of the SAM template: cfn-lint on it, then the SAM transform run locally and
cfn-lint on the result.

cfn-lint 1.x no longer runs the SAM transform, so properties SAM passes through untyped (for
instance FunctionUrlConfig.InvokeMode) are only checked on the translated template. Needs no AWS
account: the region is fixed, local CodeUri/ContentUri become placeholder S3 URIs (as
`sam validate` does) and managed policy names are not looked up.

    python infra/check_template.py [template.yaml] [--out translated.json]

Exit status 1 when cfn-lint reports an error on either template. Also imported by
tests/template (load_template, translate, lint).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

REGION = "us-east-1"
# W1020 ("Fn::Sub isn't needed"): noise from Fn::Sub that the SAM transform itself generates.
TRANSLATED_IGNORE = ("W1020",)

_CODE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


def load_template(path: str | Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template (short-form intrinsics included) into a dict."""
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(Path(path).read_text(encoding="utf-8"))


def _with_s3_code(template: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(template)
    for name, resource in out.get("Resources", {}).items():
        prop = _CODE_PROPERTIES.get(resource.get("Type", ""))
        if prop and isinstance(resource.get("Properties", {}).get(prop), str):
            resource["Properties"][prop] = f"s3://offline-check-bucket/{name}.zip"
    return out


def translate(template: dict[str, Any], region: str = REGION) -> dict[str, Any]:
    """Run the SAM transform locally; returns the plain CloudFormation template."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import (
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    fragment = _with_s3_code(template)
    parameters: dict[str, Any] = {"AWS::Region": region}
    to_py27_compatible_template(fragment, parameters)
    # An explicit session gives the region (and partition) without AWS config or credentials;
    # no managed policy is looked up (the template names them by ARN).
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    out = translator.translate(fragment, parameter_values=parameters, get_managed_policy_map=dict)
    return undo_mark_unicode_str_in_template(out)


def lint(path: str | Path, ignore: tuple[str, ...] = ()) -> list[Any]:
    """cfn-lint matches (all levels) for one template file."""
    from cfnlint.api import ManualArgs, lint_file

    args = ManualArgs(regions=[REGION], ignore_checks=list(ignore))
    return list(lint_file(Path(path), config=args))


def errors(matches: list[Any]) -> list[Any]:
    return [m for m in matches if str(m.rule.id).startswith("E")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", nargs="?", default="template.yaml")
    parser.add_argument("--out", help="also keep the translated template at this path")
    ns = parser.parse_args(argv)

    failed = False
    first = lint(ns.template)
    for m in first:
        print(f"{ns.template}: {m}")
    failed |= bool(errors(first))

    try:
        translated = translate(load_template(ns.template))
    except Exception as exc:  # the transform's own validation (e.g. unknown event properties)
        print(f"the SAM transform rejected {ns.template}: {exc}")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(ns.out) if ns.out else Path(tmp) / "translated.json"
        out.write_text(json.dumps(translated, indent=1), encoding="utf-8")
        second = lint(out, ignore=TRANSLATED_IGNORE)
    for m in second:
        print(f"translated: {m}")
    failed |= bool(errors(second))

    print(
        f"cfn-lint: {len(first)} finding(s) on {ns.template}, {len(second)} on the translated template; "
        + ("FAILED" if failed else "no errors")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
