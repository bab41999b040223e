// Builds the Postman collection from the proxy's OpenAPI document (read on stdin; written to
// stdout). `python postman/build.py` feeds it `create_app(config).openapi()`.
//
// openapi-to-postmanv2 does the conversion; this script then makes its output reproducible
// (fixed ids, seeded example values) and usable as it stands: the key as collection auth
// ({{apiKey}}), the base URL as a variable ({{baseUrl}}), the weather request asking for one
// city (the converter enables no optional parameter, and city with lat/lon is a 400), and
// a test script per request that newman runs. Requests added beside the converted ones (the
// ETag revalidation, an unknown city, a missing key) are marked "added" in their description.

import { createHash } from "node:crypto";

// The converter fakes the values no schema example gives with Math.random: seed it, so the
// committed collection only changes when the OpenAPI document does.
let seed = 0x5eed;
Math.random = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const { default: converter } = await import("openapi-to-postmanv2");

const OPTIONS = {
  folderStrategy: "Tags",
  parametersResolution: "Example",
  enableOptionalParameters: false,
  includeAuthInfoInExample: false,
};

const SCRIPTS = {
  "GET /v1/weather": [
    'pm.test("200 with the weather of Paris", () => {',
    "  pm.response.to.have.status(200);",
    "  const body = pm.response.json();",
    '  pm.expect(body.location.name).to.eql("Paris");',
    '  pm.expect(body.current).to.have.property("temperatureC");',
    '  pm.expect(["hit", "miss", "stale"]).to.include(body.cache.status);',
    '  pm.expect(body.source).to.eql("open-meteo");',
    "});",
    'pm.test("ETag and RateLimit-* headers", () => {',
    '  for (const name of ["ETag", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "X-Request-ID"]) {',
    "    pm.response.to.have.header(name);",
    "  }",
    "});",
    'pm.collectionVariables.set("etag", pm.response.headers.get("ETag"));',
  ],
  "GET /weather": ['pm.test("200 (alias of /v1/weather)", () => pm.response.to.have.status(200));'],
  "GET /v1/usage": [
    'pm.test("200 with the key\'s usage", () => {',
    "  pm.response.to.have.status(200);",
    "  const body = pm.response.json();",
    '  pm.expect(body.keyId).to.be.a("string");',
    '  pm.expect(body.limit.capacity).to.be.a("number");',
    "});",
  ],
  "GET /health/live": ['pm.test("200: live", () => pm.response.to.have.status(200));'],
  "GET /health/ready": [
    'pm.test("200: ready", () => pm.response.to.have.status(200));',
    'pm.test("status is ok or degraded", () => pm.expect(["ok", "degraded"]).to.include(pm.response.json().status));',
  ],
  "GET /metrics": [
    'pm.test("200 with Prometheus metrics", () => {',
    "  pm.response.to.have.status(200);",
    '  pm.expect(pm.response.text()).to.include("weather_proxy_http_requests_total");',
    "});",
  ],
};

