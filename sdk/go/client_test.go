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
