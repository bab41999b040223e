// Package weatherproxy is a client of the Weather Proxy Fleet HTTP API (GET /v1/weather,
// GET /v1/usage, GET /v1/analytics/*), on net/http alone.
//
//	client, err := weatherproxy.NewClient("http://127.0.0.1:8080", "wpk_...")
//	w, err := client.WeatherByCity(ctx, "Paris", "FR")
//	var apiErr *weatherproxy.APIError
//	if errors.As(err, &apiErr) { ... apiErr.Kind, apiErr.Problem.Detail ... }
//	if errors.Is(err, weatherproxy.ErrQuotaExceeded) { ... }
//	week := weatherproxy.Range{From: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), To: ...}
//	cities, err := client.TopCities(ctx, week, 5) // needs the scope analytics:read
//
// Retries: 429 rate-limited and 503 are tried again after their Retry-After, and a failed
// exchange after RetryPolicy.DefaultDelay, while the attempts and the total wait allow; a wait
// longer than what is left is not slept, the error is returned with it. 429 quota-exceeded is
// never retried: its Retry-After is the end of the day or month.
//
// ETags: the client keeps the last ETag and body per URL and sends If-None-Match; on 304 it
// returns the kept body (Meta.NotModified), so an unchanged answer costs no transfer.
package weatherproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Version is the SDK's version: the project's (a test keeps them in step).
const Version = "0.1.0"

const quotaExceeded = ProblemBase + "quota-exceeded"

// RetryPolicy bounds how hard a call tries.
type RetryPolicy struct {
	MaxAttempts  int           // tries in all, the first one included (1: no retries)
	MaxWait      time.Duration // waiting in all, across the retries of one call
	DefaultDelay time.Duration // the wait when a retried answer (or a failed exchange) names none
}

// DefaultRetryPolicy is what NewClient uses unless WithRetryPolicy says otherwise.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 3, MaxWait: 30 * time.Second, DefaultDelay: time.Second}

// Client calls the API. It is safe for concurrent use.
type Client struct {
	baseURL string
	apiKey  string
	http    *http.Client
	retry   RetryPolicy
	etags   *etagStore
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends requests through hc (transports, proxies, TLS, timeouts).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithRetryPolicy replaces DefaultRetryPolicy.
func WithRetryPolicy(p RetryPolicy) Option { return func(c *Client) { c.retry = p } }

// WithETagCacheSize bounds the URLs whose ETag and body are kept (default 256; 0 turns it off).
func WithETagCacheSize(n int) Option { return func(c *Client) { c.etags = newETagStore(n) } }

// NewClient returns a client of the proxy at baseURL (e.g. http://127.0.0.1:8080) that sends
// apiKey as X-API-Key on every request (none when empty).
func NewClient(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("weatherproxy: baseURL %q: must be an http(s) URL", baseURL)
	}
	c := &Client{
		baseURL: strings.TrimRight(baseURL, "/"),
		apiKey:  apiKey,
		http:    &http.Client{Timeout: 10 * time.Second},
		retry:   DefaultRetryPolicy,
		etags:   newETagStore(256),
	}
	for _, opt := range opts {
		opt(c)
	}
	if c.retry.MaxAttempts < 1 {
		return nil, errors.New("weatherproxy: RetryPolicy.MaxAttempts must be at least 1")
	}
	return c, nil
}

// WeatherByCity returns the current weather for city, narrowed by country (ISO 3166-1 alpha-2)
// unless country is empty.
func (c *Client) WeatherByCity(ctx context.Context, city, country string) (*Weather, error) {
	q := url.Values{"city": {city}}
	if country != "" {
		q.Set("country", country)
	}
	return c.weather(ctx, q)
}

// WeatherAt returns the current weather at a point.
func (c *Client) WeatherAt(ctx context.Context, lat, lon float64) (*Weather, error) {
	return c.weather(ctx, url.Values{
		"lat": {strconv.FormatFloat(lat, 'f', -1, 64)},
		"lon": {strconv.FormatFloat(lon, 'f', -1, 64)},
	})
}

func (c *Client) weather(ctx context.Context, q url.Values) (*Weather, error) {
	var w Weather
	meta, err := c.get(ctx, "/v1/weather", q, &w)
	if err != nil {
		return nil, err
	}
	w.Meta = meta
	return &w, nil
}

// Usage returns the calling key's limit, remaining tokens, quota and today's counts.
func (c *Client) Usage(ctx context.Context) (*Usage, error) {
	var u Usage
	meta, err := c.get(ctx, "/v1/usage", nil, &u)
	if err != nil {
		return nil, err
	}
	u.Meta = meta
	return &u, nil
}

// UsageHistory returns the calling key's requests, errors and cache hits per UTC day (or hour,
// with Hourly) of r, which must not be the zero Range.
func (c *Client) UsageHistory(ctx context.Context, r Range, g Granularity) (*UsageHistory, error) {
	if r.IsZero() {
		return nil, errors.New("weatherproxy: UsageHistory needs a Range (From and To)")
	}
	q, err := seriesQuery(r, g)
	if err != nil {
		return nil, err
	}
	var h UsageHistory
	meta, err := c.get(ctx, "/v1/usage", q, &h)
	if err != nil {
		return nil, err
	}
	h.Meta = meta
	return &h, nil
}

