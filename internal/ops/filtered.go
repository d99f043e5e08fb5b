package ops

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/msitfeed/msitfeed/feeds"
)

// WatchFilteredFeeds exports what the feed cache holds of filtered feeds
// (?filter=...; feeds.Cache.FilteredStats), read at each scrape: the
// documents kept and their bytes, which the cache bounds, and the documents
// rendered and evicted since it started. Many evictions against few
// documents kept say that clients ask for more filters than the cache
// holds (feeds.Options.MaxFiltered). Call it once.
func (m *Metrics) WatchFilteredFeeds(stats func() feeds.FilteredStats) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "msitfeed_feed_filtered_cached",
			Help: "Filtered feed documents (feeds with ?filter= parameters) in the cache.",
		}, func() float64 { return float64(stats().Entries) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "msitfeed_feed_filtered_cached_bytes",
			Help: "Bytes of the filtered feed documents in the cache (documents and their gzip).",
		}, func() float64 { return float64(stats().Bytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "msitfeed_feed_filtered_builds_total",
			Help: "Filtered feed documents rendered.",
		}, func() float64 { return float64(stats().Builds) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "msitfeed_feed_filtered_evictions_total",
			Help: "Filtered feed documents dropped from the cache to stay within its bounds.",
		}, func() float64 { return float64(stats().Evicted) }),
	)
}
