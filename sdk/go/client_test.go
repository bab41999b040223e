package weatherproxy_test

// The SDK against a real proxy. tests/integration/sdk/test_go_client.py starts the proxy and the
// Open-Meteo emulator and runs `go test` with WEATHER_PROXY_URL, the keys (WEATHER_PROXY_KEY,
// WEATHER_PROXY_KEY_<NAME>) and WEATHER_PROXY_EMULATOR set; without them these tests skip.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	weatherproxy "github.com/weather-proxy/weather-proxy-fleet/sdk/go"
)

type exchange struct {
	status int
	header http.Header
}

// recorder is an http.RoundTripper that keeps the status and request headers of every exchange.
type recorder struct {
	mu        sync.Mutex
	exchanges []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		r.mu.Lock()
		r.exchanges = append(r.exchanges, exchange{resp.StatusCode, req.Header.Clone()})
		r.mu.Unlock()
	}
	return resp, err
}

func (r *recorder) statuses() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]int, len(r.exchanges))
	for i, e := range r.exchanges {
		out[i] = e.status
	}
	return out
}

func baseURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("WEATHER_PROXY_URL")
	if u == "" {
		t.Skip("WEATHER_PROXY_URL is not set (see tests/integration/sdk)")
	}
	return u
}

func key(t *testing.T, name string) string {
	t.Helper()
	baseURL(t) // skips without a proxy
	env := "WEATHER_PROXY_KEY"
	if name != "" {
		env += "_" + name
	}
	k := os.Getenv(env)
	if k == "" {
		t.Fatalf("%s is not set", env)
	}
	return k
}

func client(t *testing.T, apiKey string, opts ...weatherproxy.Option) (*weatherproxy.Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	opts = append([]weatherproxy.Option{weatherproxy.WithHTTPClient(&http.Client{Transport: rec})}, opts...)
	c, err := weatherproxy.NewClient(baseURL(t), apiKey, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

func refusal(t *testing.T, err error, kind weatherproxy.Kind, sentinel error) *weatherproxy.APIError {
	t.Helper()
	var apiErr *weatherproxy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("want an *APIError of kind %s, got %v", kind, err)
	}
	if apiErr.Kind != kind || !errors.Is(err, sentinel) {
		t.Fatalf("want kind %s, got %s (%v)", kind, apiErr.Kind, err)
	}
	return apiErr
}

func wantStatuses(t *testing.T, rec *recorder, want ...int) {
	t.Helper()
	if got := rec.statuses(); !reflect.DeepEqual(got, want) {
		t.Fatalf("statuses: want %v, got %v", want, got)
	}
}

func setFault(t *testing.T, endpoint, mode string, times int) {
	t.Helper()
	body := fmt.Sprintf(`{"endpoint":%q,"mode":%q,"times":%d}`, endpoint, mode, times)
	resp, err := http.Post(os.Getenv("WEATHER_PROXY_EMULATOR")+"/__control", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("emulator control: %d", resp.StatusCode)
	}
}

func TestWeatherByCityIsTypedAndCarriesTheRateLimit(t *testing.T) {
	c, rec := client(t, key(t, ""))
	w, err := c.WeatherByCity(context.Background(), "Paris", "FR")
	if err != nil {
		t.Fatal(err)
	}
	if *w.Location.Name != "Paris" || *w.Location.Country != "FR" || *w.Location.Timezone != "Europe/Paris" {
		t.Fatalf("location: %+v", w.Location)
	}
	if w.Current.TemperatureC == nil || w.Current.WeatherCode == nil || w.Current.Description == "" {
		t.Fatalf("current: %+v", w.Current)
	}
	if w.Source != "open-meteo" || w.Meta.Status != 200 || w.Meta.NotModified || w.Meta.ETag == "" || w.Meta.RequestID == "" {
		t.Fatalf("source %q, meta %+v", w.Source, w.Meta)
	}
	if w.Meta.RateLimit == nil || w.Meta.RateLimit.Limit != 1000 {
		t.Fatalf("rate limit: %+v", w.Meta.RateLimit)
	}
	if ua := rec.exchanges[0].header.Get("User-Agent"); ua != "weather-proxy-client-go/"+weatherproxy.Version {
		t.Fatalf("User-Agent %q", ua)
	}
}

func TestWeatherAtCoordinates(t *testing.T) {
	c, _ := client(t, key(t, ""))
	w, err := c.WeatherAt(context.Background(), 48.85, 2.35)
	if err != nil {
		t.Fatal(err)
	}
	if w.Location.Name != nil || math.Abs(w.Location.Latitude-48.85) > 1e-6 {
		t.Fatalf("location: %+v", w.Location)
	}
}

func TestTheSecondCallRevalidatesWithTheETagAndGets304(t *testing.T) {
	c, rec := client(t, key(t, ""))
	ctx := context.Background()
	first, err := c.WeatherByCity(ctx, "London", "GB")
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.WeatherByCity(ctx, "London", "GB")
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, rec, 200, 304)
	if got := rec.exchanges[0].header.Get("If-None-Match"); got != "" {
		t.Fatalf("first request sent If-None-Match %q", got)
	}
	if got := rec.exchanges[1].header.Get("If-None-Match"); got != first.Meta.ETag {
		t.Fatalf("If-None-Match %q, want %q", got, first.Meta.ETag)
	}
	if !second.Meta.NotModified || !reflect.DeepEqual(second.Current, first.Current) || second.Meta.RateLimit == nil {
		t.Fatalf("second: %+v", second)
	}
}