// TopCities returns the most requested places in r, most first; limit is 1 to 100 (0: the
// proxy's default, 10). Every analytics call needs a key with the scope analytics:read.
func (c *Client) TopCities(ctx context.Context, r Range, limit int) (*Listing[TopCity], error) {
	q, err := rangeQuery(r)
	if err != nil {
		return nil, err
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return getList[TopCity](ctx, c, "/v1/analytics/top-cities", q)
}

// Countries returns the weather requests in r per country of the place asked for, most first.
func (c *Client) Countries(ctx context.Context, r Range) (*Listing[CountryCount], error) {
	q, err := rangeQuery(r)
	if err != nil {
		return nil, err
	}
	return getList[CountryCount](ctx, c, "/v1/analytics/countries", q)
}

// PeakHours returns the API requests in r per UTC weekday and hour: all 168 cells, by weekday
// then hour.
func (c *Client) PeakHours(ctx context.Context, r Range) (*Listing[PeakHour], error) {
	q, err := rangeQuery(r)
	if err != nil {
		return nil, err
	}
	return getList[PeakHour](ctx, c, "/v1/analytics/peak-hours", q)
}

// CacheEfficiency returns the weather answers per period of r by cache status, and the hit
// ratio; oldest first.
func (c *Client) CacheEfficiency(ctx context.Context, r Range, g Granularity) (*Listing[CachePeriod], error) {
	q, err := seriesQuery(r, g)
	if err != nil {
		return nil, err
	}
	return getList[CachePeriod](ctx, c, "/v1/analytics/cache", q)
}

// UpstreamCalls returns the calls to Open-Meteo per period of r and API (geocoding, forecast);
// oldest first.
func (c *Client) UpstreamCalls(ctx context.Context, r Range, g Granularity) (*Listing[UpstreamPeriod], error) {
	q, err := seriesQuery(r, g)
	if err != nil {
		return nil, err
	}
	return getList[UpstreamPeriod](ctx, c, "/v1/analytics/upstream", q)
}

// getList gets an answer that is a JSON array of T.
func getList[T any](ctx context.Context, c *Client, path string, q url.Values) (*Listing[T], error) {
	var l Listing[T]
	meta, err := c.get(ctx, path, q, &l.Items)
	if err != nil {
		return nil, err
	}
	l.Meta = meta
	return &l, nil
}

// rangeQuery is from and to (none for the zero Range).
func rangeQuery(r Range) (url.Values, error) {
	q := url.Values{}
	if r.IsZero() {
		return q, nil
	}
	if r.From.IsZero() || r.To.IsZero() {
		return nil, errors.New("weatherproxy: Range: give both From and To, or neither")
	}
	q.Set("from", r.From.Format(time.DateOnly))
	q.Set("to", r.To.Format(time.DateOnly))
	return q, nil
}

// seriesQuery is rangeQuery and granularity (none when empty).
func seriesQuery(r Range, g Granularity) (url.Values, error) {
	q, err := rangeQuery(r)
	if err == nil && g != "" {
		q.Set("granularity", string(g))
	}
	return q, err
}

// get sends GET path?q, retrying as the policy allows, and decodes a 200 (or the kept body of a
// 304) into out.
func (c *Client) get(ctx context.Context, path string, q url.Values, out any) (ResponseMeta, error) {
	target := c.baseURL + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	kept, haveKept := c.etags.get(target)
	var waited time.Duration
	for attempt := 1; ; attempt++ {
		status, header, body, err := c.send(ctx, target, kept, haveKept)
		var wanted time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return ResponseMeta{}, err
			}
			wanted = c.retry.DefaultDelay
		case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
			if parseProblem(status, body).Type == quotaExceeded {
				return ResponseMeta{}, c.refusal(status, header, body)
			}
			wanted = retryAfter(header, c.retry.DefaultDelay)
		default:
			return c.decode(target, status, header, body, kept, haveKept, out)
		}
		if attempt >= c.retry.MaxAttempts || waited+wanted > c.retry.MaxWait {
			if err != nil {
				return ResponseMeta{}, err
			}
			return ResponseMeta{}, c.refusal(status, header, body)
		}
		timer := time.NewTimer(wanted)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ResponseMeta{}, ctx.Err()
		case <-timer.C:
		}
		waited += wanted
	}
}

func (c *Client) send(ctx context.Context, target string, kept etagEntry, haveKept bool) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("weatherproxy: %w", err)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", "weather-proxy-client-go/"+Version)
	if c.apiKey != "" {
		req.Header.Set("X-API-Key", c.apiKey)
	}
	if haveKept {
		req.Header.Set("If-None-Match", kept.etag)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("weatherproxy: GET %s: %w", target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("weatherproxy: GET %s: reading the body: %w", target, err)
	}
	return resp.StatusCode, resp.Header, body, nil
}

func (c *Client) decode(target string, status int, h http.Header, body []byte, kept etagEntry, haveKept bool, out any) (ResponseMeta, error) {
	meta := ResponseMeta{
		Status:    status,
		RequestID: h.Get("X-Request-ID"),
		ETag:      h.Get("ETag"),
		RateLimit: rateLimitFrom(h),
	}
	switch {
	case status == http.StatusNotModified && haveKept:
		body = kept.body
		meta.NotModified = true
		if meta.ETag == "" {
			meta.ETag = kept.etag
		}
	case status >= 200 && status < 300:
		if meta.ETag != "" {
			c.etags.put(target, etagEntry{etag: meta.ETag, body: body})
		}
	default:
		return ResponseMeta{}, c.refusal(status, h, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return ResponseMeta{}, fmt.Errorf("weatherproxy: GET %s: decoding the body: %w", target, err)
	}
	return meta, nil
}

func (c *Client) refusal(status int, h http.Header, body []byte) *APIError {
	p := parseProblem(status, body)
	return &APIError{Problem: p, Kind: KindOf(p), RetryAfter: retryAfter(h, 0), RateLimit: rateLimitFrom(h)}
}

// retryAfter reads Retry-After (delta-seconds or an HTTP date); fallback when absent or unreadable.
func retryAfter(h http.Header, fallback time.Duration) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return fallback
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if when, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(when))
	}
	return fallback
}
