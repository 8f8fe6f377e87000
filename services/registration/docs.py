"""Serve the OpenAPI document as JSON, and as a self-contained HTML page made from it."""

from __future__ import annotations

import functools
import json
from html import escape
from typing import Any

from aiohttp import web

from services.common.web import dumps

from .openapi import openapi_document

METHODS = ("get", "post", "put", "patch", "delete")
STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1rem 2rem;
       color: #1d2330; }
h1 { margin-bottom: 0; } h2 { border-bottom: 1px solid #d7dce5; padding-bottom: .3rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border: 1px solid #d7dce5; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #f3f5f9; }
code, pre { font: 13px/1.4 ui-monospace, monospace; }
pre { background: #f6f8fa; padding: .6rem; overflow-x: auto; margin: 0; }
.op { border: 1px solid #d7dce5; border-radius: 6px; padding: .2rem 1rem 1rem; margin: 1rem 0; }
.method { display: inline-block; min-width: 4.5rem; font-weight: 700; color: #fff;
          border-radius: 4px; padding: 0 .4rem; text-align: center; }
.get { background: #2f7bd1; } .post { background: #2e9d5b; } .patch { background: #c58a16; }
.delete { background: #c0392b; } .put { background: #7d4bc2; }
a { color: #2f6ab8; }
"""


def _ref_name(schema: dict[str, Any]) -> str | None:
    target = schema.get("$ref")
    return target.rsplit("/", 1)[-1] if isinstance(target, str) else None


def _resolve(document: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` (parameters, responses) to what it names."""
    target = item.get("$ref")
    if not isinstance(target, str):
        return item
    node: Any = document
    for part in target.removeprefix("#/").split("/"):
        node = node[part]
    return dict(node)


def _schema_html(schema: dict[str, Any]) -> str:
    name = _ref_name(schema)
    if name is not None:
        return f'<a href="#schema-{escape(name)}"><code>{escape(name)}</code></a>'
    return f"<code>{escape(json.dumps(schema, ensure_ascii=False))}</code>"


def _parameters_html(document: dict[str, Any], parameters: list[dict[str, Any]]) -> str:
    if not parameters:
        return ""
    rows = []
    for raw in parameters:
        parameter = _resolve(document, raw)
        rows.append(
            "<tr>"
            f"<td><code>{escape(parameter['name'])}</code></td>"
            f"<td>{escape(parameter['in'])}</td>"
            f"<td>{'yes' if parameter.get('required') else 'no'}</td>"
            f"<td>{_schema_html(parameter['schema'])}</td>"
            f"<td>{escape(parameter.get('description', ''))}</td>"
            "</tr>"
        )
    return (
        "<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>required</th>"
        "<th>schema</th><th>description</th></tr>" + "".join(rows) + "</table>"
    )


def _content_html(content: dict[str, Any]) -> str:
    return "<br>".join(
        f"<code>{escape(media)}</code>: {_schema_html(body.get('schema', {}))}"
        for media, body in content.items()
    )


def _operation_html(
    document: dict[str, Any], path: str, method: str, operation: dict[str, Any], shared: list[Any]
) -> str:
    anchor = escape(operation.get("operationId", f"{method}-{path}"))
    parts = [
        f'<div class="op" id="{anchor}">',
        f'<h3><span class="method {method}">{method.upper()}</span> <code>{escape(path)}</code>'
        f" — {escape(operation.get('summary', ''))}</h3>",
    ]
    if operation.get("description"):
        parts.append(f"<p>{escape(operation['description'])}</p>")
    parts.append(_parameters_html(document, [*shared, *operation.get("parameters", [])]))
    body = operation.get("requestBody")
    if body:
        parts.append(f"<h4>Request body</h4><p>{_content_html(body['content'])}</p>")
        for media in body["content"].values():
            if "example" in media:
                example = json.dumps(media["example"], indent=2, ensure_ascii=False)
                parts.append(f"<p>Example:</p><pre>{escape(example)}</pre>")
    rows = []
    for status, raw in operation["responses"].items():
        response = _resolve(document, raw)
        rows.append(
            f"<tr><td>{escape(status)}</td><td>{escape(response.get('description', ''))}</td>"
            f"<td>{_content_html(response.get('content', {}))}</td></tr>"
        )
    parts.append(
        "<h4>Responses</h4><table><tr><th>status</th><th>meaning</th><th>body</th></tr>"
        + "".join(rows)
        + "</table></div>"
    )
    return "".join(parts)


def render_docs(document: dict[str, Any]) -> str:
    """A page listing every route with its parameters, body and answers, then the schemas."""
    info = document["info"]
    index, operations = [], []
    for path, item in document["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            anchor = escape(operation.get("operationId", f"{method}-{path}"))
            index.append(
                f'<tr><td><span class="method {method}">{method.upper()}</span></td>'
                f'<td><a href="#{anchor}"><code>{escape(path)}</code></a></td>'
                f"<td>{escape(operation.get('summary', ''))}</td></tr>"
            )
            operations.append(
                _operation_html(document, path, method, operation, item.get("parameters", []))
            )
    schemas = "".join(
        f'<h3 id="schema-{escape(name)}"><code>{escape(name)}</code></h3>'
        f"<pre>{escape(json.dumps(schema, indent=2, ensure_ascii=False))}</pre>"
        for name, schema in document["components"]["schemas"].items()
    )
    description = "".join(
        f"<p>{escape(paragraph)}</p>" for paragraph in info["description"].split("\n\n")
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(info['title'])} API</title>"
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{STYLE}</style></head><body>"
        f"<h1>{escape(info['title'])} API <small>{escape(info['version'])}</small></h1>"
        f'{description}<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> '
        f"(OpenAPI {escape(document['openapi'])}).</p>"
        "<h2>Routes</h2><table><tr><th>method</th><th>path</th><th>what</th></tr>"
        + "".join(index)
        + "</table>"
        + "".join(operations)
        + "<h2>Schemas</h2>"
        + schemas
        + "</body></html>"
    )


@functools.cache
def document_bytes() -> bytes:
    return dumps(openapi_document())


@functools.cache
def docs_html() -> str:
    return render_docs(openapi_document())


async def openapi_json(_request: web.Request) -> web.Response:
    """The bare document (not the envelope), as OpenAPI tools expect."""
    return web.Response(body=document_bytes(), content_type="application/json")


async def docs_page(_request: web.Request) -> web.Response:
    return web.Response(text=docs_html(), content_type="text/html")
