// Command contract drives the Go SDK for tests/integration/sdk/test_contract.py: it calls every
// method of weatherproxy.Client twice through a fake transport that answers each path with the
// documents of the file named by its argument (path -> [values, nulls], made from the OpenAPI
// response schemas), and prints as JSON the client's methods, the requests sent, and each
// answer as the SDK decoded it, encoded back with its JSON tags (a list answer: its Items).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	weatherproxy "github.com/weather-proxy/weather-proxy-fleet/sdk/go"
)

type request struct {
	Call    string              `json:"call"`
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   map[string][]string `json:"query"`
	Headers []string            `json:"headers"`
}

type answer struct {
	Call    string          `json:"call"`
	Path    string          `json:"path"`
	Decoded json.RawMessage `json:"decoded"`
	Error   string          `json:"error,omitempty"`
}

// fake answers every request with the next document of its path, and an ETag.
type fake struct {
	docs     map[string][]json.RawMessage
	served   map[string]int
	call     string
	requests []request
}

func (f *fake) RoundTrip(req *http.Request) (*http.Response, error) {
	headers := make([]string, 0, len(req.Header))
	for name := range req.Header {
		headers = append(headers, strings.ToLower(name))
	}
	sort.Strings(headers)
	f.requests = append(f.requests, request{f.call, req.Method, req.URL.Path, req.URL.Query(), headers})
	docs, ok := f.docs[req.URL.Path]
	status, body := http.StatusOK, []byte(nil)
	if ok {
		body = docs[f.served[req.URL.Path]%len(docs)]
		f.served[req.URL.Path]++
	} else {
		status = http.StatusNotFound
		body = []byte(`{"type":"about:blank","title":"Not found","status":404,"detail":"no such path","instance":""}`)
	}
	header := http.Header{"Content-Type": {"application/json"}, "Etag": {`W/"0123456789abcdef"`}}
	return &http.Response{
		StatusCode: status, Header: header, Body: io.NopCloser(bytes.NewReader(body)), Request: req,
	}, nil
}

type call struct {
	name string
	do   func(context.Context, *weatherproxy.Client) (any, error)
}

func main() {
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail(err)
	}
	f := &fake{served: map[string]int{}}
	if err := json.Unmarshal(raw, &f.docs); err != nil {
		fail(err)
	}
	client, err := weatherproxy.NewClient("http://proxy.test", "wpk_contract", weatherproxy.WithHTTPClient(&http.Client{Transport: f}))
	if err != nil {
		fail(err)
	}
	week := weatherproxy.Range{
		From: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC),
		To:   time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC),
	}
	calls := []call{
		{"WeatherByCity", func(ctx context.Context, c *weatherproxy.Client) (any, error) {
			return c.WeatherByCity(ctx, "Paris", "FR")
		}},
		{"WeatherAt", func(ctx context.Context, c *weatherproxy.Client) (any, error) {
			return c.WeatherAt(ctx, 48.85, 2.35)
		}},
		{"Usage", func(ctx context.Context, c *weatherproxy.Client) (any, error) {
			return c.Usage(ctx)
		}},
		{"UsageHistory", func(ctx context.Context, c *weatherproxy.Client) (any, error) {
			return c.UsageHistory(ctx, week, weatherproxy.Hourly)
		}},
		{"TopCities", func(ctx context.Context, c *weatherproxy.Client) (any, error) {
			return c.TopCities(ctx, week, 5)
		}},
		{"Countries", func(ctx context.Context, c *weatherproxy.Client) (any, error) {
			return c.Countries(ctx, week)
		}},
		{"PeakHours", func(ctx context.Context, c *weatherproxy.Client) (any, error) {
			return c.PeakHours(ctx, week)
		}},
		{"CacheEfficiency", func(ctx context.Context, c *weatherproxy.Client) (any, error) {
			return c.CacheEfficiency(ctx, week, weatherproxy.Hourly)
		}},
		{"UpstreamCalls", func(ctx context.Context, c *weatherproxy.Client) (any, error) {
			return c.UpstreamCalls(ctx, week, weatherproxy.Daily)
		}},
	}
	var answers []answer
	for _, c := range calls {
		f.call = c.name
		for range 2 { // the second time with If-None-Match, answered with the nulls document
			result, err := c.do(context.Background(), client)
			a := answer{Call: c.name}
			if n := len(f.requests); n > 0 && f.requests[n-1].Call == c.name {
				a.Path = f.requests[n-1].Path // what it answers: the path of its request
			}
			if err != nil {
				a.Error = err.Error()
			} else if a.Decoded, err = encode(result); err != nil {
				a.Error = err.Error()
			}
			answers = append(answers, a)
		}
	}
	var methods []string
	t := reflect.TypeOf(client)
	for i := range t.NumMethod() {
		methods = append(methods, t.Method(i).Name)
	}
	out, err := json.Marshal(map[string]any{"methods": methods, "requests": f.requests, "answers": answers})
	if err != nil {
		fail(err)
	}
	os.Stdout.Write(out)
}

// encode is the JSON of a result: a *Listing[T]'s Items, any other model as it is.
func encode(result any) (json.RawMessage, error) {
	v := reflect.ValueOf(result)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		if items := v.Elem().FieldByName("Items"); items.IsValid() {
			return json.Marshal(items.Interface())
		}
	}
	return json.Marshal(result)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "contract:", err)
	os.Exit(1)
}