func TestNoKeyIsMissingAPIKey(t *testing.T) {
	c, _ := client(t, "")
	_, err := c.WeatherByCity(context.Background(), "Paris", "")
	e := refusal(t, err, weatherproxy.KindMissingAPIKey, weatherproxy.ErrMissingAPIKey)
	p := e.Problem
	if p.Status != 401 || p.Type != weatherproxy.ProblemBase+"missing-api-key" || p.Title == "" || p.Detail == "" || p.Instance == "" {
		t.Fatalf("problem: %+v", p)
	}
}

func TestUnknownOrDisabledKeyIsInvalidKey(t *testing.T) {
	for _, name := range []string{"UNKNOWN", "DISABLED"} {
		c, _ := client(t, key(t, name))
		_, err := c.WeatherByCity(context.Background(), "Paris", "")
		if e := refusal(t, err, weatherproxy.KindInvalidKey, weatherproxy.ErrInvalidKey); e.Status != 403 {
			t.Fatalf("%s: status %d", name, e.Status)
		}
	}
}

func TestAKeyWithoutTheScopeGetsInsufficientScope(t *testing.T) {
	c, _ := client(t, key(t, "USAGE_ONLY"))
	_, err := c.WeatherByCity(context.Background(), "Paris", "")
	e := refusal(t, err, weatherproxy.KindInsufficientScope, weatherproxy.ErrInsufficientScope)
	if !strings.Contains(e.Detail, "weather:read") {
		t.Fatalf("detail: %q", e.Detail)
	}
	u, err := c.Usage(context.Background())
	if err != nil || u.KeyID != "sdk/usage_only" {
		t.Fatalf("usage: %+v, %v", u, err)
	}
}

func TestAnUnknownCityIsNotFound(t *testing.T) {
	c, _ := client(t, key(t, ""))
	_, err := c.WeatherByCity(context.Background(), "Atlantis", "")
	if e := refusal(t, err, weatherproxy.KindNotFound, weatherproxy.ErrNotFound); !strings.Contains(e.Detail, "Atlantis") {
		t.Fatalf("detail: %q", e.Detail)
	}
}

func TestBadInputIsBadRequest(t *testing.T) {
	c, _ := client(t, key(t, ""))
	_, err := c.WeatherAt(context.Background(), 91, 0)
	refusal(t, err, weatherproxy.KindBadRequest, weatherproxy.ErrBadRequest)
}

func TestRateLimitedIsRetriedAfterRetryAfter(t *testing.T) {
	c, rec := client(t, key(t, "TINY"))
	ctx := context.Background()
	if _, err := c.WeatherByCity(ctx, "Madrid", ""); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	w, err := c.WeatherByCity(ctx, "Rome", "")
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, rec, 200, 429, 200)
	if waited := time.Since(started); waited < 900*time.Millisecond {
		t.Fatalf("waited %s, want Retry-After: 1", waited)
	}
	if *w.Location.Name != "Rome" {
		t.Fatalf("location: %+v", w.Location)
	}
}

