/**
 * Errors: every refusal of the proxy is an `ApiError` carrying its problem document and a
 * `kind` to switch on; `TransportError` is no answer at all.
 */

import type { Problem, RateLimit } from "./models.js";

export const PROBLEM_BASE = "https://weatherproxy.dev/problems/";

export type ProblemKind =
  | "bad-request"
  | "missing-api-key"
  | "invalid-key"
  | "insufficient-scope"
  | "not-found"
  | "analytics-disabled"
  | "rate-limited"
  | "quota-exceeded"
  | "upstream-unavailable"
  | "analytics-unavailable"
  | "deadline-exceeded"
  | "server-error"
  | "other";

const KIND_BY_SLUG: Record<string, ProblemKind> = {
  "bad-request": "bad-request",
  "missing-api-key": "missing-api-key",
  "invalid-key": "invalid-key",
  "key-disabled": "invalid-key",
  "key-expired": "invalid-key",
  "insufficient-scope": "insufficient-scope",
  "not-found": "not-found",
  "analytics-disabled": "analytics-disabled",
  "rate-limited": "rate-limited",
  "quota-exceeded": "quota-exceeded",
  "upstream-unavailable": "upstream-unavailable",
  "upstream-budget-exhausted": "upstream-unavailable",
  "analytics-unavailable": "analytics-unavailable",
  "deadline-exceeded": "deadline-exceeded",
};

const KIND_BY_STATUS: Record<number, ProblemKind> = {
  400: "bad-request",
  401: "missing-api-key",
  403: "invalid-key",
  404: "not-found",
  429: "rate-limited",
  503: "upstream-unavailable",
  504: "deadline-exceeded",
};

/** The kind of a problem: by its type for this API's problems, else by status. */
export function kindOf(problem: Problem): ProblemKind {
  if (problem.type.startsWith(PROBLEM_BASE)) {
    const kind = KIND_BY_SLUG[problem.type.slice(PROBLEM_BASE.length)];
    if (kind !== undefined) return kind;
  }
  return KIND_BY_STATUS[problem.status] ?? (problem.status >= 500 ? "server-error" : "other");
}

export class WeatherProxyError extends Error {
  override name = "WeatherProxyError";
}

/** No HTTP answer (connection refused or reset) after the retries allowed. */
export class TransportError extends WeatherProxyError {
  override name = "TransportError";
}

/** The proxy answered with an error status and a problem document. */
export class ApiError extends WeatherProxyError {
  override name = "ApiError";
  readonly kind: ProblemKind;

  constructor(
    readonly problem: Problem,
    /** seconds, from Retry-After, when the proxy sent one */
    readonly retryAfterSeconds: number | null,
    readonly rateLimit: RateLimit | null,
  ) {
    super(`${problem.status} ${problem.title}: ${problem.detail}`);
    this.kind = kindOf(problem);
  }

  get status(): number {
    return this.problem.status;
  }
}

/** The problem document of an error body; one made up from the status when the body is not one. */
export function parseProblem(status: number, statusText: string, body: string): Problem {
  try {
    const data: unknown = JSON.parse(body);
    if (typeof data === "object" && data !== null && "type" in data) {
      const doc = data as Partial<Problem>;
      return {
        type: String(doc.type),
        title: String(doc.title ?? ""),
        status: typeof doc.status === "number" ? doc.status : status,
        detail: String(doc.detail ?? ""),
        instance: String(doc.instance ?? ""),
      };
    }
  } catch {
    // not JSON: an ingress or load balancer answered for the proxy
  }
  return { type: "about:blank", title: statusText, status, detail: body.trim().slice(0, 200), instance: "" };
}
