/** A client of the Weather Proxy Fleet HTTP API (`/v1/weather`, `/v1/usage`). */

export { WeatherProxyClient } from "./client.js";
export type { ClientOptions, RequestOptions, RetryPolicy, WeatherQuery } from "./client.js";
export { ApiError, PROBLEM_BASE, TransportError, WeatherProxyError, kindOf } from "./errors.js";
export type { ProblemKind } from "./errors.js";
export type {
  CacheInfo,
  Current,
  Limit,
  Location,
  Problem,
  Quota,
  RateLimit,
  ResponseMeta,
  Usage,
  Weather,
  WithMeta,
} from "./models.js";
