package geminitest

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Page sizes of the list methods: the default, and the most one page holds.
const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

// paginate returns the page of items (in creation order) that size and
// token select, and the token of the next page ("" on the last). A token
// names the creation sequence number of the last item of its page, not an
// offset: the next page starts after that item even if items before it
// were deleted in between, so no live item is skipped or repeated.
func paginate[T any](items []T, order func(T) uint64, size, token string) ([]T, string, error) {
	n := defaultPageSize
	if size != "" {
		v, err := strconv.Atoi(size)
		if err != nil || v < 0 {
			return nil, "", fmt.Errorf("invalid page size %q", size)
		}
		if v > 0 {
			n = min(v, maxPageSize)
		}
	}
	start := 0
	if token != "" {
		after, err := parsePageToken(token)
		if err != nil {
			return nil, "", err
		}
		for start < len(items) && order(items[start]) <= after {
			start++
		}
	}
	end := min(start+n, len(items))
	next := ""
	if end < len(items) {
		next = pageToken(order(items[end-1]))
	}
	return items[start:end], next, nil
}

const pageTokenPrefix = "after:"

func pageToken(seq uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenPrefix + strconv.FormatUint(seq, 10)))
}

func parsePageToken(token string) (uint64, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil {
		if v, ok := strings.CutPrefix(string(b), pageTokenPrefix); ok {
			if seq, err := strconv.ParseUint(v, 10, 64); err == nil {
				return seq, nil
			}
		}
	}
	return 0, fmt.Errorf("invalid page token %q", token)
}