/** A UUID that depends on its name only. */
function stableId(...names) {
  const hex = createHash("sha256").update(names.join("\u0000")).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * OpenAPI 3.1 schemas carry `examples` (a list), the converter reads the singular `example`;
 * and of a nullable field (`anyOf: [{type: X}, {type: "null"}]`) it fakes the first branch,
 * so the example goes down to the branches too.
 */
function singularExamples(node) {
  if (Array.isArray(node)) node.forEach(singularExamples);
  else if (node && typeof node === "object") {
    if (Array.isArray(node.examples) && node.examples.length > 0 && !("example" in node)) {
      node.example = node.examples[0];
    }
    if ("example" in node) {
      for (const branch of [...(node.anyOf ?? []), ...(node.oneOf ?? [])]) {
        if (branch.type !== "null" && !("example" in branch)) branch.example = node.example;
      }
    }
    Object.values(node).forEach(singularExamples);
  }
}

/**
 * Error responses are served as application/problem+json; the document also lists their model
 * under application/json, which the converter prefers, losing each status's own example. Keep
 * one entry: problem+json, with the model and that example.
 */
function problemsAsProblemJson(spec) {
  for (const operations of Object.values(spec.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      for (const response of Object.values(operation.responses ?? {})) {
        const content = response.content ?? {};
        const problem = content["application/problem+json"];
        if (problem && content["application/json"]) {
          problem.schema ??= content["application/json"].schema;
          delete content["application/json"];
        }
      }
    }
  }
}

function convert(spec) {
  return new Promise((resolve, reject) => {
    converter.convertV2({ type: "json", data: spec }, OPTIONS, (error, result) => {
      if (error) reject(error);
      else if (!result.result) reject(new Error(result.reason));
      else resolve(result.output[0].data);
    });
  });
}

const testEvent = (lines) => ({ listen: "test", script: { type: "text/javascript", exec: lines } });
const clone = (value) => JSON.parse(JSON.stringify(value));
const operationKey = (request) => `${request.method} /${request.url.path.join("/")}`;

function setQuery(request, values) {
  for (const param of request.url.query ?? []) {
    param.disabled = !(param.key in values);
    if (param.key in values) param.value = values[param.key];
  }
}

/** Requests beside the converted one of GET /v1/weather: revalidation, a 404, a 401. */
function addedWeatherRequests(item) {
  const added = (name, description, change, lines) => {
    const copy = clone(item);
    copy.name = name;
    copy.request.description = `${description} (added to the converted collection by postman/generate.mjs)`;
    copy.response = [];
    change(copy.request);
    copy.event = [testEvent(lines)];
    return copy;
  };
  return [
    added(
      "Revalidate with the ETag (304)",
      "The same query with If-None-Match: the ETag of the answer above",
      (request) => {
        for (const header of request.header ?? []) {
          if (header.key === "If-None-Match") Object.assign(header, { disabled: false, value: "{{etag}}" });
        }
      },
      [
        'pm.test("304 Not Modified", () => pm.response.to.have.status(304));',
        'pm.test("no body", () => pm.expect(pm.response.text()).to.eql(""));',
      ],
    ),
    added(
      "Unknown city (404 problem)",
      "A city nobody knows: an RFC 9457 problem document",
      (request) => setQuery(request, { city: "Atlantis" }),
      [
        'pm.test("404 problem+json", () => {',
        "  pm.response.to.have.status(404);",
        '  pm.expect(pm.response.headers.get("Content-Type")).to.include("application/problem+json");',
        "  const problem = pm.response.json();",
        '  pm.expect(problem.type).to.eql("https://weatherproxy.dev/problems/not-found");',
        '  pm.expect(problem.instance).to.eql(pm.response.headers.get("X-Request-ID"));',
        "});",
      ],
    ),
    added(
      "No API key (401 problem)",
      "Without X-API-Key",
      (request) => {
        request.auth = { type: "noauth" };
      },
      [
        'pm.test("401 missing-api-key", () => {',
        "  pm.response.to.have.status(401);",
        '  pm.expect(pm.response.json().type).to.eql("https://weatherproxy.dev/problems/missing-api-key");',
        "});",
      ],
    ),
  ];
}

function finish(collection) {
  collection.info._postman_id = stableId("collection", collection.info.name);
  collection.variable = [
    { key: "baseUrl", value: "http://127.0.0.1:8080", type: "string" },
    { key: "apiKey", value: "", type: "string" },
    { key: "etag", value: "", type: "string" },
  ];
  collection.auth = {
    type: "apikey",
    apikey: [
      { key: "key", value: "X-API-Key", type: "string" },
      { key: "value", value: "{{apiKey}}", type: "string" },
      { key: "in", value: "header", type: "string" },
    ],
  };
  for (const folder of collection.item) {
    const items = [];
    for (const item of folder.item ?? []) {
      const request = item.request;
      const key = operationKey(request);
      // The key is the collection's auth; the converter also lists the header as a parameter.
      request.header = (request.header ?? []).filter((h) => h.key.toLowerCase() !== "x-api-key");
      for (const response of item.response ?? []) {
        response.originalRequest.header = (response.originalRequest.header ?? []).filter(
          (h) => h.key.toLowerCase() !== "x-api-key",
        );
      }
      if (request.url.query?.some((q) => q.key === "city")) setQuery(request, { city: "Paris", country: "FR" });
      if (SCRIPTS[key]) item.event = [testEvent(SCRIPTS[key])];
      items.push(item);
      if (key === "GET /v1/weather") items.push(...addedWeatherRequests(item));
    }
    folder.item = items;
  }
  const number = (node, ...names) => {
    if (Array.isArray(node)) node.forEach((child, i) => number(child, ...names, String(i)));
    else if (node && typeof node === "object") {
      if ("id" in node) node.id = stableId(...names);
      for (const [name, child] of Object.entries(node)) number(child, ...names, name);
    }
  };
  number(collection.item, "item");
  return collection;
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const spec = JSON.parse(Buffer.concat(chunks).toString("utf8"));
singularExamples(spec);
problemsAsProblemJson(spec);
process.stdout.write(`${JSON.stringify(finish(await convert(spec)), null, 2)}\n`);
