package weatherproxy

import (
	"container/list"
	"sync"
)

// etagEntry is the last ETag and body of one URL.
type etagEntry struct {
	etag string
	body []byte
}

// etagStore keeps the entries of the most recently used URLs, for If-None-Match.
type etagStore struct {
	mu    sync.Mutex
	max   int
	order *list.List // of string URLs, most recently used first
	byURL map[string]*list.Element
	kept  map[string]etagEntry
}

func newETagStore(size int) *etagStore {
	return &etagStore{max: size, order: list.New(), byURL: map[string]*list.Element{}, kept: map[string]etagEntry{}}
}

func (s *etagStore) get(url string) (etagEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.kept[url]
	if ok {
		s.order.MoveToFront(s.byURL[url])
	}
	return e, ok
}

func (s *etagStore) put(url string, e etagEntry) {
	if s.max <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byURL[url]; ok {
		s.order.MoveToFront(el)
	} else {
		s.byURL[url] = s.order.PushFront(url)
	}
	s.kept[url] = e
	for s.order.Len() > s.max {
		oldest := s.order.Remove(s.order.Back()).(string)
		delete(s.byURL, oldest)
		delete(s.kept, oldest)
	}
}