func TestRateLimitedIsReturnedWhenRetriesAreOff(t *testing.T) {
	noRetries := weatherproxy.RetryPolicy{MaxAttempts: 1}
	c, rec := client(t, key(t, "TINY_STRICT"), weatherproxy.WithRetryPolicy(noRetries))
	ctx := context.Background()
	if _, err := c.WeatherByCity(ctx, "Paris", ""); err != nil {
		t.Fatal(err)
	}
	_, err := c.WeatherByCity(ctx, "Paris", "")
	wantStatuses(t, rec, 200, 429)
	e := refusal(t, err, weatherproxy.KindRateLimited, weatherproxy.ErrRateLimited)
	if e.RetryAfter < time.Second || e.RateLimit == nil || e.RateLimit.Remaining != 0 || e.RateLimit.Limit != 1 {
		t.Fatalf("retry after %s, rate limit %+v", e.RetryAfter, e.RateLimit)
	}
}

func TestASpentQuotaIsReturnedAtOnce(t *testing.T) {
	c, rec := client(t, key(t, "QUOTA"))
	ctx := context.Background()
	if _, err := c.WeatherByCity(ctx, "Paris", ""); err != nil { // the one request of the quota
		t.Fatal(err)
	}
	u, err := c.Usage(ctx) // answered, and spending nothing, with the quota spent
	if err != nil {
		t.Fatal(err)
	}
	if u.Quota == nil || u.Quota.Limit != 1 || u.Quota.Used != 1 || !u.Quota.ResetsAt.After(time.Now()) {
		t.Fatalf("quota: %+v", u.Quota)
	}
	started := time.Now()
	_, err = c.WeatherByCity(ctx, "Paris", "")
	if waited := time.Since(started); waited > 900*time.Millisecond {
		t.Fatalf("waited %s: a spent quota must not be waited for", waited)
	}
	wantStatuses(t, rec, 200, 200, 429)
	if e := refusal(t, err, weatherproxy.KindQuotaExceeded, weatherproxy.ErrQuotaExceeded); e.RetryAfter < time.Second {
		t.Fatalf("retry after %s", e.RetryAfter)
	}
}

func TestUpstreamUnavailableIsRetriedAfterRetryAfter(t *testing.T) {
	c, rec := client(t, key(t, ""))
	setFault(t, "forecast", "error500", 1)
	w, err := c.WeatherByCity(context.Background(), "Vienna", "")
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, rec, 503, 200)
	if *w.Location.Name != "Vienna" {
		t.Fatalf("location: %+v", w.Location)
	}
}

func TestUpstreamUnavailableIsReturnedWhenTheWaitBudgetIsSpent(t *testing.T) {
	policy := weatherproxy.DefaultRetryPolicy
	policy.MaxWait = 500 * time.Millisecond
	c, rec := client(t, key(t, ""), weatherproxy.WithRetryPolicy(policy))
	setFault(t, "forecast", "error500", 1)
	_, err := c.WeatherByCity(context.Background(), "Zurich", "")
	wantStatuses(t, rec, 503)
	if e := refusal(t, err, weatherproxy.KindUpstreamUnavailable, weatherproxy.ErrUpstreamUnavailable); e.RetryAfter != time.Second {
		t.Fatalf("retry after %s", e.RetryAfter)
	}
}

func TestUsageIsTyped(t *testing.T) {
	c, _ := client(t, key(t, ""))
	u, err := c.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if u.KeyID != "sdk/main" || u.Limit.RequestsPerMinute != 10_000 || u.Limit.Capacity != 1000 || u.Quota != nil || u.Meta.RateLimit == nil {
		t.Fatalf("usage: %+v", u)
	}
}

func TestACanceledContextStopsTheWait(t *testing.T) {
	c, _ := client(t, key(t, "TINY_STRICT"))
	// Take the one token (waiting for it if an earlier test spent it): the next call must wait.
	if _, err := c.WeatherByCity(context.Background(), "Paris", ""); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	started := time.Now()
	_, err := c.WeatherByCity(ctx, "Paris", "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want context.DeadlineExceeded, got %v", err)
	}
	if waited := time.Since(started); waited > 900*time.Millisecond {
		t.Fatalf("waited %s after the context's deadline", waited)
	}
}

