"""Write `natomedia_client/models.py` from the API document (`openapi.json`).

    python clients/python/tools/generate_models.py            # rewrite the committed models
    python clients/python/tools/generate_models.py --check    # exit 1 when they drifted

Only the schemas a partner reads are generated. Unknown fields are kept (`extra="allow"`) so an
older client keeps working when the server adds one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOCUMENT = HERE.parents[2] / "openapi.json"
TARGET = HERE.parent / "src" / "natomedia_client" / "models.py"

SCHEMAS = (
    "FieldError",
    "Problem",
    "ClientToken",
    "TokenPair",
    "RenditionOut",
    "VideoSummary",
    "VideoTombstone",
    "VideoDetail",
    "VideoPage",
    "DownloadUrl",
    "ArticleSummary",
    "Article",
    "ArticlePage",
)

HEADER = '''\
"""Generated from openapi.json by clients/python/tools/generate_models.py: do not edit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")
'''


def annotation(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "const" in schema:
        return f"Literal[{json.dumps(schema['const'])}]"
    if "enum" in schema:
        return "Literal[" + ", ".join(json.dumps(value) for value in schema["enum"]) + "]"
    if "anyOf" in schema:
        return " | ".join(annotation(part) for part in schema["anyOf"])
    if "oneOf" in schema:
        union = " | ".join(annotation(part) for part in schema["oneOf"])
        discriminator = schema.get("discriminator", {}).get("propertyName")
        if discriminator:
            return f'Annotated[{union}, Field(discriminator="{discriminator}")]'
        return union
    kind = schema.get("type")
    if kind == "array":
        return f"list[{annotation(schema.get('items', {}))}]"
    if kind == "string":
        return {"date-time": "datetime", "uuid": "UUID"}.get(schema.get("format", ""), "str")
    return {"integer": "int", "number": "float", "boolean": "bool", "null": "None"}.get(
        str(kind), "object"
    )


def model(name: str, schema: dict[str, Any]) -> str:
    lines = [f"class {name}(_Model):"]
    description = schema.get("description")
    if description:
        lines.append(f"    {json.dumps(description.splitlines()[0])}")
        lines.append("")
    required = set(schema.get("required", []))
    for field, spec in schema.get("properties", {}).items():
        text = annotation(spec)
        if field in required:
            lines.append(f"    {field}: {text}")
        elif "default" in spec:
            lines.append(
                f"    {field}: {text} = {json.dumps(spec['default']).replace('null', 'None')}"
            )
        else:
            lines.append(f"    {field}: {text} | None = None")
    return "\n".join(lines) + "\n"


def render(document: dict[str, Any]) -> str:
    schemas = document["components"]["schemas"]
    body = "\n\n".join(model(name, schemas[name]) for name in SCHEMAS)
    return HEADER + "\n\n" + body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("--document", type=Path, default=DOCUMENT)
    args = parser.parse_args()
    text = render(json.loads(args.document.read_text()))
    if args.check:
        if TARGET.read_text() != text:
            sys.stderr.write(f"{TARGET} does not match {args.document}: run {__file__}\n")
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