func TestARefusedConnectionIsAnError(t *testing.T) {
	policy := weatherproxy.RetryPolicy{MaxAttempts: 2, MaxWait: time.Second, DefaultDelay: 10 * time.Millisecond}
	c, err := weatherproxy.NewClient("http://127.0.0.1:9", "k", weatherproxy.WithRetryPolicy(policy))
	if err != nil {
		t.Fatal(err)
	}
	var apiErr *weatherproxy.APIError
	if _, err := c.WeatherByCity(context.Background(), "Paris", ""); err == nil || errors.As(err, &apiErr) {
		t.Fatalf("want a transport error, got %v", err)
	}
}

func TestNewClientRefusesABadBaseURL(t *testing.T) {
	if _, err := weatherproxy.NewClient("127.0.0.1:8080", ""); err == nil {
		t.Fatal("a base URL without a scheme was accepted")
	}
}

// The usage history and the analytics routes run against WEATHER_PROXY_ANALYTICS_URL: a proxy
// keeping its history in PostgreSQL, with the stack's seeded requests in it (Paris twice, a miss
// then a hit; London; an unknown place), all by the key ANALYTICS.

func analyticsClient(t *testing.T, apiKey string) *weatherproxy.Client {
	t.Helper()
	u := os.Getenv("WEATHER_PROXY_ANALYTICS_URL")
	if u == "" {
		t.Skip("WEATHER_PROXY_ANALYTICS_URL is not set (see tests/integration/sdk)")
	}
	c, err := weatherproxy.NewClient(u, apiKey)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// twoDays is yesterday and today (UTC): the counts hold when the suite runs across midnight.
func twoDays() weatherproxy.Range {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	return weatherproxy.Range{From: today.AddDate(0, 0, -1), To: today}
}

func TestUsageHistoryPerDayAndPerHour(t *testing.T) {
	c := analyticsClient(t, key(t, "ANALYTICS"))
	ctx := context.Background()
	r := twoDays()
	daily, err := c.UsageHistory(ctx, r, "")
	if err != nil {
		t.Fatal(err)
	}
	if daily.Key != "sdk/analytics" || len(daily.Periods) != 2 || !daily.Periods[0].Start.Equal(r.From) || daily.Meta.RateLimit == nil {
		t.Fatalf("history: %+v", daily)
	}
	var requests, errs, hits int
	for _, p := range daily.Periods {
		requests, errs, hits = requests+p.Requests, errs+p.Errors, hits+p.CacheHits
	}
	if requests < 4 || errs < 1 || hits < 1 {
		t.Fatalf("requests %d, errors %d, cache hits %d", requests, errs, hits)
	}
	hourly, err := c.UsageHistory(ctx, r, weatherproxy.Hourly)
	if err != nil || len(hourly.Periods) != 48 || hourly.Periods[1].Start.Sub(hourly.Periods[0].Start) != time.Hour {
		t.Fatalf("hourly: %+v, %v", hourly, err)
	}
	if _, err := c.UsageHistory(ctx, weatherproxy.Range{}, ""); err == nil {
		t.Fatal("UsageHistory without a range was sent")
	}
}

func TestTopCitiesAndCountries(t *testing.T) {
	c := analyticsClient(t, key(t, "ANALYTICS"))
	ctx := context.Background()
	top, err := c.TopCities(ctx, twoDays(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Items) != 1 || top.Items[0].Name != "Paris" || *top.Items[0].Country != "FR" || top.Items[0].Requests != 2 || top.Meta.Status != 200 {
		t.Fatalf("top cities: %+v", top)
	}
	if all, err := c.TopCities(ctx, twoDays(), 0); err != nil || len(all.Items) != 2 {
		t.Fatalf("top cities, default limit: %+v, %v", all, err)
	}
	countries, err := c.Countries(ctx, twoDays())
	want := []weatherproxy.CountryCount{{Country: "FR", Requests: 2}, {Country: "GB", Requests: 1}}
	if err != nil || !reflect.DeepEqual(countries.Items, want) {
		t.Fatalf("countries: %+v, %v", countries, err)
	}
	week, err := c.Countries(ctx, weatherproxy.Range{}) // the proxy's default: the last 7 days
	if err != nil || !reflect.DeepEqual(week.Items, want) {
		t.Fatalf("countries, default range: %+v, %v", week, err)
	}
	if _, err := c.Countries(ctx, weatherproxy.Range{From: time.Now()}); err == nil {
		t.Fatal("a range without To was sent")
	}
}

func TestPeakHoursCoverTheWeek(t *testing.T) {
	c := analyticsClient(t, key(t, "ANALYTICS"))
	cells, err := c.PeakHours(context.Background(), twoDays())
	if err != nil || len(cells.Items) != 168 {
		t.Fatalf("peak hours: %+v, %v", cells, err)
	}
	total := 0
	for i, cell := range cells.Items {
		if cell.Weekday != i/24 || cell.Hour != i%24 {
			t.Fatalf("cell %d: %+v", i, cell)
		}
		total += cell.Requests
	}
	if total < 4 {
		t.Fatalf("%d requests", total)
	}
}

func TestCacheEfficiencyAndUpstreamCalls(t *testing.T) {
	c := analyticsClient(t, key(t, "ANALYTICS"))
	ctx := context.Background()
	cache, err := c.CacheEfficiency(ctx, twoDays(), weatherproxy.Daily)
	if err != nil || len(cache.Items) != 2 {
		t.Fatalf("cache: %+v, %v", cache, err)
	}
	hits, misses, third := 0, 0, false
	for _, p := range cache.Items {
		hits, misses = hits+p.Hits, misses+p.Misses
		third = third || (p.HitRatio != nil && math.Abs(*p.HitRatio-1.0/3) < 1e-4)
	}
	if hits != 1 || misses != 2 || !third {
		t.Fatalf("cache: %+v", cache.Items)
	}
	upstream, err := c.UpstreamCalls(ctx, twoDays(), weatherproxy.Hourly)
	if err != nil || len(upstream.Items) != 48 {
		t.Fatalf("upstream: %+v, %v", upstream, err)
	}
	geocode, forecast := 0, 0
	for _, p := range upstream.Items {
		geocode, forecast = geocode+p.Geocode, forecast+p.Forecast
	}
	if geocode != 3 || forecast != 2 {
		t.Fatalf("geocode %d, forecast %d", geocode, forecast)
	}
}

func TestAnalyticsRefusals(t *testing.T) {
	c := analyticsClient(t, key(t, "ANALYTICS"))
	ctx := context.Background()
	r := twoDays()
	_, err := c.Countries(ctx, weatherproxy.Range{From: r.To, To: r.From})
	refusal(t, err, weatherproxy.KindBadRequest, weatherproxy.ErrBadRequest)
	_, err = c.UsageHistory(ctx, weatherproxy.Range{From: r.To.AddDate(0, 0, -400), To: r.To}, "")
	refusal(t, err, weatherproxy.KindBadRequest, weatherproxy.ErrBadRequest)
	_, err = analyticsClient(t, key(t, "")).PeakHours(ctx, weatherproxy.Range{})
	if e := refusal(t, err, weatherproxy.KindInsufficientScope, weatherproxy.ErrInsufficientScope); !strings.Contains(e.Detail, "analytics:read") {
		t.Fatalf("detail: %q", e.Detail)
	}
	// The first proxy keeps no history.
	plain, _ := client(t, key(t, "ANALYTICS"))
	_, err = plain.TopCities(ctx, weatherproxy.Range{}, 0)
	if e := refusal(t, err, weatherproxy.KindAnalyticsDisabled, weatherproxy.ErrAnalyticsDisabled); e.Status != 404 {
		t.Fatalf("status %d", e.Status)
	}
	_, err = plain.UsageHistory(ctx, r, "")
	refusal(t, err, weatherproxy.KindAnalyticsDisabled, weatherproxy.ErrAnalyticsDisabled)
}

func TestTheAnalyticsProblemsHaveKindsOfTheirOwn(t *testing.T) {
	for slug, want := range map[string]weatherproxy.Kind{
		"analytics-disabled":    weatherproxy.KindAnalyticsDisabled,
		"analytics-unavailable": weatherproxy.KindAnalyticsUnavailable,
	} {
		if got := weatherproxy.KindOf(weatherproxy.Problem{Type: weatherproxy.ProblemBase + slug, Status: 503}); got != want {
			t.Fatalf("%s: %s", slug, got)
		}
	}
}
